//! One connection as a driver sees it: the buffers it was handed and has not written
//! yet, and the events it took, each checked against the order the hub promises.

use std::time::Instant;

use melody_core::{
    Batch, Bytes, Config, Event, Hub, Keys, SessionError, SessionId, SessionKind, Transmit,
};

use crate::sse_wire::SseEvent;

/// Unsent control frames an outbox may hold: the handshake answer or a ping (a ping is
/// only queued when the control lane is empty) and one more for a frame tungstenite
/// writes that is neither a pong nor a close.
pub const MAX_CONTROL_FRAMES: usize = 2;

/// Unsent pongs an outbox keeps (melody-core's `MAX_PENDING_PONGS`).
pub const MAX_PENDING_PONGS: usize = 16;

/// The driver's side of one session.
#[derive(Debug)]
pub struct Conn {
    pub id: SessionId,
    /// Buffers handed out by `poll_transmit` and not yet fully reported written.
    batch: Batch,
    /// Every byte reported written, in order (what the peer received).
    pub written: Vec<u8>,
    /// Every event taken, in order.
    pub events: Vec<Event>,
    /// `Connect` was taken.
    pub connected: bool,
    /// `Disconnect` was taken.
    pub disconnected: bool,
    /// The handshake was refused (`Error(Handshake)` taken).
    pub rejected: bool,
    /// The id was released.
    pub released: bool,
    /// Messages reported lost: `Dropped` counts plus the `Disconnect`'s undelivered.
    pub drops_reported: u64,
    /// Text and binary messages taken.
    pub received: u64,
    /// `Sent` events taken.
    pub sent: u64,
    /// Data messages offered to this session's outbox while it was open: each must end
    /// up written, dropped (and counted) or still queued.
    pub offered: u64,
    /// An HTTP framework answered the upgrade (`Hub::open_upgraded`).
    pub upgraded: bool,
    /// An HTTP framework answers the event stream (`Hub::open_event_stream`): the
    /// session writes the bare stream, no HTTP head or chunks.
    pub bare_stream: bool,
    /// The session is an event stream (known from its `Request` or `Connect`).
    pub stream: bool,
    /// A request is held for a verdict (`Request` taken, no verdict or end yet).
    pub held: bool,
    /// Events offered to this event stream's outbox, in order: what it writes must be
    /// these (some perhaps dropped), in this order.
    pub published: Vec<SseEvent>,
    /// The payloads of the `Sent` events taken, in order.
    pub sent_payloads: Vec<Bytes>,
    /// An admission's outbox bounds (`None`: the hub's).
    pub max_queued: Option<usize>,
    pub max_bytes: Option<Option<usize>>,
    /// What was queued when an admission changed the bounds (data already queued
    /// stays): the bounds hold from then on for anything beyond it.
    pub grace_queued: usize,
    pub grace_bytes: usize,
    /// The largest `max_message_size` an admission gave this session (`None`: the
    /// hub's). A later admission may lower it while a message is under way, so a
    /// delivered message is checked against the largest limit it could have had.
    pub largest_message_limit: Option<usize>,
}

impl Conn {
    pub fn new(id: SessionId) -> Self {
        Conn {
            id,
            batch: Batch::new(),
            written: Vec::new(),
            events: Vec::new(),
            connected: false,
            disconnected: false,
            rejected: false,
            released: false,
            drops_reported: 0,
            received: 0,
            sent: 0,
            offered: 0,
            upgraded: false,
            bare_stream: false,
            stream: false,
            held: false,
            published: Vec::new(),
            sent_payloads: Vec::new(),
            max_queued: None,
            max_bytes: None,
            grace_queued: 0,
            grace_bytes: 0,
            largest_message_limit: None,
        }
    }

    /// The outbox bound in messages in force.
    pub fn queue_bound(&self, config: &Config) -> usize {
        self.max_queued.unwrap_or(config.message_buffer_size)
    }

    /// The outbox bound in bytes in force.
    pub fn bytes_bound(&self, config: &Config) -> Option<usize> {
        self.max_bytes.unwrap_or(config.message_buffer_bytes)
    }

    /// The largest message this session may have been allowed to receive.
    pub fn message_limit(&self, config: &Config) -> usize {
        config
            .max_message_size
            .max(self.largest_message_limit.unwrap_or(0))
    }

    /// Whether a batch handed out earlier is still being written.
    pub fn has_pending(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Bytes handed out and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.batch.unwritten_bytes()
    }

    /// Takes every queued event, checking each against what came before it.
    /// Returns how many were taken.
    pub fn take_events(&mut self, hub: &mut Hub<Keys>, config: &Config) -> usize {
        let mut taken = 0;
        while let Some(event) = hub.poll_event(self.id) {
            if matches!(event, Event::Connect | Event::Request) {
                self.stream = hub.kind(self.id) == Some(SessionKind::EventStream);
                assert!(
                    !self.bare_stream || self.stream,
                    "{:?}: opened as an event stream, but a WebSocket",
                    self.id
                );
            }
            self.check_event(&event, config);
            self.events.push(event);
            taken += 1;
        }
        taken
    }

