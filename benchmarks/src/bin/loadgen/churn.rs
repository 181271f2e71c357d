//! `churn`: connect, send one message to `/echo` and read its echo, disconnect; many
//! times, `--concurrency` at once, ending each connection in turn one of three ways:
//! a clean close (close frame, the server's answer, its end of stream), a TCP reset
//! (SO_LINGER 0, then close) and a plain drop (close without a close frame). Cycles
//! rotate over `--source-addrs` loopback source addresses, so that ports in TIME_WAIT
//! never run out.
//!
//! After a warm-up of `--warmup` cycles (allocator caches and the timer wheel's slots
//! grow once), waits until the server is empty, reads its RSS, runs `--cycles` cycles,
//! and then measures how long the server takes to return to no sessions and no
//! connection tasks, and then to no timer entries (stale ones leave the wheel when
//! their period has passed), and its RSS then against the start.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::args::Args;
use crate::client::{client_frame, parse_url, source_round_robin, upgrade, Dial, FrameReader, Url};
use crate::measure::{rss_bytes, Cpu, PeakRss};
use crate::server_stats::{self, ServerStats};

/// Longest a single cycle may take before it counts as failed.
const CYCLE_LIMIT: Duration = Duration::from_secs(10);

/// How a cycle ends its connection.
#[derive(Clone, Copy)]
enum Ending {
    /// Close frame, the server's close frame, then its end of stream.
    Clean,
    /// SO_LINGER 0: the close sends a TCP reset.
    Reset,
    /// A plain close: FIN, no close frame.
    Drop,
}

impl Ending {
    /// The ending of cycle `i`: the three in turn.
    fn of(i: u64) -> Ending {
        match i % 3 {
            0 => Ending::Clean,
            1 => Ending::Reset,
            _ => Ending::Drop,
        }
    }
}

/// What a batch of cycles did.
#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    first_error: Option<String>,
}

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/echo"))?;
    let stats_addr = args.required("stats")?;
    let pid = args.str("server-pid", "self");
    let cycles = args.num("cycles", 100_000);
    let warmup = args.num("warmup", 1000);
    let concurrency = args.num("concurrency", 32).max(1) as usize;
    let addrs = args.num("source-addrs", 16).max(1) as usize;
    let settle_limit = Duration::from_secs(args.num("settle-limit", 60));
    let empty = |s: &ServerStats| s.sessions == 0 && s.connection_tasks == 0;

    let warm = run_cycles(&url, 0..warmup, concurrency, addrs).await;
    if warm.failed > 0 {
        return Err(format!(
            "warm-up: {} cycles failed, first: {:?}",
            warm.failed, warm.first_error
        ));
    }
    let (start, _) = server_stats::wait_until(&stats_addr, settle_limit, |s| {
        empty(s) && s.timer_entries == 0
    })
    .await
    .map_err(|(_, e)| format!("after the warm-up: {e}"))?;
    let rss_start = rss_bytes(&pid);

    let cpu = Cpu::start(&pid);
    let peak = PeakRss::start(&pid, Duration::from_millis(200));
    let tally = run_cycles(&url, warmup..warmup + cycles, concurrency, addrs).await;
    let (wall, server_cpu, own_cpu) = cpu.read();
    let rss_peak = peak.peak();
    drop(peak);
    let at_end = server_stats::fetch(&stats_addr).await?;

    let (emptied, to_empty) =
        settled(server_stats::wait_until(&stats_addr, settle_limit, empty).await);
    let (timerless, to_no_timers) = settled(
        server_stats::wait_until(&stats_addr, settle_limit, |s| s.timer_entries == 0).await,
    );
    let rss_end = rss_bytes(&pid);
    Ok(format!(
        "{{\"mode\":\"churn\",\"cycles\":{cycles},\"warmup\":{warmup},\"concurrency\":{concurrency},\
         \"source_addrs\":{addrs},\"ok\":{},\"failed\":{},\"first_error\":{:?},\
         \"cycles_per_sec\":{:.0},\"server_cpu_per_cycle_us\":{:.1},\"seconds\":{wall:.3},\
         \"server_cpu_s\":{server_cpu:.3},\"loadgen_cpu_s\":{own_cpu:.3},\
         \"opened\":{},\"connected\":{},\"finished\":{},\"rejected\":{},\"dropped\":{},\
         \"at_loop_end\":{{\"sessions\":{},\"connection_tasks\":{},\"timer_entries\":{}}},\
         \"after\":{{\"sessions\":{},\"connection_tasks\":{},\"timer_entries\":{}}},\
         \"seconds_to_empty\":{to_empty},\"seconds_to_no_timers\":{to_no_timers},\
         \"rss_start\":{rss_start},\"rss_peak\":{rss_peak},\"rss_end\":{rss_end},\
         \"rss_end_vs_start\":{:.3}}}",
        tally.ok,
        tally.failed,
        tally.first_error.unwrap_or_default(),
        tally.ok as f64 / wall,
        server_cpu * 1e6 / tally.ok.max(1) as f64,
        timerless.opened - start.opened,
        timerless.connected - start.connected,
        timerless.finished - start.finished,
        timerless.rejected - start.rejected,
        timerless.dropped - start.dropped,
        at_end.sessions,
        at_end.connection_tasks,
        at_end.timer_entries,
        emptied.sessions,
        emptied.connection_tasks,
        timerless.timer_entries,
        rss_end as f64 / rss_start.max(1) as f64,
    ))
}

