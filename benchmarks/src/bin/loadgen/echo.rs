//! `echo`: connections each keep one message in flight to `/echo`; measures server
//! CPU per round trip.

use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::Args;
use crate::client::{client_frame, open_many, parse_url, Dial, Frames};
use crate::measure::Cpu;

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/echo"))?;
    let pid = args.str("server-pid", "self");
    let connections = args.num("connections", 50) as usize;
    let messages = args.num("messages", 200_000);
    let size = args.num("size", 64) as usize;
    let conns = open_many(&url, connections, Dial::nth).await?;
    let frame = Rc::new(client_frame(0x2, &vec![7u8; size]));
    let per_conn = messages / connections as u64;
    let cpu = Cpu::start(&pid);
    let mut tasks = Vec::new();
    for (mut r, mut w, leftover) in conns {
        let frame = frame.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut frames = Frames::default();
            let mut chunk = vec![0u8; 16 * 1024];
            let mut got = 0u64;
            let _ = leftover;
            for _ in 0..per_conn {
                if w.write_all(&frame).await.is_err() {
                    break;
                }
                let mut echoed = false;
                while !echoed {
                    let n = match r.read(&mut chunk).await {
                        Ok(0) | Err(_) => return got,
                        Ok(n) => n,
                    };
                    frames.feed(&chunk[..n], |op, _| echoed |= op == 0x2);
                }
                got += 1;
            }
            got
        }));
    }
    let mut round_trips = 0;
    for t in tasks {
        round_trips += t.await.unwrap_or(0);
    }
    let (wall, server_cpu, own_cpu) = cpu.read();
    Ok(format!(
        "{{\"mode\":\"echo\",\"connections\":{connections},\"size\":{size},\"round_trips\":{round_trips},\
         \"seconds\":{wall:.3},\"round_trips_per_sec\":{:.0},\"server_cpu_s\":{server_cpu:.3},\
         \"server_cpu_per_round_trip_us\":{:.3},\"loadgen_cpu_s\":{own_cpu:.3}}}",
        round_trips as f64 / wall,
        server_cpu * 1e6 / round_trips.max(1) as f64
    ))
}
