//! Hot paths of the hub: broadcast fan-out, publishing with history, keepalive timers.
//!
//! ```text
//! cargo bench -p melody-core --bench core
//! ```
//!
//! Every session is opened the real way (an upgrade request through `handle_input`,
//! the 101 drained). Between timed operations an infinitely fast peer drains every
//! outbox (and answers pings), outside the measured time, so outbox bounds are never
//! hit. Throughput is in elements: recipients for a broadcast, sessions for timers, so
//! criterion's "time per element" is the cost per recipient or per session.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use melody_core::history::{HistoryLimits, HistoryRules};
use melody_core::{
    Batch, Config, ConnectionInfo, Event, Hub, Prepared, Publication, SessionId, Target, Transmit,
};

const REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\n\
    Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// An empty pong, masked (with a zero key) as a client must mask.
const PONG: &[u8] = &[0x8a, 0x80, 0, 0, 0, 0];
/// The server's empty ping.
const PING: &[u8] = &[0x89, 0x00];

/// A hub with `n` open sessions, all connected at the returned instant.
fn open_hub(n: usize, config: Config) -> (Hub<()>, Vec<SessionId>, Instant) {
    let now = Instant::now();
    let mut hub = Hub::new(config, now).expect("valid config");
    let ids: Vec<SessionId> = (0..n)
        .map(|_| {
            let id = hub.open(now, ConnectionInfo::default(), ());
            hub.handle_input(id, now, REQUEST).expect("just opened");
            id
        })
        .collect();
    drain(&mut hub, now, &mut Batch::new(), false);
    assert_eq!(hub.len(), n, "every handshake succeeded");
    (hub, ids, now)
}

/// Plays an infinitely fast peer for every session with work: takes its events, writes
/// all it has to send and, with `pong`, answers each ping. Returns the pings answered.
fn drain(hub: &mut Hub<()>, now: Instant, out: &mut Batch, pong: bool) -> usize {
    let mut pings = 0;
    while let Some(id) = hub.poll_ready() {
        while let Some(event) = hub.poll_event(id) {
            assert!(
                !matches!(event, Event::Disconnect { .. }),
                "a session ended: {id}"
            );
        }
        if let Transmit::Write(_) = hub.poll_transmit(id, now, out) {
            let ping = out.iter().any(|b| *b == *PING);
            let written = out.unwritten_bytes();
            hub.handle_transmitted(id, now, written, out)
                .expect("live session");
            if pong && ping {
                hub.handle_input(id, now, PONG).expect("live session");
                pings += 1;
            }
        }
    }
    pings
}

/// A 64-byte text message.
fn message() -> Prepared {
    Prepared::text("m".repeat(64))
}

fn broadcast(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let msg = message();
    let mut out = Batch::new();

    for n in [1_000, 10_000] {
        group.throughput(Throughput::Elements(n as u64));
        // Built on first use, so a filtered run (or a profiler) skips unused setups.
        let mut setup = None;
        group.bench_function(BenchmarkId::new("all", n), |b| {
            let (hub, _, now) = setup.get_or_insert_with(|| open_hub(n, Config::default()));
            let now = *now;
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let delivery = hub.broadcast(now, &msg, Target::All);
                    timed += start.elapsed();
                    assert_eq!(black_box(delivery).queued, n);
                    drain(hub, now, &mut out, false);
                }
                timed
            })
        });
    }

    // A topic with 1k subscribers, spread over the slab of 10k sessions.
    let mut setup = None;
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("topic_1k_of_10k", |b| {
        let (hub, now) = setup.get_or_insert_with(|| {
            let (mut hub, ids, now) = open_hub(10_000, Config::default());
            for &id in ids.iter().step_by(10) {
                assert!(hub.subscribe(id, "room"));
            }
            (hub, now)
        });
        let now = *now;
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let delivery = hub.broadcast(now, &msg, Target::Topic("room"));
                timed += start.elapsed();
                assert_eq!(black_box(delivery).queued, 1_000);
                drain(hub, now, &mut out, false);
            }
            timed
        })
    });
    group.finish();
}

