//! A hub, the connections a driver holds for it, and a clock: the operations every
//! target needs, and the hub-wide invariants checked after each step.

use std::time::{Duration, Instant};

use melody_core::{CloseCode, Config, ConnectionInfo, Hub, Keys, SessionState, Transmit};

use crate::config::longest_life;
use crate::conn::Conn;
use crate::server_wire;
use crate::sse_wire;

/// The topics the session target subscribes to and publishes on.
pub const TOPICS: [&str; 3] = ["news", "chat", "n\u{e9}ws"];

/// A hub under test.
pub struct World {
    pub hub: Hub<Keys>,
    pub config: Config,
    pub now: Instant,
    /// Every connection ever opened, in order (released ones included).
    pub conns: Vec<Conn>,
    /// Upgrades `check_upgrade` refused (no connection was opened for them).
    pub upgrades_refused: u64,
    /// Event-stream recipients skipped, as deliveries reported them.
    pub skipped: u64,
}

impl World {
    pub fn new(config: Config) -> Self {
        // The only clock read: the epoch of simulated time.
        let now = Instant::now();
        let hub = match Hub::new(config.clone(), now) {
            Ok(hub) => hub,
            Err(err) => panic!("the fuzz config must be valid: {err}"),
        };
        World {
            hub,
            config,
            now,
            conns: Vec::new(),
            upgrades_refused: 0,
            skipped: 0,
        }
    }

    /// Opens a connection; returns its index in `conns`.
    pub fn open(&mut self) -> usize {
        let id = self
            .hub
            .open(self.now, ConnectionInfo::default(), Keys::new());
        assert!(
            self.conns.iter().all(|c| c.id != id),
            "{id:?} was handed out twice"
        );
        self.conns.push(Conn::new(id));
        self.conns.len() - 1
    }

    /// The connection a fuzz byte picks, if any was opened.
    pub fn pick(&self, selector: u8) -> Option<usize> {
        (!self.conns.is_empty()).then(|| usize::from(selector) % self.conns.len())
    }

    /// Feeds bytes from the peer of `conns[index]`.
    pub fn feed(&mut self, index: usize, bytes: &[u8]) {
        let conn = &self.conns[index];
        let result = self.hub.handle_input(conn.id, self.now, bytes);
        assert_eq!(
            result.is_err(),
            conn.released,
            "handle_input on {:?}",
            conn.id
        );
    }

