//! 100k sessions × 10 simulated minutes of keepalive, on a lean loop of raw peers.
//!
//! The general harness (`sim`) keeps pipes, a `HashMap` and a full `Peer` per session;
//! at 100k sessions in a debug build that costs more than the hub itself. So this test
//! drives the hub with its own minimal loop: a peer is a few bytes of state in a `Vec`,
//! it reads the buffers `poll_transmit` hands out directly, and answers each ping with a
//! masked empty pong fed straight back through `handle_input`. Time is simulated, as in
//! `sim`: it moves only through `poll_timeout` / `handle_timeout`.
//!
//! `MELODY_SCALE_SESSIONS` overrides the session count (100 000). The wall time and the
//! memory figures are printed, never asserted. The memory figures are the whole
//! process's RSS, and the other tests of this binary run alongside by default: run this
//! one alone for figures that are its own (`cargo test --release -p melody-core --test
//! integration scale:: -- --nocapture`).

use std::time::{Duration, Instant};

use melody_core::{Batch, Config, ConnectionInfo, Event, Hub, SessionError, SessionId, Transmit};

const REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// The server's empty ping.
const PING: &[u8] = &[0x89, 0x00];
/// An empty pong, masked with a zero key as a client must mask.
const PONG: &[u8] = &[0x8a, 0x80, 0, 0, 0, 0];

/// How a session ended.
#[derive(Debug, Clone, PartialEq)]
struct End {
    at: Duration,
    error: Option<SessionError>,
    undelivered: usize,
}

/// One raw peer: what it saw, and whether it answers pings.
#[derive(Default)]
struct Peer {
    upgraded: bool,
    connected: bool,
    answer: bool,
    pings: u32,
    pongs_seen_by_hub: u32,
    /// A ping that arrived at the wrong time, or anything unexpected.
    anomaly: Option<String>,
    end: Option<End>,
    disconnected: bool,
    /// Events after the `Disconnect` (must stay 0).
    events_after_end: u32,
}

struct Lean {
    hub: Hub<u32>,
    t0: Instant,
    now: Instant,
    peers: Vec<Peer>,
    ids: Vec<SessionId>,
    out: Batch,
    ping_period: Duration,
}

impl Lean {
    fn new(config: Config) -> Self {
        let ping_period = config.ping_period;
        // The only clock read that time depends on: the epoch of simulated time.
        let t0 = Instant::now();
        Lean {
            hub: Hub::new(config, t0).expect("valid config"),
            t0,
            now: t0,
            peers: Vec::new(),
            ids: Vec::new(),
            out: Batch::new(),
            ping_period,
        }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Opens a connection and feeds it the upgrade request (its user data is its index).
    fn connect(&mut self) {
        let n = self.peers.len() as u32;
        let id = self.hub.open(self.now, ConnectionInfo::default(), n);
        self.hub
            .handle_input(id, self.now, REQUEST)
            .expect("just opened");
        self.peers.push(Peer {
            answer: true,
            ..Peer::default()
        });
        self.ids.push(id);
    }

    /// Serves every ready session until none is left: events, then writes, which the
    /// peer takes at once (answering pings right away).
    fn run(&mut self) {
        let now = self.now;
        let elapsed = self.elapsed();
        while let Some(id) = self.hub.poll_ready() {
            let Some(&n) = self.hub.user(id) else {
                continue;
            };
            let peer = &mut self.peers[n as usize];
            while let Some(event) = self.hub.poll_event(id) {
                if peer.disconnected {
                    peer.events_after_end += 1;
                }
                match event {
                    Event::Connect => peer.connected = true,
                    Event::Pong(_) => peer.pongs_seen_by_hub += 1,
                    Event::Error(err) => {
                        peer.end = Some(End {
                            at: elapsed,
                            error: Some(err),
                            undelivered: usize::MAX,
                        })
                    }
                    Event::Disconnect { undelivered } => {
                        peer.disconnected = true;
                        let end = peer.end.get_or_insert(End {
                            at: elapsed,
                            error: None,
                            undelivered,
                        });
                        end.undelivered = undelivered;
                    }
                    other => peer.anomaly = Some(format!("unexpected event {other:?}")),
                }
            }
            match self.hub.poll_transmit(id, now, &mut self.out) {
                Transmit::Write(_) => {
                    let mut written = 0;
                    let mut pong = false;
                    for buf in self.out.iter() {
                        written += buf.len();
                        if !peer.upgraded {
                            peer.upgraded = buf.starts_with(b"HTTP/1.1 101 ");
                            if !peer.upgraded {
                                peer.anomaly = Some("no 101".into());
                            }
                        } else if buf[..] == *PING {
                            peer.pings += 1;
                            // Every ping at an exact multiple of the ping period.
                            if elapsed != self.ping_period * peer.pings {
                                peer.anomaly = Some(format!("ping {} at {elapsed:?}", peer.pings));
                            }
                            pong |= peer.answer;
                        } else {
                            peer.anomaly = Some(format!("unexpected bytes {buf:?}"));
                        }
                    }
                    self.hub
                        .handle_transmitted(id, now, written, &mut self.out)
                        .expect("live session");
                    if pong {
                        self.hub.handle_input(id, now, PONG).expect("live session");
                    }
                }
                Transmit::Finished => {
                    self.hub.release(id);
                }
                Transmit::Idle => {}
            }
        }
    }

    /// Moves simulated time forward by `d`, firing every deadline on the way.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.run();
        while let Some(at) = self.hub.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.hub.handle_timeout(self.now);
            self.run();
        }
        self.now = target;
        self.hub.handle_timeout(self.now);
        self.run();
    }
}

