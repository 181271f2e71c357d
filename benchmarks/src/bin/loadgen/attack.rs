//! `attack`: hostile clients against an echo route, while one normal client measures
//! its echo latency; reports the server's peak RSS and address space, and what its
//! `/stats` says it held against its memory budget.
//!
//! Kinds (`--kind`), each with `--attackers N` clients for `--seconds S`:
//! - `none`: no attacker (the latency and RSS reference);
//! - `slow-echo`: each sends 64 KiB messages (`--size`) and never reads, over a
//!   small receive buffer and segment size, so that the echoes pile up in the server;
//! - `pong-fragments`: each starts a message, sends fragments up to just under
//!   `--limit` bytes, then keeps it incomplete with unsolicited pongs;
//! - `huge-headers`: each sends one frame header announcing `--limit` bytes, and
//!   nothing after it;
//! - `oversize`: each writes a whole `--limit` + 1 byte message before reading, then
//!   reads until the close frame: counts the clients that read 1009.
//!
//! Every attacker stops by itself at the end of the run; the run is bounded by
//! `--seconds` (plus the loadgen's `--time-limit`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::args::Args;
use crate::client::{client_frame, connect, parse_url, upgrade, Dial, FrameReader, Url};
use crate::measure::{quantile_us, rss_bytes, PeakRss};
use crate::server_stats;

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/echo"))?;
    let pid = args.str("server-pid", "self");
    let kind = args.str("kind", "slow-echo");
    let attackers = args.num("attackers", 200) as usize;
    let seconds = Duration::from_secs(args.num("seconds", 10));
    let limit = args.num("limit", 64 * 1024) as usize;
    let size = args.num("size", 64 * 1024) as usize;
    let stats_addr = args.str("stats", "");
    let rss_before = rss_bytes(&pid);
    let peak = PeakRss::start(&pid, Duration::from_millis(10));
    let held_peak = Rc::new(Cell::new(0u64));
    let running = Rc::new(Cell::new(true));
    if !stats_addr.is_empty() {
        let (held, running, addr) = (held_peak.clone(), running.clone(), stats_addr.clone());
        tokio::task::spawn_local(async move {
            while running.get() {
                if let Ok(stats) = server_stats::fetch(&addr).await {
                    held.set(held.get().max(stats.memory_held));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let end = Instant::now() + seconds;
    let read_1009 = Rc::new(Cell::new(0usize));
    let mut tasks = Vec::new();
    for i in 0..attackers {
        let (url, each, read_1009) = (url.clone(), kind.clone(), read_1009.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let _ = attack(&url, i, &each, limit, size, end, &read_1009).await;
        }));
        if kind == "oversize" {
            // A few at a time: each writes `limit` bytes.
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let latencies = probe(&url, end).await?;
    for task in tasks {
        let _ = task.await;
    }
    running.set(false);
    let stats = match stats_addr.is_empty() {
        true => None,
        false => server_stats::fetch(&stats_addr).await.ok(),
    };
    let mut sorted = latencies.clone();
    sorted.sort_unstable();
    let peak_rss = peak.peak();
    let vm_peak = vm_peak_bytes(&pid);
    Ok(format!(
        "{{\"mode\":\"attack\",\"kind\":\"{kind}\",\"attackers\":{attackers},\"seconds\":{},\
         \"rss_before_mb\":{:.1},\"peak_rss_mb\":{:.1},\"vm_peak_mb\":{:.1},\
         \"memory_held_peak_mb\":{:.2},\"over_budget\":{},\"dropped\":{},\
         \"probe_echoes\":{},\"probe_p50_ms\":{:.2},\"probe_p99_ms\":{:.2},\"probe_max_ms\":{:.2},\
         \"oversize_read_1009\":{}}}",
        seconds.as_secs(),
        rss_before as f64 / 1048576.0,
        peak_rss as f64 / 1048576.0,
        vm_peak as f64 / 1048576.0,
        held_peak.get() as f64 / 1048576.0,
        stats.map_or(0, |s| s.over_budget),
        stats.map_or(0, |s| s.dropped),
        sorted.len(),
        quantile_us(&sorted, 0.5) / 1000.0,
        quantile_us(&sorted, 0.99) / 1000.0,
        sorted.last().copied().unwrap_or(0) as f64 / 1e6,
        read_1009.get()
    ))
}

/// The normal client: a 64-byte echo every 20 ms until `end`; each round trip's time
/// in nanoseconds.
async fn probe(url: &Url, end: Instant) -> Result<Vec<u64>, String> {
    let (r, mut w, leftover) = connect(url, Dial::nth(0)).await?;
    let mut reader = FrameReader::new(r, &leftover);
    let frame = client_frame(0x2, &[7u8; 64]);
    let mut times = Vec::new();
    while Instant::now() < end {
        let start = Instant::now();
        w.write_all(&frame)
            .await
            .map_err(|e| format!("probe: {e}"))?;
        reader.until(0x2).await.map_err(|e| format!("probe: {e}"))?;
        times.push(start.elapsed().as_nanos() as u64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(times)
}

/// One attacker, until `end`.
async fn attack(
    url: &Url,
    index: usize,
    kind: &str,
    limit: usize,
    size: usize,
    end: Instant,
    read_1009: &Cell<usize>,
) -> Result<(), String> {
    let dial = Dial {
        recv_buffer: Some(4096),
        max_segment: Some(536),
        ..Dial::nth(index + 1)
    };
    match kind {
        "none" => Ok(()),
        "slow-echo" => {
            let (mut stream, _) = upgrade(url, dial).await?;
            let message = client_frame(0x2, &vec![1u8; size]);
            while Instant::now() < end {
                let write = stream.write_all(&message);
                match tokio::time::timeout_at(end.into(), write).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => break,
                }
            }
            Ok(())
        }
        "pong-fragments" => {
            let (mut stream, _) = upgrade(url, Dial::nth(index + 1)).await?;
            let fragment = vec![2u8; 16 * 1024];
            let mut sent = 0;
            let mut first = true;
            // Up to just under the limit, a pong after each fragment.
            while sent + fragment.len() < limit {
                let opcode = if first { 0x2 } else { 0x0 };
                first = false;
                let mut bytes = unfinished(opcode, &fragment);
                bytes.extend(client_frame(0xA, b"still here"));
                stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
                sent += fragment.len();
            }
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let pong = client_frame(0xA, b"still here");
                if stream.write_all(&pong).await.is_err() {
                    break;
                }
            }
            Ok(())
        }
        "huge-headers" => {
            let (mut stream, _) = upgrade(url, Dial::nth(index + 1)).await?;
            let mut header = vec![0x82, 0x80 | 127];
            header.extend_from_slice(&(limit as u64).to_be_bytes());
            header.extend_from_slice(&[0; 4]);
            stream.write_all(&header).await.map_err(|e| e.to_string())?;
            tokio::time::sleep_until(end.into()).await;
            Ok(())
        }
        "oversize" => {
            let (stream, leftover) = upgrade(url, Dial::nth(index + 1)).await?;
            let (r, mut w) = stream.into_split();
            let message = client_frame(0x2, &vec![3u8; limit + 1]);
            w.write_all(&message).await.map_err(|e| e.to_string())?;
            let mut reader = FrameReader::new(r, &leftover);
            let close = reader.until(0x8).await?;
            if close.get(..2) == Some(&1009u16.to_be_bytes()[..]) {
                read_1009.set(read_1009.get() + 1);
            }
            Ok(())
        }
        other => Err(format!("unknown attack kind {other:?}")),
    }
}

/// A masked frame (zero mask) without FIN: a fragment with more to come.
fn unfinished(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = client_frame(opcode, payload);
    frame[0] &= 0x7f;
    frame
}

/// Peak virtual memory (address space) of a process in bytes, from /proc (0 if
/// unreadable).
fn vm_peak_bytes(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
