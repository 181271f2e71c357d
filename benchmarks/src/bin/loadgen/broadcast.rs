//! `broadcast`: one publisher keeps a window of messages in flight to `/ws`, which
//! sends each to every subscriber; measures server CPU per delivery and losses.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::args::Args;
use crate::client::{client_frame, open_many, parse_url, read_loop, Dial};
use crate::measure::Cpu;
use crate::server_stats;

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let pid = args.str("server-pid", "self");
    let subscribers = args.num("subscribers", 1000) as usize;
    let window = args.num("window", 64);
    let messages = args.num("messages", 2000);
    let size = args.num("size", 64) as usize;
    // With `--stats` (the server's `--stats-addr`), the drops the server reported are
    // set beside the losses seen here: a burst may drop, but never silently.
    let stats_addr = args.required("stats").ok();
    let conns = open_many(&url, subscribers, Dial::nth).await?;
    let received = Rc::new(Cell::new(0u64));
    let publisher_seen = Rc::new(Cell::new(0u64));
    let done = Rc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for (i, (r, w, leftover)) in conns.into_iter().enumerate() {
        let w = Rc::new(RefCell::new(Some(w)));
        writers.push(w.clone());
        let (received, publisher_seen, done) =
            (received.clone(), publisher_seen.clone(), done.clone());
        let expected = messages * subscribers as u64;
        tokio::task::spawn_local(read_loop(r, w, leftover, move |_| {
            received.set(received.get() + 1);
            if i == 0 {
                publisher_seen.set(publisher_seen.get() + 1);
                done.notify_waiters();
            }
            if received.get() == expected {
                done.notify_waiters();
            }
        }));
    }
    let frame = client_frame(0x1, &vec![b'x'; size]);
    let publisher = writers[0].clone();
    let dropped_before = match &stats_addr {
        Some(addr) => Some(server_stats::fetch(addr).await?.dropped),
        None => None,
    };
    let cpu = Cpu::start(&pid);
    let mut sent = 0u64;
    let expected = messages * subscribers as u64;
    let mut writer = publisher.borrow_mut().take().ok_or("publisher busy")?;
    while received.get() < expected {
        // Keep `window` messages in flight, as seen by the publisher's own copy.
        while sent < messages && sent - publisher_seen.get() < window {
            writer.write_all(&frame).await.map_err(|e| e.to_string())?;
            sent += 1;
        }
        *publisher.borrow_mut() = Some(writer);
        let notified = done.notified();
        let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
        writer = publisher.borrow_mut().take().ok_or("publisher busy")?;
        if sent == messages && received.get() < expected {
            // Only stragglers left: wait for them, bounded.
            let stalled = received.get();
            let _ = tokio::time::timeout(Duration::from_millis(500), done.notified()).await;
            if received.get() == stalled {
                break;
            }
        }
    }
    let (wall, server_cpu, own_cpu) = cpu.read();
    let got = received.get();
    let server_dropped = match (&stats_addr, dropped_before) {
        (Some(addr), Some(before)) => {
            let after = server_stats::fetch(addr).await?.dropped;
            format!(",\"server_dropped\":{}", after.saturating_sub(before))
        }
        _ => String::new(),
    };
    Ok(format!(
        "{{\"mode\":\"broadcast\",\"subscribers\":{subscribers},\"window\":{window},\"messages\":{messages},\"size\":{size},\
         \"deliveries\":{got},\"lost\":{},\"seconds\":{wall:.3},\"deliveries_per_sec\":{:.0},\
         \"server_cpu_s\":{server_cpu:.3},\"server_cpu_per_delivery_us\":{:.4},\"loadgen_cpu_s\":{own_cpu:.3}{server_dropped}}}",
        expected - got,
        got as f64 / wall,
        server_cpu * 1e6 / got.max(1) as f64
    ))
}
