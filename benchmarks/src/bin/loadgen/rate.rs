//! `rate`: one publisher sends at a fixed rate to `/ws`; measures delivery latency
//! (the payload carries its send time) to every subscriber.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::args::Args;
use crate::client::{client_frame, open_many, parse_url, read_loop, Dial};
use crate::measure::{quantile_us, Cpu};

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let pid = args.str("server-pid", "self");
    let subscribers = args.num("subscribers", 1000) as usize;
    let per_sec = args.num("rate", 10).max(1);
    let messages = args.num("messages", 100);
    let conns = open_many(&url, subscribers, Dial::nth).await?;
    let t0 = Instant::now();
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(
        (messages as usize) * subscribers,
    )));
    let mut writers = Vec::new();
    for (r, w, leftover) in conns {
        let w = Rc::new(RefCell::new(Some(w)));
        writers.push(w.clone());
        let latencies = latencies.clone();
        tokio::task::spawn_local(read_loop(r, w, leftover, move |payload| {
            // The payload is the send time in nanoseconds since t0.
            let mut n = [0u8; 8];
            if payload.len() >= 8 {
                n.copy_from_slice(&payload[..8]);
                let sent = u64::from_be_bytes(n);
                let now = t0.elapsed().as_nanos() as u64;
                latencies.borrow_mut().push(now.saturating_sub(sent));
            }
        }));
    }
    let cpu = Cpu::start(&pid);
    let mut writer = writers[0].borrow_mut().take().ok_or("publisher busy")?;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_sec));
    for _ in 0..messages {
        ticker.tick().await;
        let mut payload = (t0.elapsed().as_nanos() as u64).to_be_bytes().to_vec();
        payload.resize(64, b'x');
        writer
            .write_all(&client_frame(0x2, &payload))
            .await
            .map_err(|e| e.to_string())?;
    }
    // Let the last message arrive everywhere.
    let expected = messages as usize * subscribers;
    for _ in 0..100 {
        if latencies.borrow().len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (wall, server_cpu, own_cpu) = cpu.read();
    let mut l = latencies.borrow().clone();
    l.sort_unstable();
    Ok(format!(
        "{{\"mode\":\"rate\",\"subscribers\":{subscribers},\"rate\":{per_sec},\"messages\":{messages},\
         \"deliveries\":{},\"lost\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\
         \"seconds\":{wall:.3},\"server_cpu_s\":{server_cpu:.3},\"loadgen_cpu_s\":{own_cpu:.3}}}",
        l.len(),
        expected.saturating_sub(l.len()),
        quantile_us(&l, 0.50),
        quantile_us(&l, 0.99),
        quantile_us(&l, 1.0)
    ))
}