/// The reading a wait ended on, and its time in seconds as JSON (`null` if it never
/// got there: the reading is then the last one seen).
fn settled(
    waited: Result<(ServerStats, Duration), (ServerStats, String)>,
) -> (ServerStats, String) {
    match waited {
        Ok((stats, took)) => (stats, format!("{:.2}", took.as_secs_f64())),
        Err((last, _)) => (last, "null".to_owned()),
    }
}

/// Runs cycles `range` on `concurrency` workers.
async fn run_cycles(url: &Url, range: Range<u64>, concurrency: usize, addrs: usize) -> Tally {
    let next = Rc::new(Cell::new(range.start));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (next, tally, url, end) = (next.clone(), tally.clone(), url.clone(), range.end);
        workers.push(tokio::task::spawn_local(async move {
            loop {
                let i = next.get();
                if i >= end {
                    return;
                }
                next.set(i + 1);
                let result = match tokio::time::timeout(CYCLE_LIMIT, cycle(&url, i, addrs)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("cycle {i} took over {CYCLE_LIMIT:?}")),
                };
                let mut tally = tally.borrow_mut();
                match result {
                    Ok(()) => tally.ok += 1,
                    Err(e) => {
                        tally.failed += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    Rc::try_unwrap(tally).map_or_else(|rc| rc.take(), RefCell::into_inner)
}

/// One connect–message–disconnect cycle.
async fn cycle(url: &Url, i: u64, addrs: usize) -> Result<(), String> {
    let dial = Dial {
        source_octet: source_round_robin(i as usize, addrs),
        ..Dial::default()
    };
    let (stream, leftover) = upgrade(url, dial).await?;
    let mut reader = FrameReader::new(stream, &leftover);
    send(&mut reader, &client_frame(0x1, b"churn")).await?;
    reader.until(0x1).await?;
    match Ending::of(i) {
        Ending::Clean => {
            send(&mut reader, &client_frame(0x8, &1000u16.to_be_bytes())).await?;
            reader.until(0x8).await?;
            // The server closes the TCP connection first, as RFC 6455 asks.
            while reader.next().await.map_err(|e| e.to_string())?.is_some() {}
        }
        Ending::Reset => reader
            .get_mut()
            .set_zero_linger()
            .map_err(|e| e.to_string())?,
        Ending::Drop => {}
    }
    Ok(())
}

async fn send(reader: &mut FrameReader<TcpStream>, frame: &[u8]) -> Result<(), String> {
    reader
        .get_mut()
        .write_all(frame)
        .await
        .map_err(|e| e.to_string())
}