    /// Moves the clock forward and fires what is due.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.hub.handle_timeout(self.now);
        if let Some(next) = self.hub.poll_timeout() {
            assert!(
                next > self.now,
                "poll_timeout reports a deadline already handled"
            );
        }
    }

    /// Takes the events of every session `poll_ready` lists, then checks that no other
    /// session has any (a session with events that is not listed would never be served).
    pub fn service(&mut self) {
        while let Some(id) = self.hub.poll_ready() {
            let Some(conn) = self.conns.iter_mut().find(|c| c.id == id) else {
                panic!("poll_ready listed {id:?}, which open never returned");
            };
            assert!(!conn.released, "poll_ready listed released {id:?}");
            conn.take_events(&mut self.hub, &self.config);
        }
        for conn in self.conns.iter().filter(|c| !c.released) {
            if let Some(event) = self.hub.poll_event(conn.id) {
                panic!("{:?} has event {event:?} but was not listed ready", conn.id);
            }
        }
    }

    /// Releases `conns[index]` if its `Disconnect` was taken (a driver's contract).
    pub fn release(&mut self, index: usize) {
        let conn = &mut self.conns[index];
        if !conn.disconnected || conn.released {
            return;
        }
        let Some(last) = self.hub.session_stats(conn.id) else {
            panic!("{:?} is not released but has no stats", conn.id);
        };
        assert_eq!(last.queued, 0, "a finished session holds data");
        assert_eq!(
            conn.offered,
            last.sent + last.dropped,
            "{:?}: messages offered but neither sent nor counted as dropped",
            conn.id
        );
        if conn.stream {
            check_stream(conn, &self.config, last.sent);
        } else {
            let received = server_wire::read(&conn.written, conn.upgraded);
            assert_eq!(
                received.data_frames, last.sent,
                "{:?}: data frames on the wire vs counted as sent",
                conn.id
            );
        }
        assert!(
            self.hub.release(conn.id).is_some(),
            "release of {:?}",
            conn.id
        );
        conn.released = true;
        conn.drop_pending();
        assert!(
            self.hub.state(conn.id).is_none(),
            "a released id has a state"
        );
        assert!(self.hub.is_closed(conn.id));
        assert!(self.hub.release(conn.id).is_none(), "a second release");
    }

    /// Every invariant that holds between two operations.
    pub fn check(&mut self) {
        self.service();
        let mut open = 0;
        let mut unreleased = 0;
        let mut unfinished = 0;
        for conn in &mut self.conns {
            if conn.released {
                assert!(self.hub.state(conn.id).is_none());
                continue;
            }
            unreleased += 1;
            let Some(stats) = self.hub.session_stats(conn.id) else {
                panic!("{:?} is not released but has no stats", conn.id);
            };
            let state = self.hub.state(conn.id);
            // An admission's bounds apply to what is queued after it; data queued
            // before may exceed them until it drains.
            let bound = conn.queue_bound(&self.config);
            if stats.queued <= bound {
                conn.grace_queued = 0;
            }
            assert!(
                stats.queued <= bound.max(conn.grace_queued),
                "{:?}: {} messages queued, bound {bound} (queued at admission {})",
                conn.id,
                stats.queued,
                conn.grace_queued
            );
            if let Some(max) = conn.bytes_bound(&self.config) {
                if stats.queued_bytes <= max {
                    conn.grace_bytes = 0;
                }
                assert!(
                    stats.queued_bytes <= max.max(conn.grace_bytes),
                    "{:?}: {} bytes queued, bound {max} (queued at admission {})",
                    conn.id,
                    stats.queued_bytes,
                    conn.grace_bytes
                );
            }
            let kind = self.hub.kind(conn.id);
            if conn.connected || conn.held {
                assert_eq!(
                    kind == Some(melody_core::SessionKind::EventStream),
                    conn.stream,
                    "{:?}: kind {kind:?}",
                    conn.id
                );
            }
            assert_eq!(
                stats.dropped, conn.drops_reported,
                "{:?}: dropped messages not all reported",
                conn.id
            );
            assert_eq!(stats.received, conn.received, "{:?}: received", conn.id);
            assert_eq!(
                conn.offered,
                stats.sent + stats.dropped + stats.queued as u64,
                "{:?}: a message offered is neither sent, dropped nor queued",
                conn.id
            );
            if self.config.sent_events {
                assert_eq!(stats.sent, conn.sent, "{:?}: Sent events", conn.id);
            }
            let topics = self.hub.topics(conn.id).count();
            match (conn.connected, conn.disconnected) {
                (_, true) => {
                    assert_eq!(state, Some(SessionState::Finished), "{:?}", conn.id);
                    assert_eq!(stats.queued, 0, "a finished session holds data");
                    assert_eq!(topics, 0, "a finished session is still subscribed");
                }
                (true, false) => {
                    open += 1;
                    unfinished += 1;
                    assert!(
                        matches!(state, Some(SessionState::Open | SessionState::Closing)),
                        "{:?}: connected but {state:?}",
                        conn.id
                    );
                }
                (false, false) => {
                    unfinished += 1;
                    assert_eq!(state, Some(SessionState::Handshake), "{:?}", conn.id);
                }
            }
        }
        assert_eq!(self.hub.len(), open, "Hub::len");
        assert_eq!(self.hub.sessions().count(), open, "Hub::sessions");
        assert_eq!(self.hub.connection_count(), unreleased);
        assert_eq!(self.hub.all_connections().count(), unfinished);
        self.check_hub_stats();
        self.check_topics();
    }

    fn check_hub_stats(&self) {
        let stats = self.hub.stats();
        let count = |f: fn(&Conn) -> bool| self.conns.iter().filter(|c| f(c)).count() as u64;
        assert_eq!(stats.opened, self.conns.len() as u64, "HubStats::opened");
        assert_eq!(
            stats.connected,
            count(|c| c.connected),
            "HubStats::connected"
        );
        assert_eq!(
            stats.finished,
            count(|c| c.disconnected),
            "HubStats::finished"
        );
        assert_eq!(
            stats.rejected,
            count(|c| c.rejected) + self.upgrades_refused,
            "HubStats::rejected"
        );
        let reported: u64 = self.conns.iter().map(|c| c.drops_reported).sum();
        assert_eq!(stats.dropped, reported, "HubStats::dropped");
        assert_eq!(stats.skipped, self.skipped, "HubStats::skipped");
    }

    fn check_topics(&self) {
        let mut subscribed_topics = 0;
        for topic in TOPICS {
            let members = self
                .conns
                .iter()
                .filter(|c| !c.released && self.hub.topics(c.id).any(|t| t == topic))
                .count();
            assert_eq!(
                self.hub.subscriber_count(topic),
                members,
                "subscribers of {topic:?}"
            );
            subscribed_topics += usize::from(members > 0);
        }
        assert_eq!(
            self.hub.topic_count(),
            subscribed_topics,
            "Hub::topic_count"
        );
    }

    /// Does what a driver does for one connection: takes its events, writes up to
    /// `budget` bytes of what it hands out, releases it once it is over.
    pub fn drive(&mut self, index: usize, budget: usize) {
        self.service();
        let conn = &mut self.conns[index];
        if conn.released {
            return;
        }
        let transmit = conn.poll_transmit(&mut self.hub, self.now, &self.config, false);
        conn.write(&mut self.hub, self.now, budget);
        if transmit == Some(Transmit::Finished) {
            self.service();
            self.release(index);
        }
    }

    /// With a silent peer that reads everything, every session must end within its
    /// deadlines: none may hang, and none may be left alive with no deadline pending.
    /// Then every id `open` returned has had exactly one `Disconnect`, and a hub with
    /// every id released holds nothing, timer entries included once deadlines pass.
    pub fn wind_down(&mut self) {
        let give_up = self.now + longest_life(&self.config);
        loop {
            // An event stream whose client reads everything lives until one side
            // ends it: the server does, as on shutdown.
            for index in 0..self.conns.len() {
                let conn = &self.conns[index];
                if conn.stream && self.hub.state(conn.id) == Some(SessionState::Open) {
                    assert!(
                        self.hub
                            .close(conn.id, self.now, CloseCode::Away, "winding down"),
                        "close of open {:?}",
                        conn.id
                    );
                }
            }
            for index in 0..self.conns.len() {
                self.drive(index, usize::MAX);
                // A second round: the first may only have finished writing a batch.
                self.drive(index, usize::MAX);
            }
            self.check();
            if self.conns.iter().all(|c| c.released) {
                break;
            }
            // Time jumps from deadline to deadline.
            let Some(next) = self.hub.poll_timeout() else {
                panic!("sessions are alive with nothing to do and no deadline pending");
            };
            assert!(next <= give_up, "a session outlives every deadline");
            let by = next.saturating_duration_since(self.now);
            self.advance(by);
        }
        for conn in &self.conns {
            assert!(
                conn.released,
                "{:?} is still alive with a silent peer after every deadline: {:?}",
                conn.id,
                self.hub.state(conn.id)
            );
            let disconnects = conn
                .events
                .iter()
                .filter(|e| matches!(e, melody_core::Event::Disconnect { .. }))
                .count();
            assert_eq!(disconnects, 1, "{:?}: Disconnect count", conn.id);
        }
        assert!(self.hub.is_empty());
        assert_eq!(self.hub.connection_count(), 0);
        assert_eq!(self.hub.topic_count(), 0);
        // Timer entries are deleted lazily: those of released sessions wait for their
        // deadline, and once every deadline has passed none may be left.
        self.advance(longest_life(&self.config));
        assert_eq!(
            self.hub.timer_entries(),
            0,
            "timer entries outlive every session"
        );
        self.check();
    }
}