    fn check_event(&mut self, event: &Event, config: &Config) {
        assert!(
            !self.disconnected,
            "{:?}: event {event:?} after Disconnect",
            self.id
        );
        let open_only = |what: &str| {
            assert!(self.connected, "{:?}: {what} before Connect", self.id);
        };
        match event {
            Event::Connect => {
                // A held request may have had data for its topics dropped (reported as it
                // happened) before its verdict.
                let before_verdict = |e: &Event| matches!(e, Event::Dropped { .. });
                assert!(
                    self.events.is_empty()
                        || (self.events[0] == Event::Request
                            && self.events[1..].iter().all(before_verdict)),
                    "{:?}: Connect not first (or right after Request and drops while held)",
                    self.id
                );
                assert!(
                    !self.held,
                    "{:?}: Connect while held for a verdict",
                    self.id
                );
                self.connected = true;
            }
            Event::Request => {
                assert!(self.events.is_empty(), "{:?}: Request not first", self.id);
                self.held = true;
            }
            Event::Text(text) => {
                open_only("Text");
                assert!(text.len() <= self.message_limit(config), "oversized text");
                self.received += 1;
            }
            Event::Binary(data) => {
                open_only("Binary");
                assert!(data.len() <= self.message_limit(config), "oversized binary");
                self.received += 1;
            }
            Event::Pong(data) => {
                open_only("Pong");
                assert!(
                    data.len() <= 125,
                    "a control frame's payload is at most 125 bytes"
                );
            }
            Event::Close { reason, .. } => {
                open_only("Close");
                assert!(reason.len() <= 123, "a close reason is at most 123 bytes");
            }
            Event::Sent { payload, .. } => {
                open_only("Sent");
                assert!(config.sent_events, "Sent without sent_events");
                self.sent += 1;
                self.sent_payloads.push(payload.clone());
            }
            Event::Dropped { count } => {
                // A request held for a verdict queues data too: drops (by the policy, or
                // of everything on a refusal) can come before any Connect.
                let was_held = self.events.first() == Some(&Event::Request);
                assert!(
                    self.connected || was_held,
                    "{:?}: Dropped before Connect (never held)",
                    self.id
                );
                assert!(*count > 0, "Dropped with a zero count");
                self.drops_reported += count;
            }
            Event::Error(SessionError::Handshake(_)) => {
                assert!(!self.connected, "a handshake error after Connect");
                self.rejected = true;
                self.held = false;
            }
            Event::Error(SessionError::Refused { status, .. }) => {
                assert!(!self.connected, "a refusal after Connect");
                assert!((400..600).contains(status), "refused with {status}");
                self.rejected = true;
                self.held = false;
            }
            Event::Error(SessionError::HandshakeTimeout) => {
                assert!(!self.connected, "a handshake timeout after Connect");
                // A held request times out with a 503: a refusal.
                self.rejected |= self.held;
                self.held = false;
            }
            // The transport and the writing of a refusal can fail before any Connect.
            Event::Error(SessionError::Io { .. } | SessionError::WriteTimeout) => {}
            // A held request's outbox overflowing under `DropPolicy::Disconnect`.
            Event::Error(SessionError::SlowConsumer)
                if self.events.first() == Some(&Event::Request) => {}
            Event::Error(err) => open_only(&format!("error {err:?}")),
            Event::Disconnect { undelivered } => {
                self.disconnected = true;
                self.held = false;
                self.drops_reported += *undelivered as u64;
            }
            other => panic!("an event the harness does not know: {other:?}"),
        }
    }

    /// Asks for the next batch, as a driver does once the last one is written (or, with
    /// `even_if_pending`, earlier). Checks the batch against the outbox bounds.
    pub fn poll_transmit(
        &mut self,
        hub: &mut Hub<Keys>,
        now: Instant,
        config: &Config,
        even_if_pending: bool,
    ) -> Option<Transmit> {
        if self.has_pending() && !even_if_pending {
            return None;
        }
        let held = self.batch.len();
        let transmit = hub.poll_transmit(self.id, now, &mut self.batch);
        match transmit {
            Transmit::Write(0) => {
                assert!(held > 0, "Write(0) with an empty batch");
                assert_eq!(self.batch.len(), held, "Write(0) changed the batch");
            }
            Transmit::Write(n) => {
                assert_eq!(held, 0, "buffers added to a batch still being written");
                assert_eq!(
                    n,
                    self.batch.len(),
                    "Write(n) must count the buffers handed out"
                );
                let bound = MAX_CONTROL_FRAMES
                    + MAX_PENDING_PONGS
                    + self.queue_bound(config).max(self.grace_queued)
                    + 1;
                assert!(
                    n <= bound,
                    "a batch of {n} buffers exceeds the outbox bound {bound}"
                );
                assert!(!self.released, "a released id handed out bytes");
            }
            Transmit::Idle => assert_eq!(held, 0, "Idle while the batch holds bytes"),
            Transmit::Finished => assert!(self.batch.is_empty(), "Finished left bytes to write"),
        }
        if self.released {
            assert_eq!(transmit, Transmit::Finished, "a released id is Finished");
        }
        Some(transmit)
    }

    /// Writes up to `n` pending bytes and reports them; returns how many. Once the
    /// session is over, a driver writes nothing more (the hub counted what it held as
    /// undelivered) and lets the buffers go.
    pub fn write(&mut self, hub: &mut Hub<Keys>, now: Instant, n: usize) -> usize {
        if self.disconnected {
            self.drop_pending();
            return 0;
        }
        let before = self.pending_bytes();
        let total = n.min(before);
        let mut left = total;
        for chunk in self.batch.iter() {
            let take = chunk.len().min(left);
            self.written.extend_from_slice(&chunk[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        if total > 0 {
            let result = hub.handle_transmitted(self.id, now, total, &mut self.batch);
            assert_eq!(
                result.is_err(),
                self.released,
                "handle_transmitted on {:?}",
                self.id
            );
            if result.is_ok() {
                assert_eq!(
                    self.pending_bytes(),
                    before - total,
                    "the written bytes leave the batch"
                );
            }
        }
        total
    }

    /// Forgets what was handed out (a transport that failed or was closed).
    pub fn drop_pending(&mut self) {
        self.batch = Batch::new();
    }
}
