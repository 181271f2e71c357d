//! `rate`: one publisher sends at a fixed rate to `/ws`; measures delivery latency
//! (the payload carries its send time) to every subscriber.
//!
//! Warm-up messages go first, at the same rate, and are not measured: the first
//! message a subscriber reads touches its read buffer and frame state for the first
//! time, and across 1,000 subscribers that cold start took this load generator 30 ms
//! or more, while the server's fan-out took 5-8 ms. Measured, that one message held
//! half a percent of the samples and so set the p99 by itself.

use std::cell::{Cell, RefCell};
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
    let warm_up = args.num("warm-up", 2);
    let conns = open_many(&url, subscribers, Dial::nth).await?;
    let t0 = Instant::now();
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(
        (messages as usize) * subscribers,
    )));
    let warmed = Rc::new(Cell::new(0usize));
    let mut writers = Vec::new();
    for (r, w, leftover) in conns {
        let w = Rc::new(RefCell::new(Some(w)));
        writers.push(w.clone());
        let (latencies, warmed) = (latencies.clone(), warmed.clone());
        tokio::task::spawn_local(read_loop(r, w, leftover, move |payload| {
            // The payload is the send time in nanoseconds since t0, or WARM_UP.
            let mut n = [0u8; 8];
            if payload.len() >= 8 {
                n.copy_from_slice(&payload[..8]);
                let sent = u64::from_be_bytes(n);
                if sent == WARM_UP {
                    warmed.set(warmed.get() + 1);
                    return;
                }
                let now = t0.elapsed().as_nanos() as u64;
                latencies.borrow_mut().push(now.saturating_sub(sent));
            }
        }));
    }
    let mut writer = writers[0].borrow_mut().take().ok_or("publisher busy")?;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_sec));
    for _ in 0..warm_up {
        ticker.tick().await;
        publish(&mut writer, WARM_UP).await?;
    }
    // Every subscriber has read the warm-up before the first measured message (bounded).
    let warm_expected = warm_up as usize * subscribers;
    for _ in 0..250 {
        if warmed.get() >= warm_expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if warmed.get() < warm_expected {
        return Err(format!(
            "warm-up: {} of {warm_expected} messages arrived",
            warmed.get()
        ));
    }
    let cpu = Cpu::start(&pid);
    ticker.reset();
    for _ in 0..messages {
        ticker.tick().await;
        publish(&mut writer, t0.elapsed().as_nanos() as u64).await?;
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

/// The first eight bytes of a warm-up message (a send time is far below it).
const WARM_UP: u64 = u64::MAX;

/// Sends one 64-byte message starting with `stamp`.
async fn publish(writer: &mut tokio::net::tcp::OwnedWriteHalf, stamp: u64) -> Result<(), String> {
    let mut payload = stamp.to_be_bytes().to_vec();
    payload.resize(64, b'x');
    writer
        .write_all(&client_frame(0x2, &payload))
        .await
        .map_err(|e| e.to_string())
}
