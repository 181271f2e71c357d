//! `slow`: subscribers to `/ws` of which `--slow` never read their socket after the
//! handshake (with a small receive buffer, so that backpressure reaches the server
//! soon). The first subscriber publishes at `--rate` for `--messages`; the server
//! broadcasts each to everyone. Measures the fast subscribers' deliveries and latency
//! (the payload carries its send time), the server's peak RSS, and whether drops are
//! counted exactly: afterwards the slow subscribers drain their sockets, and what they
//! missed must equal the server's `dropped` counter (from `/stats`).
//!
//! The slow sessions must outlive the run: give the server a `--write-wait-ms` (and a
//! `--pong-wait-ms`) longer than the run, or it rightly cuts them off, and what is
//! broadcast after that is no longer theirs to miss.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;

use crate::args::Args;
use crate::client::{
    client_frame, open_many, parse_url, read_loop, source_in_blocks, Dial, Frames,
};
use crate::measure::{quantile_us, rss_bytes, Cpu, PeakRss};
use crate::server_stats;

/// How long the fast subscribers may go without a delivery before the rest counts as lost.
const STALL: Duration = Duration::from_secs(2);
/// Longest drain of the slow subscribers.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let stats_addr = args.required("stats")?;
    let pid = args.str("server-pid", "self");
    let subscribers = args.num("subscribers", 1000).max(1) as usize;
    let slow = (args.num("slow", 100) as usize).min(subscribers - 1);
    let per_sec = args.num("rate", 200).max(1);
    let messages = args.num("messages", 4000);
    let size = args.num("size", 64).max(16) as usize;
    let slow_rcvbuf = args.num("slow-rcvbuf", 4096) as u32;
    let slow_mss = args.num("slow-mss", 536) as u32;
    let quiet = Duration::from_millis(args.num("quiet-ms", 1000));

    // Slow subscribers evenly spread; the publisher (index 0) is always fast.
    let mut is_slow = vec![false; subscribers];
    if let Some(stride) = subscribers.checked_div(slow) {
        for k in 0..slow {
            is_slow[subscribers - 1 - k * stride] = true;
        }
    }
    let conns = open_many(&url, subscribers, |i| Dial {
        source_octet: source_in_blocks(i),
        recv_buffer: (is_slow[i] && slow_rcvbuf > 0).then_some(slow_rcvbuf),
        max_segment: (is_slow[i] && slow_mss > 0).then_some(slow_mss),
    })
    .await?;
    let rss_before = rss_bytes(&pid);
    let before = server_stats::fetch(&stats_addr).await?;

    let t0 = Instant::now();
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(
        messages as usize * (subscribers - slow),
    )));
    let fast_counts: Rc<Vec<Cell<u64>>> = Rc::new((0..subscribers).map(|_| Cell::new(0)).collect());
    let mut held = Vec::new();
    let mut publisher = None;
    for (i, (r, w, leftover)) in conns.into_iter().enumerate() {
        if is_slow[i] {
            // Never read until the drain; the write half stays open, so that the
            // server sees no end of stream either.
            held.push((r, w, leftover));
            continue;
        }
        let w = Rc::new(RefCell::new(Some(w)));
        if i == 0 {
            publisher = Some(w.clone());
        }
        let (latencies, counts) = (latencies.clone(), fast_counts.clone());
        tokio::task::spawn_local(read_loop(r, w, leftover, move |payload| {
            counts[i].set(counts[i].get() + 1);
            if let Some(sent) = payload.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                let now = t0.elapsed().as_nanos() as u64;
                latencies
                    .borrow_mut()
                    .push(now.saturating_sub(u64::from_be_bytes(sent)));
            }
        }));
    }
    let publisher = publisher.ok_or("no publisher")?;

    let cpu = Cpu::start(&pid);
    let peak = PeakRss::start(&pid, Duration::from_millis(100));
    let mut writer = publisher.borrow_mut().take().ok_or("publisher busy")?;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_sec));
    for seq in 0..messages {
        ticker.tick().await;
        let mut payload = (t0.elapsed().as_nanos() as u64).to_be_bytes().to_vec();
        payload.extend_from_slice(&seq.to_be_bytes());
        payload.resize(size, b'x');
        writer
            .write_all(&client_frame(0x2, &payload))
            .await
            .map_err(|e| e.to_string())?;
    }
    *publisher.borrow_mut() = Some(writer);
    let fast_total = || fast_counts.iter().map(Cell::get).sum::<u64>();
    let fast_expected = messages * (subscribers - slow) as u64;
    let (mut seen, mut since) = (fast_total(), Instant::now());
    while fast_total() < fast_expected && since.elapsed() < STALL {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if fast_total() != seen {
            (seen, since) = (fast_total(), Instant::now());
        }
    }
    let (wall, server_cpu, own_cpu) = cpu.read();
    let rss_peak = peak.peak();
    drop(peak);
    let after_run = server_stats::fetch(&stats_addr).await?;

    // Drain: each slow subscriber reads what its socket and its server outbox still
    // hold, until no data has arrived anywhere for `quiet`.
    let last_data = Rc::new(Cell::new(Instant::now()));
    let slow_counts: Rc<Vec<Cell<u64>>> = Rc::new((0..held.len()).map(|_| Cell::new(0)).collect());
    let mut writers = Vec::new();
    for (k, (r, w, leftover)) in held.into_iter().enumerate() {
        writers.push(w);
        tokio::task::spawn_local(drain(
            r,
            leftover,
            slow_counts.clone(),
            k,
            last_data.clone(),
        ));
    }
    let drain_start = Instant::now();
    while last_data.get().elapsed() < quiet && drain_start.elapsed() < DRAIN_LIMIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after_drain = server_stats::fetch(&stats_addr).await?;
    drop(writers);

    let slow_received: u64 = slow_counts.iter().map(Cell::get).sum();
    let slow_missed = (messages * slow as u64).saturating_sub(slow_received);
    let fast_received = fast_total();
    let fast_missed = fast_expected.saturating_sub(fast_received);
    let dropped = after_drain.dropped.saturating_sub(before.dropped);
    let (slow_min, slow_max) = slow_counts
        .iter()
        .map(Cell::get)
        .fold((u64::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
    let mut l = latencies.borrow().clone();
    l.sort_unstable();
    Ok(format!(
        "{{\"mode\":\"slow\",\"subscribers\":{subscribers},\"slow\":{slow},\"rate\":{per_sec},\
         \"messages\":{messages},\"size\":{size},\"slow_rcvbuf\":{slow_rcvbuf},\"slow_mss\":{slow_mss},\
         \"fast_received\":{fast_received},\"fast_missed\":{fast_missed},\
         \"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\
         \"slow_received\":{slow_received},\"slow_missed\":{slow_missed},\
         \"slow_received_min\":{},\"slow_received_max\":{slow_max},\
         \"server_dropped\":{dropped},\"server_dropped_during_run\":{},\
         \"drops_exact\":{},\"sessions_after_drain\":{},\
         \"rss_before\":{rss_before},\"rss_peak\":{rss_peak},\"rss_growth\":{},\
         \"seconds\":{wall:.3},\"server_cpu_s\":{server_cpu:.3},\"loadgen_cpu_s\":{own_cpu:.3}}}",
        quantile_us(&l, 0.50),
        quantile_us(&l, 0.99),
        quantile_us(&l, 1.0),
        if slow == 0 { 0 } else { slow_min },
        after_run.dropped.saturating_sub(before.dropped),
        dropped == slow_missed + fast_missed,
        after_drain.sessions,
        rss_peak.saturating_sub(rss_before),
    ))
}

/// Reads one slow subscriber's backlog, counting its data messages.
async fn drain(
    mut r: OwnedReadHalf,
    leftover: Vec<u8>,
    counts: Rc<Vec<Cell<u64>>>,
    k: usize,
    last_data: Rc<Cell<Instant>>,
) {
    let mut frames = Frames::default();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut count = |bytes: &[u8]| {
        let mut n = 0;
        frames.feed(bytes, |op, _| n += u64::from(op == 0x1 || op == 0x2));
        if n > 0 {
            counts[k].set(counts[k].get() + n);
            last_data.set(Instant::now());
        }
    };
    count(&leftover);
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => count(&chunk[..n]),
        }
    }
}