/// Publishing to a topic with and without history: the cost history adds per publish
/// (the stamp, the kept copy's reference count, eviction of the oldest once full).
fn history(c: &mut Criterion) {
    let mut group = c.benchmark_group("history");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let msg = message();
    let mut out = Batch::new();
    let kept = HistoryRules::new().prefix("device/", HistoryLimits::new().max_messages(1_000));
    for subscribers in [0, 1_000] {
        for (label, rules) in [("off", HistoryRules::new()), ("on", kept.clone())] {
            // Per publish: the history's cost is per message, not per recipient.
            group.throughput(Throughput::Elements(1));
            let mut setup = None;
            let id = BenchmarkId::new(format!("publish_{label}"), subscribers);
            group.bench_function(id, |b| {
                let (hub, now) = setup.get_or_insert_with(|| {
                    let config = Config::default().history(rules.clone());
                    let (mut hub, ids, now) = open_hub(subscribers, config);
                    for &id in &ids {
                        assert!(hub.subscribe(id, "device/1"));
                    }
                    // Full from the start: every timed publish also evicts one.
                    for _ in 0..1_000 {
                        hub.publish(
                            now,
                            &Publication::from(msg.clone()),
                            Target::Topic("device/1"),
                        );
                        drain(&mut hub, now, &mut out, false);
                    }
                    (hub, now)
                });
                let now = *now;
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let publication = Publication::from(msg.clone());
                        let start = Instant::now();
                        let delivery = hub.publish(now, &publication, Target::Topic("device/1"));
                        timed += start.elapsed();
                        assert_eq!(black_box(delivery).queued, subscribers);
                        drain(hub, now, &mut out, false);
                    }
                    timed
                })
            });
        }
    }
    group.finish();
}

fn keepalive(c: &mut Criterion) {
    const N: usize = 100_000;
    let mut group = c.benchmark_group("keepalive");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(N as u64));
    let ping_period = Config::default().ping_period;
    let mut setup = None;
    let mut out = Batch::new();

    // One whole ping period of virtual time, `handle_timeout` called at each deadline
    // `poll_timeout` names, as an event loop would. In steady state a session costs
    // three due entries per period: its ping (sent, re-armed, write deadline armed), the
    // stale write deadline (disarmed once the ping was written) and the pong deadline
    // (moved by the last pong, so re-inserted). The peers answer every ping, untimed.
    group.bench_function("ping_round_100k", |b| {
        let (hub, _, now) = setup.get_or_insert_with(|| open_hub(N, Config::default()));
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let end = *now + ping_period;
                let mut pings = 0;
                while let Some(at) = hub.poll_timeout().filter(|&at| at <= end) {
                    *now = at;
                    let start = Instant::now();
                    hub.handle_timeout(at);
                    timed += start.elapsed();
                    pings += drain(hub, at, &mut out, true);
                }
                assert_eq!(pings, N, "every session was pinged once");
                *now = end;
            }
            timed
        })
    });

    // A pong arriving: `handle_input` parses it and moves the pong deadline later, which
    // only updates the session (the wheel entry is re-inserted when it comes due).
    group.bench_function("pong_rearm_100k", |b| {
        let (hub, ids, now) = setup.get_or_insert_with(|| open_hub(N, Config::default()));
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                // A new tick each pass, so each pong really moves the deadline.
                *now += Duration::from_millis(100);
                let start = Instant::now();
                for &id in ids.iter() {
                    let _ = black_box(hub.handle_input(id, *now, PONG));
                }
                timed += start.elapsed();
                drain(hub, *now, &mut out, false);
            }
            timed
        })
    });
    group.finish();
}

criterion_group!(benches, broadcast, history, keepalive);
criterion_main!(benches);
