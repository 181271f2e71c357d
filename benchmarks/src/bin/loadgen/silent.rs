//! `silent`: `--connections` connections that complete the handshake and then neither
//! read nor write, not even pongs, while the server's keepalive runs. Measures the
//! server's RSS growth per connection while they are held; then waits until the
//! server has evicted them all (no sessions, no connection tasks: expected about one
//! pong wait after each handshake, so give the server short `--ping-period-ms` and
//! `--pong-wait-ms`), and only then reads what each client was sent: how many pings,
//! and how the connection ended (a close frame and its code, or none).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::client::{open_many, parse_url, Dial, FrameReader};
use crate::measure::{rss_bytes, Cpu};
use crate::server_stats;

/// How long the server's state may take to settle after the last handshake, before
/// the RSS reading.
const SETTLE: Duration = Duration::from_millis(500);
/// How long reading the evicted clients' sockets may take in all.
const READ_LIMIT: Duration = Duration::from_secs(10);

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let stats_addr = args.required("stats")?;
    let pid = args.str("server-pid", "self");
    let connections = args.num("connections", 10_000) as usize;
    let evict_limit = Duration::from_secs(args.num("evict-limit", 60));

    let rss_before = rss_bytes(&pid);
    let before = server_stats::fetch(&stats_addr).await?;
    let first_handshake = Instant::now();
    let conns = open_many(&url, connections, Dial::nth).await?;
    let last_handshake = Instant::now();
    tokio::time::sleep(SETTLE).await;
    let rss_held = rss_bytes(&pid);
    let held = server_stats::fetch(&stats_addr).await?;

    let cpu = Cpu::start(&pid);
    let waited = server_stats::wait_until(&stats_addr, evict_limit, |s| {
        s.sessions == 0 && s.connection_tasks == 0
    })
    .await;
    let (after, evicted) = match waited {
        Ok((stats, _)) => (stats, true),
        Err((last, _)) => (last, false),
    };
    let since_first = first_handshake.elapsed().as_secs_f64();
    let since_last = last_handshake.elapsed().as_secs_f64();
    let (_, server_cpu, _) = cpu.read();
    let rss_after = rss_bytes(&pid);

    // Only now read what the server sent each client: pings, then how it ended.
    let mut readers = Vec::with_capacity(conns.len());
    for (r, w, leftover) in conns {
        readers.push(tokio::task::spawn_local(async move {
            let _keep_open = w;
            let mut reader = FrameReader::new(r, &leftover);
            let mut pings = 0u64;
            let ending = loop {
                match reader.next().await {
                    Ok(Some((0x9, _))) => pings += 1,
                    Ok(Some((0x8, payload))) => {
                        let code = payload
                            .get(..2)
                            .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                        break format!("close_{code}");
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break "end_without_close".to_owned(),
                    Err(e) => break format!("{:?}", e.kind()),
                }
            };
            (pings, ending)
        }));
    }
    let mut endings: BTreeMap<String, u64> = BTreeMap::new();
    let (mut pings_min, mut pings_max) = (u64::MAX, 0);
    let read_deadline = Instant::now() + READ_LIMIT;
    for reader in readers {
        let left = read_deadline.saturating_duration_since(Instant::now());
        let ending = match tokio::time::timeout(left, reader).await {
            Ok(Ok((pings, ending))) => {
                (pings_min, pings_max) = (pings_min.min(pings), pings_max.max(pings));
                ending
            }
            _ => "unread".to_owned(),
        };
        *endings.entry(ending).or_default() += 1;
    }
    let endings: Vec<String> = endings
        .iter()
        .map(|(k, n)| format!("\"{k}\":{n}"))
        .collect();
    Ok(format!(
        "{{\"mode\":\"silent\",\"connections\":{connections},\
         \"seconds_to_open\":{:.2},\"sessions_held\":{},\"rss_before\":{rss_before},\
         \"rss_held\":{rss_held},\"rss_per_connection\":{:.0},\
         \"evicted\":{evicted},\"sessions_after\":{},\"connection_tasks_after\":{},\
         \"seconds_from_first_handshake\":{since_first:.2},\
         \"seconds_from_last_handshake\":{since_last:.2},\
         \"finished\":{},\"rss_after\":{rss_after},\"server_cpu_s\":{server_cpu:.3},\
         \"pings_min\":{},\"pings_max\":{pings_max},\"endings\":{{{}}}}}",
        (last_handshake - first_handshake).as_secs_f64(),
        held.sessions,
        rss_held.saturating_sub(rss_before) as f64 / connections.max(1) as f64,
        after.sessions,
        after.connection_tasks,
        after.finished - before.finished,
        pings_min.min(pings_max),
        endings.join(","),
    ))
}