/// Checks what an event stream's client received at the end of the session: a
/// well-formed answer (and chunked body), exactly `sent` events, each one that was
/// published to the session, in order (some may have been dropped), with the data its
/// `Sent` event reported, and at most one `retry:`, the configured one, first.
fn check_stream(conn: &Conn, config: &Config, sent: u64) {
    let got = sse_wire::read(&conn.written, !conn.bare_stream);
    assert_eq!(
        got.events.len() as u64,
        sent,
        "{:?}: events on the wire vs counted as sent",
        conn.id
    );
    let mut offered = conn.published.iter();
    for event in &got.events {
        assert!(
            offered.any(|o| o == event),
            "{:?}: {event:?} on the wire, not published (in this order): {:?}",
            conn.id,
            conn.published
        );
    }
    if config.sent_events {
        let data: Vec<&[u8]> = got.events.iter().map(|e| e.data.as_bytes()).collect();
        let reported: Vec<&[u8]> = conn.sent_payloads.iter().map(|p| &p[..]).collect();
        assert_eq!(data, reported, "{:?}: Sent payloads vs the wire", conn.id);
    }
    let expected_retry = config.event_stream_retry.map(|r| r.as_millis() as u64);
    match got.retries.as_slice() {
        [] => {}
        [retry] => assert_eq!(Some(*retry), expected_retry, "{:?}: retry", conn.id),
        more => panic!("{:?}: retry fields {more:?}", conn.id),
    }
    if got.ended {
        assert_eq!(got.status, Some(200));
    }
}