/// Resident set size of this process, in bytes (Linux; `None` elsewhere).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The kernel page size, from `/proc/self/smaps` (4 KiB when it cannot be read).
fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

#[test]
fn keepalive_of_many_sessions_for_ten_simulated_minutes() {
    let n: usize = std::env::var("MELODY_SCALE_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    assert!(n >= 2, "MELODY_SCALE_SESSIONS must be at least 2");
    let wall = Instant::now();
    let rss_before = rss_bytes();

    let mut sim = Lean::new(Config::default());
    sim.peers.reserve_exact(n);
    sim.ids.reserve_exact(n);
    for _ in 0..n {
        sim.connect();
    }
    sim.run();
    assert_eq!(sim.hub.len(), n);
    assert!(sim.peers.iter().all(|p| p.connected && p.upgraded));
    let rss_connected = rss_bytes();
    let wall_connect = wall.elapsed();

    // Ten minutes: pings at 54 s, 108 s, … 594 s, each answered at once.
    sim.advance(Duration::from_secs(600));
    let wall_keepalive = wall.elapsed();
    let rss_after = rss_bytes();
    assert_eq!(sim.hub.len(), n);
    assert_eq!(sim.hub.stats().finished, 0);
    for (i, p) in sim.peers.iter().enumerate() {
        assert_eq!(p.anomaly, None, "session {i}");
        assert_eq!(p.pings, 11, "session {i}");
        assert_eq!(p.pongs_seen_by_hub, 11, "session {i}");
        assert_eq!(p.end, None, "session {i}");
    }

    // Half of them stop answering. Their last pong came at 594 s: they time out at
    // 654 s, after one more unanswered ping at 648 s; the other half carry on.
    for p in sim.peers.iter_mut().step_by(2) {
        p.answer = false;
    }
    sim.advance(Duration::from_secs(60));
    let silent = n.div_ceil(2);
    assert_eq!(sim.hub.len(), n - silent);
    assert_eq!(sim.hub.stats().finished, silent as u64);
    assert_eq!(
        sim.hub.connection_count(),
        n - silent,
        "the finished ones were released"
    );
    for (i, p) in sim.peers.iter().enumerate() {
        assert_eq!(p.anomaly, None, "session {i}");
        assert_eq!(p.pings, 12, "session {i}");
        assert_eq!(p.events_after_end, 0, "session {i}");
        if i % 2 == 0 {
            assert_eq!(p.pongs_seen_by_hub, 11, "session {i}");
            assert_eq!(
                p.end,
                Some(End {
                    at: Duration::from_secs(654),
                    error: Some(SessionError::PongTimeout),
                    undelivered: 0,
                }),
                "session {i}"
            );
            assert!(sim.hub.state(sim.ids[i]).is_none(), "session {i} released");
        } else {
            assert_eq!(p.pongs_seen_by_hub, 12, "session {i}");
            assert_eq!(p.end, None, "session {i}");
            assert!(!sim.hub.is_closed(sim.ids[i]), "session {i} open");
        }
    }

    let total = wall.elapsed();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "scale ({profile}): {n} sessions; wall: {wall_connect:.2?} to connect, \
         {:.2?} for 10 simulated minutes, {total:.2?} in all",
        wall_keepalive - wall_connect
    );
    if let (Some(before), Some(connected), Some(after)) = (rss_before, rss_connected, rss_after) {
        let per = |rss: u64| rss.saturating_sub(before) as f64 / n as f64;
        eprintln!(
            "scale ({profile}): RSS growth per session (hub + {} bytes of test peer): \
             {:.0} bytes once connected, {:.0} bytes after 10 minutes",
            std::mem::size_of::<Peer>() + std::mem::size_of::<SessionId>(),
            per(connected),
            per(after)
        );
    }
}
