//! One session's protocol state: handshake, frames through tungstenite, close, finish.
//!
//! Hub-wide concerns (the registry, topics, the timer wheel, the ready queue) live in
//! `hub.rs`; this file only changes one session and reports what it did.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message};

use crate::batch::Batch;
use crate::error::{HandshakeRejection, SessionError};
use crate::event::Event;
use crate::handshake::{self, Accept, Parsed, RequestHead};
use crate::memory_stream::{self, MemoryStream};
use crate::outbox::{Admit, Bounds, Completed, Outbox};
use crate::prepared::{close_frame, truncate_reason, Prepared};
use crate::timers::{SessionTimers, Tick, TimerKind, TimerWheel, NEVER};
use crate::topics::Membership;

/// Identifies a session within its [`Hub`](crate::Hub). Ids carry a serial number, so
/// the id of a released session never names the session that reuses its slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    pub(crate) index: u32,
    pub(crate) serial: u32,
}

impl SessionId {
    /// A number unique among live sessions (the slot), for logs and maps.
    pub fn index(self) -> u32 {
        self.index
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({}.{})", self.index, self.serial)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.serial)
    }
}

/// Where a connection comes from and arrives at, as the transport knows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The peer's address.
    pub remote_addr: Option<SocketAddr>,
    /// Our address.
    pub local_addr: Option<SocketAddr>,
}

/// Counters of one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Text and binary messages received.
    pub received: u64,
    /// Data messages fully written to the transport.
    pub sent: u64,
    /// Data messages dropped: refused or evicted by the drop policy, discarded on a
    /// slow-consumer disconnect, or left unwritten when the session ended.
    pub dropped: u64,
    /// Data messages queued or in flight now.
    pub queued: usize,
    /// Wire bytes (headers included) of the data messages queued or in flight now: what
    /// counts against [`Config::message_buffer_bytes`](crate::Config::message_buffer_bytes).
    pub queued_bytes: usize,
}

/// The lifecycle stage of a session, as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for (or answering) the HTTP upgrade.
    Handshake,
    /// Connected: messages flow both ways.
    Open,
    /// A close frame is queued or sent; no data is accepted any more.
    Closing,
    /// Over: the `Disconnect` event has been queued.
    Finished,
}

pub(crate) enum Phase {
    Handshake {
        buf: Vec<u8>,
        /// A request that passed our checks and waits for the application's verdict.
        awaiting: Option<Box<Awaiting>>,
    },
    Open {
        ws: Box<WebSocketContext>,
        reading: bool,
    },
    Finished,
}

/// A request held for a verdict: what its 101 and the open session will need.
pub(crate) struct Awaiting {
    pub(crate) head: RequestHead,
    accept: Accept,
    /// Bytes past the request head (frames sent before our answer), kept for the open
    /// session, bounded by `max_handshake_size`.
    leftover: Vec<u8>,
}

/// Outbox bounds set for one session by its [`Admission`](crate::Admission).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoundsOverride {
    messages: Option<usize>,
    bytes: Option<Option<usize>>,
}

/// What the hub must do after a session changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The session just connected (count it as open).
    pub(crate) connected: bool,
    /// The session just finished (remove it from topics, uncount it).
    pub(crate) finished: bool,
    /// The handshake was refused.
    pub(crate) rejected: bool,
    /// Data messages left unwritten when the session finished.
    pub(crate) undelivered: u64,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.connected |= other.connected;
        self.finished |= other.finished;
        self.rejected |= other.rejected;
        self.undelivered += other.undelivered;
    }
}

pub(crate) struct Meta {
    pub(crate) request: Option<RequestHead>,
    pub(crate) info: ConnectionInfo,
    pub(crate) protocol: Option<String>,
}

/// One session's state machine (the hub owns many; applications see it through
/// [`SessionView`](crate::SessionView) and [`Hub`](crate::Hub) methods).
pub(crate) struct SessionMachine<U> {
    pub(crate) serial: u32,
    pub(crate) phase: Phase,
    pub(crate) outbox: Outbox,
    pub(crate) events: VecDeque<Event>,
    pub(crate) timers: SessionTimers,
    pub(crate) meta: Box<Meta>,
    pub(crate) user: U,
    pub(crate) topics: Vec<Membership>,
    pub(crate) stats: SessionStats,
    /// Queued in the hub's ready list.
    pub(crate) ready: bool,
    /// Data was queued since the last ping tick (see `trim`).
    pub(crate) data_since_ping: bool,
    /// `Connect` was emitted (and the session counted as open).
    pub(crate) connected: bool,
    /// Our close frame (or error response) has been written out.
    close_written: bool,
    /// Outbox bounds of this session's admission, if it set any (boxed: most have none).
    bounds_override: Option<Box<BoundsOverride>>,
    /// After our close frame is written, wait for the peer's before finishing.
    await_peer_close: bool,
    peer_closed: bool,
}

/// The context every session operation needs from the hub.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) index: u32,
    pub(crate) config: &'a crate::Config,
    pub(crate) ws_config: WebSocketConfig,
    pub(crate) wheel: &'a mut TimerWheel,
    pub(crate) scratch: &'a mut Vec<u8>,
    /// Cache of [`Ctx::write_deadline`]; `NEVER` until first needed.
    pub(crate) write_tick: Tick,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        now: Instant,
        config: &'a crate::Config,
        ws_config: WebSocketConfig,
        wheel: &'a mut TimerWheel,
        scratch: &'a mut Vec<u8>,
    ) -> Self {
        Ctx {
            now,
            index: 0,
            config,
            ws_config,
            wheel,
            scratch,
            write_tick: NEVER,
        }
    }

    fn arm<U>(&mut self, session: &mut SessionMachine<U>, kind: TimerKind, at: Instant) {
        self.wheel
            .arm(&mut session.timers, self.index, session.serial, kind, at);
    }

    /// The write deadline for bytes queued now, computed once per context: a broadcast
    /// arms it for every recipient.
    fn write_deadline(&mut self) -> Tick {
        if self.write_tick == NEVER {
            self.write_tick = self
                .wheel
                .tick_at_or_after(self.now + self.config.write_wait);
        }
        self.write_tick
    }
}

/// What [`Hub::poll_transmit`](crate::Hub::poll_transmit) asks of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Transmit {
    /// Nothing to write: the batch is empty, and so is the session's outbox.
    Idle,
    /// The batch holds bytes to write, this many buffers of them new (0 when it still
    /// held unwritten bytes, which come first). Write them in order and report what the
    /// transport took with [`Hub::handle_transmitted`](crate::Hub::handle_transmitted).
    Write(usize),
    /// The session is over: the batch was emptied (a session that ends with bytes
    /// still held was cut off by a shutdown deadline or a write or pong timeout, and
    /// the hub counted those messages as undelivered). Close the transport and, once
    /// its `Disconnect` event is taken, release the id.
    Finished,
}

impl<U> SessionMachine<U> {
    pub(crate) fn new(serial: u32, info: ConnectionInfo, user: U) -> Self {
        SessionMachine {
            serial,
            phase: Phase::Handshake {
                buf: Vec::new(),
                awaiting: None,
            },
            outbox: Outbox::default(),
            events: VecDeque::new(),
            timers: SessionTimers::default(),
            meta: Box::new(Meta {
                request: None,
                info,
                protocol: None,
            }),
            user,
            topics: Vec::new(),
            stats: SessionStats::default(),
            ready: false,
            data_since_ping: false,
            connected: false,
            close_written: false,
            bounds_override: None,
            await_peer_close: false,
            peer_closed: false,
        }
    }

    pub(crate) fn state(&self) -> SessionState {
        match self.phase {
            Phase::Handshake { .. } => SessionState::Handshake,
            Phase::Open { .. } if self.outbox.is_sealed() => SessionState::Closing,
            Phase::Open { .. } => SessionState::Open,
            Phase::Finished => SessionState::Finished,
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Finished)
    }

    /// Needs its driver: events to take, bytes to hand out, or a transport to close.
    /// Bytes queued behind a batch still being written wait for the driver to report
    /// that write: it takes them then, without being woken for them.
    pub(crate) fn wants_service(&self) -> bool {
        !self.events.is_empty()
            || (self.outbox.has_unsent() && !self.outbox.has_in_flight() && !self.is_awaiting())
            || self.is_finished()
    }

    /// Waits for the application's verdict on its request (nothing is written meanwhile).
    pub(crate) fn is_awaiting(&self) -> bool {
        matches!(
            &self.phase,
            Phase::Handshake {
                awaiting: Some(_),
                ..
            }
        ) && !self.outbox.is_sealed()
    }

    /// The request held for a verdict, or the open session's request.
    pub(crate) fn request_head(&self) -> Option<&RequestHead> {
        match &self.phase {
            Phase::Handshake {
                awaiting: Some(awaiting),
                ..
            } => Some(&awaiting.head),
            _ => self.meta.request.as_ref(),
        }
    }

    /// Frees the memory of empty queues, unless data flowed since the last ping tick:
    /// a session in steady use keeps its buffers (no allocation per message), one idle
    /// for a ping period holds none.
    pub(crate) fn trim(&mut self) -> bool {
        if self.data_since_ping {
            return false;
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        self.outbox.trim();
        true
    }

    pub(crate) fn start(&mut self, ctx: &mut Ctx<'_>) {
        let at = ctx.now + ctx.config.handshake_timeout;
        ctx.arm(self, TimerKind::Handshake, at);
    }

    // ---- handshake ----------------------------------------------------------------

    /// Feeds handshake bytes; on a complete request, validates and answers it.
    /// `at_capacity` says the session cap is reached; with `await_verdict`, a request
    /// that passes our checks is held for the application's verdict instead of answered.
    pub(crate) fn handle_handshake_input(
        &mut self,
        ctx: &mut Ctx<'_>,
        input: &[u8],
        at_capacity: bool,
        await_verdict: bool,
    ) -> Outcome {
        let Phase::Handshake { buf, awaiting } = &mut self.phase else {
            return Outcome::default();
        };
        if self.outbox.is_sealed() {
            // Answering a refused handshake: whatever else arrives is ignored.
            return Outcome::default();
        }
        if let Some(held) = awaiting {
            // Frames sent before our answer wait for the open session, bounded like
            // the request itself: a peer cannot grow a held session without limit.
            if held.leftover.len() + input.len() > ctx.config.max_handshake_size {
                *awaiting = None;
                self.reject(
                    ctx,
                    HandshakeRejection::new(
                        tungstenite::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "bytes sent before the handshake answer exceed max_handshake_size",
                    ),
                );
                return Outcome {
                    rejected: true,
                    ..Outcome::default()
                };
            }
            held.leftover.extend_from_slice(input);
            return Outcome::default();
        }
        let room = ctx.config.max_handshake_size.saturating_sub(buf.len());
        // The verdict rests on the first `max_handshake_size` bytes alone (a head still
        // incomplete there is too large), never on a byte past them: otherwise how the
        // transport cut the stream could turn a 431 into a 400.
        let take = input.len().min(room);
        buf.extend_from_slice(&input[..take]);
        let (request, leftover, head) = match handshake::parse(buf, ctx.config.max_handshake_size) {
            Parsed::Partial => return Outcome::default(),
            Parsed::Invalid(rejection) => {
                self.reject(ctx, rejection);
                return Outcome {
                    rejected: true,
                    ..Outcome::default()
                };
            }
            Parsed::Complete { request, len } => {
                let mut leftover = buf.split_off(len);
                leftover.extend_from_slice(&input[take..]);
                let head = RequestHead::raw(std::mem::take(buf).into_boxed_slice());
                (request, leftover, head)
            }
        };
        if let Some(page) = &ctx.config.http_page {
            if request.method() == tungstenite::http::Method::GET
                && !handshake::asks_upgrade(&request)
            {
                // Not a WebSocket client: answer with the page and end, without an error.
                self.outbox.seal_with_close(handshake::page_response(page));
                self.await_peer_close = false;
                return Outcome::default();
            }
        }
        let accepted = match handshake::validate(&request, ctx.config) {
            Ok(_) if at_capacity => Err(HandshakeRejection::new(
                tungstenite::http::StatusCode::SERVICE_UNAVAILABLE,
                "session limit reached, try again later",
            )),
            other => other,
        };
        match accepted {
            Ok(accept) if await_verdict => {
                // The parsed request is kept: the application reads it for its verdict.
                let held = Awaiting {
                    head: RequestHead::parsed(*request),
                    accept,
                    leftover,
                };
                if let Phase::Handshake { awaiting, .. } = &mut self.phase {
                    *awaiting = Some(Box::new(held));
                }
                self.events.push_back(Event::Request);
                Outcome::default()
            }
            Ok(accept) => {
                self.outbox
                    .push_control(handshake::switching_protocols(&accept));
                self.establish(ctx, head, accept, leftover)
            }
            Err(rejection) => {
                self.reject(ctx, rejection);
                Outcome {
                    rejected: true,
                    ..Outcome::default()
                }
            }
        }
    }

    fn reject(&mut self, ctx: &mut Ctx<'_>, rejection: HandshakeRejection) {
        let response = handshake::error_response(&rejection);
        self.events
            .push_back(Event::Error(SessionError::Handshake(rejection)));
        self.outbox.seal_with_close(response);
        self.await_peer_close = false;
        // The handshake deadline stays armed: it now bounds the writing of the answer.
        let _ = ctx;
    }

    // ---- verdict ------------------------------------------------------------------

    /// Admits a request held for a verdict: writes the 101 (ahead of any data already
    /// queued for the session's topics) and opens the session with `admission`'s
    /// overrides. Returns `false`, doing nothing, if no request is held (the session
    /// ended meanwhile, or was answered already).
    pub(crate) fn admit(
        &mut self,
        ctx: &mut Ctx<'_>,
        admission: &crate::verdict::Admission,
    ) -> (bool, Outcome) {
        if !self.is_awaiting() {
            return (false, Outcome::default());
        }
        let Phase::Handshake { awaiting, .. } = &mut self.phase else {
            return (false, Outcome::default());
        };
        let Some(held) = awaiting.take() else {
            return (false, Outcome::default());
        };
        if let Some(max) = admission.max_message_size {
            ctx.ws_config = ctx
                .ws_config
                .max_message_size(Some(max))
                .max_frame_size(Some(max));
        }
        if admission.message_buffer_size.is_some() || admission.message_buffer_bytes.is_some() {
            self.bounds_override = Some(Box::new(BoundsOverride {
                messages: admission.message_buffer_size,
                bytes: admission.message_buffer_bytes,
            }));
        }
        // The control lane goes out before the data lane: the 101 precedes whatever
        // was published to the session's topics while it waited.
        self.outbox
            .push_control(handshake::switching_protocols(&held.accept));
        let Awaiting {
            head,
            accept,
            leftover,
        } = *held;
        (true, self.establish(ctx, head, accept, leftover))
    }

    /// Refuses a request held for a verdict with `refusal`'s response; the session ends
    /// once it is written. Returns `false`, doing nothing, if no request is held.
    pub(crate) fn refuse(
        &mut self,
        ctx: &mut Ctx<'_>,
        refusal: &crate::verdict::Refusal,
    ) -> (bool, Outcome) {
        if !self.is_awaiting() {
            return (false, Outcome::default());
        }
        let response = handshake::refusal_response(refusal);
        let err = SessionError::Refused {
            status: refusal.effective_status().as_u16(),
            reason: refusal.reason.clone(),
        };
        (true, self.answer_held(ctx, response, err))
    }

    /// Answers a held request with an HTTP error: what was queued for the session is
    /// dropped (counted), the response is the last thing written.
    fn answer_held(&mut self, ctx: &mut Ctx<'_>, response: Bytes, err: SessionError) -> Outcome {
        if let Phase::Handshake { awaiting, .. } = &mut self.phase {
            *awaiting = None;
        }
        let discarded = self.outbox.discard_queued_data();
        self.count_drops(discarded as u64);
        self.events.push_back(Event::Error(err));
        self.outbox.seal_with_close(response);
        self.await_peer_close = false;
        self.sync_write_timer(ctx);
        Outcome {
            rejected: true,
            undelivered: discarded as u64,
            ..Outcome::default()
        }
    }

    /// The outbox bounds of this session: the hub's, or its admission's overrides.
    fn bounds(&self, hub: Bounds) -> Bounds {
        match &self.bounds_override {
            None => hub,
            Some(o) => Bounds {
                messages: o.messages.unwrap_or(hub.messages),
                bytes: o.bytes.unwrap_or(hub.bytes),
                policy: hub.policy,
            },
        }
    }

    /// Enters the open phase (after our 101, or after an HTTP framework's upgrade).
    pub(crate) fn establish(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: RequestHead,
        accept: Accept,
        leftover: Vec<u8>,
    ) -> Outcome {
        self.meta.request = Some(request);
        self.meta.protocol = accept.protocol;
        let ws = if leftover.is_empty() {
            WebSocketContext::new(Role::Server, Some(ctx.ws_config))
        } else {
            WebSocketContext::from_partially_read(leftover, Role::Server, Some(ctx.ws_config))
        };
        self.phase = Phase::Open {
            ws: Box::new(ws),
            reading: true,
        };
        self.connected = true;
        self.timers.disarm(TimerKind::Handshake);
        let (ping_at, pong_at) = (
            ctx.now + ctx.config.ping_period,
            ctx.now + ctx.config.pong_wait,
        );
        ctx.arm(self, TimerKind::Ping, ping_at);
        ctx.arm(self, TimerKind::Pong, pong_at);
        self.events.push_back(Event::Connect);
        let mut outcome = Outcome {
            connected: true,
            ..Outcome::default()
        };
        // Frames that came with the request are already in tungstenite's buffer.
        outcome.merge(self.handle_frames(ctx, &[]));
        outcome
    }

    // ---- frames -------------------------------------------------------------------

    /// Feeds WebSocket bytes through tungstenite, turning messages into events.
    pub(crate) fn handle_frames(&mut self, ctx: &mut Ctx<'_>, input: &[u8]) -> Outcome {
        let Phase::Open { ws, reading } = &mut self.phase else {
            return Outcome::default();
        };
        if !*reading {
            return Outcome::default();
        }
        ctx.scratch.clear();
        let mut stream = MemoryStream::new(input, ctx.scratch);
        let mut failure = None;
        let mut pong = false;
        loop {
            match ws.read(&mut stream) {
                Ok(Message::Text(text)) => {
                    self.stats.received += 1;
                    self.events.push_back(Event::Text(text));
                }
                Ok(Message::Binary(data)) => {
                    self.stats.received += 1;
                    self.events.push_back(Event::Binary(data));
                }
                Ok(Message::Pong(data)) => {
                    pong = true;
                    self.events.push_back(Event::Pong(data));
                }
                Ok(Message::Close(frame)) => {
                    let (code, reason) = match frame {
                        Some(CloseFrame { code, reason }) => (code, reason),
                        None => (CloseCode::Status, Utf8Bytes::default()),
                    };
                    self.events.push_back(Event::Close { code, reason });
                    self.peer_closed = true;
                }
                // tungstenite queues the pong itself and writes it on the next read.
                Ok(Message::Ping(_)) | Ok(Message::Frame(_)) => {}
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // The orderly end of a close handshake maps to no error.
                    failure = SessionError::from_tungstenite(e);
                    *reading = false;
                    break;
                }
            }
        }
        // Keepalive ends when the session starts closing: a late pong re-arms nothing.
        if pong && !self.outbox.is_sealed() {
            let at = ctx.now + ctx.config.pong_wait;
            ctx.arm(self, TimerKind::Pong, at);
        }
        self.route_written(ctx, false);
        if let Some(err) = failure {
            return self.fail(ctx, err);
        }
        if self.peer_closed {
            return self.after_peer_close(ctx);
        }
        Outcome::default()
    }

    /// Sorts the frames tungstenite wrote into our lanes: a pong replaces any unsent one
    /// (a ping flood cannot grow the outbox), a close frame goes behind the queued data.
    fn route_written(&mut self, ctx: &mut Ctx<'_>, close_is_ours: bool) {
        let mut rest: &[u8] = ctx.scratch;
        while let Some((opcode, len)) = memory_stream::next_frame(rest) {
            let frame = Bytes::copy_from_slice(&rest[..len]);
            rest = &rest[len..];
            match opcode {
                memory_stream::OP_PONG => self.outbox.push_pong(frame),
                memory_stream::OP_CLOSE => {
                    if self.outbox.seal_with_close(frame) {
                        self.await_peer_close = close_is_ours;
                        self.on_sealed();
                    }
                }
                _ => self.outbox.push_control(frame),
            }
        }
        ctx.scratch.clear();
    }

    /// Keepalive stops once the session is closing.
    fn on_sealed(&mut self) {
        self.timers.disarm(TimerKind::Ping);
        self.timers.disarm(TimerKind::Pong);
    }

    fn after_peer_close(&mut self, ctx: &mut Ctx<'_>) -> Outcome {
        if self.close_written {
            return self.finish(ctx, None);
        }
        Outcome::default()
    }

    // ---- output -------------------------------------------------------------------

    /// Offers a data message to the outbox.
    pub(crate) fn send(&mut self, ctx: &mut Ctx<'_>, msg: &Prepared, bounds: Bounds) -> Admit {
        // A session awaiting its verdict queues data too (for the topics it was
        // subscribed to meanwhile): it goes out behind the 101, or is dropped on refusal.
        if !matches!(self.phase, Phase::Open { .. }) && !self.is_awaiting() {
            return Admit::Closed;
        }
        let admit = self.outbox.push_data(msg, self.bounds(bounds));
        match admit {
            Admit::Queued { evicted } => {
                self.data_since_ping = true;
                self.count_drops(evicted as u64)
            }
            Admit::Dropped => self.count_drops(1),
            Admit::Disconnect { .. } => {
                let discarded = self.outbox.discard_queued_data();
                self.count_drops(1 + discarded as u64);
                self.events
                    .push_back(Event::Error(SessionError::SlowConsumer));
                self.close(ctx, CloseCode::Policy, "slow consumer: outbox full");
                self.sync_write_timer(ctx);
                return Admit::Disconnect { discarded };
            }
            Admit::Closed => {}
        }
        self.sync_write_timer(ctx);
        admit
    }

    fn count_drops(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.stats.dropped += n;
        if let Some(Event::Dropped { count }) = self.events.back_mut() {
            *count += n;
        } else {
            self.events.push_back(Event::Dropped { count: n });
        }
    }

    /// Starts the closing handshake: the close frame goes out after the queued data.
    /// Returns `false` if the session was already closing or over.
    pub(crate) fn close(&mut self, ctx: &mut Ctx<'_>, code: CloseCode, reason: &str) -> bool {
        match &mut self.phase {
            Phase::Handshake { .. } => {
                self.finish(ctx, None);
                true
            }
            Phase::Open { ws, .. } if !self.outbox.is_sealed() => {
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from(truncate_reason(reason).to_owned()),
                };
                ctx.scratch.clear();
                let mut stream = MemoryStream::new(&[], ctx.scratch);
                // Writing into memory cannot block; an error means tungstenite already
                // considers the connection closed, and our own frame is used instead.
                if ws.close(&mut stream, Some(frame)).is_err() || ctx.scratch.is_empty() {
                    ctx.scratch.clear();
                    ctx.scratch.extend_from_slice(&close_frame(code, reason));
                }
                self.route_written(ctx, true);
                self.sync_write_timer(ctx);
                true
            }
            _ => false,
        }
    }

    /// Moves pending buffers into `batch` when it is empty; a finished session
    /// empties it instead (what it held was counted as undelivered).
    pub(crate) fn poll_transmit(&mut self, ctx: &mut Ctx<'_>, batch: &mut Batch) -> Transmit {
        if self.is_finished() {
            batch.clear();
            return Transmit::Finished;
        }
        if !batch.is_empty() {
            return Transmit::Write(0);
        }
        if self.is_awaiting() {
            // Nothing goes out before the verdict's answer.
            return Transmit::Idle;
        }
        let n = self.outbox.transmit(batch, ctx.config.sent_events);
        self.sync_write_timer(ctx);
        if n == 0 {
            Transmit::Idle
        } else {
            Transmit::Write(n)
        }
    }

    /// Accounts bytes the transport took from the front of `batch`.
    pub(crate) fn handle_transmitted(
        &mut self,
        ctx: &mut Ctx<'_>,
        n: usize,
        batch: &mut Batch,
    ) -> Outcome {
        if self.is_finished() {
            // Over: what the batch held was counted as undelivered; nothing to account.
            batch.clear();
            return Outcome::default();
        }
        if n == 0 {
            return Outcome::default();
        }
        let mut close_done = false;
        let sent_events = ctx.config.sent_events;
        let (events, stats) = (&mut self.events, &mut self.stats);
        self.outbox.transmitted(batch, n, |done| match done {
            Completed::Data(msg) => {
                stats.sent += 1;
                if let (true, Some(msg)) = (sent_events, msg) {
                    events.push_back(Event::Sent {
                        kind: msg.kind(),
                        payload: msg.payload(),
                    });
                }
            }
            Completed::Close => close_done = true,
        });
        // Progress: the write deadline starts again (or ends, if all is written).
        self.timers.disarm(TimerKind::Write);
        self.sync_write_timer(ctx);
        if close_done {
            self.close_written = true;
            if !self.connected || !self.await_peer_close || self.peer_closed {
                return self.finish(ctx, None);
            }
            let at = ctx.now + ctx.config.close_timeout;
            ctx.arm(self, TimerKind::Close, at);
        }
        Outcome::default()
    }

    pub(crate) fn sync_write_timer(&mut self, ctx: &mut Ctx<'_>) {
        if self.outbox.is_empty() {
            self.timers.disarm(TimerKind::Write);
        } else if self.timers.deadline(TimerKind::Write) == NEVER {
            let tick = ctx.write_deadline();
            ctx.wheel.arm_tick(
                &mut self.timers,
                ctx.index,
                self.serial,
                TimerKind::Write,
                tick,
            );
        }
    }

    // ---- time and failure ---------------------------------------------------------

    /// A deadline of `kind` (due at `tick`) has passed.
    pub(crate) fn on_timer(&mut self, ctx: &mut Ctx<'_>, kind: TimerKind, tick: Tick) -> Outcome {
        match kind {
            TimerKind::Ping => {
                self.data_since_ping = false;
                if self.state() == SessionState::Open {
                    if !self.outbox.has_queued_control() {
                        self.outbox.push_control(crate::prepared::ping_frame());
                    }
                    let next = ctx.wheel.instant_of(tick) + ctx.config.ping_period;
                    ctx.arm(self, TimerKind::Ping, next);
                    self.sync_write_timer(ctx);
                }
                Outcome::default()
            }
            TimerKind::Handshake => {
                if self.is_awaiting() {
                    // No verdict in time: the client still gets an answer (bounded
                    // by write_wait), and is told it may retry.
                    let rejection = HandshakeRejection::new(
                        tungstenite::http::StatusCode::SERVICE_UNAVAILABLE,
                        "request verdict timed out",
                    );
                    let response = handshake::error_response(&rejection);
                    return self.answer_held(ctx, response, SessionError::HandshakeTimeout);
                }
                if matches!(self.phase, Phase::Handshake { .. }) {
                    return self.fail(ctx, SessionError::HandshakeTimeout);
                }
                Outcome::default()
            }
            TimerKind::Pong => self.fail(ctx, SessionError::PongTimeout),
            TimerKind::Write => self.fail(ctx, SessionError::WriteTimeout),
            TimerKind::Close => self.fail(ctx, SessionError::CloseTimeout),
        }
    }

    /// The transport reached end of file.
    pub(crate) fn handle_eof(&mut self, ctx: &mut Ctx<'_>) -> Outcome {
        match self.phase {
            Phase::Finished => Outcome::default(),
            // A handshake that never completed, or a close we started: nothing went wrong.
            Phase::Handshake { .. } => self.finish(ctx, None),
            Phase::Open { .. } if self.close_written || self.peer_closed => self.finish(ctx, None),
            Phase::Open { .. } => self.finish(ctx, Some(SessionError::PeerGone)),
        }
    }

    /// The transport failed.
    pub(crate) fn handle_io_error(&mut self, ctx: &mut Ctx<'_>, err: &std::io::Error) -> Outcome {
        if self.is_finished() {
            return Outcome::default();
        }
        self.finish(ctx, Some(SessionError::from_io(err)))
    }

    /// Reports `err`; closes with its code if one can still be sent, else ends now.
    fn fail(&mut self, ctx: &mut Ctx<'_>, err: SessionError) -> Outcome {
        let code = err.close_code();
        let open = matches!(self.phase, Phase::Open { .. });
        match code {
            Some(code) if open && !self.outbox.is_sealed() => {
                let reason = err.to_string();
                self.events.push_back(Event::Error(err));
                if let Phase::Open { reading, .. } = &mut self.phase {
                    *reading = false;
                }
                self.outbox.seal_with_close(close_frame(code, &reason));
                self.await_peer_close = false;
                self.on_sealed();
                self.sync_write_timer(ctx);
                Outcome::default()
            }
            _ => self.finish(ctx, Some(err)),
        }
    }

    /// Ends the session: drops what was not written (counted), emits the last events.
    pub(crate) fn finish(&mut self, ctx: &mut Ctx<'_>, err: Option<SessionError>) -> Outcome {
        let _ = ctx;
        if self.is_finished() {
            return Outcome::default();
        }
        self.phase = Phase::Finished;
        self.timers.disarm_all();
        let undelivered = self.outbox.clear();
        self.stats.dropped += undelivered as u64;
        if let Some(err) = err {
            self.events.push_back(Event::Error(err));
        }
        self.events.push_back(Event::Disconnect { undelivered });
        Outcome {
            finished: true,
            undelivered: undelivered as u64,
            ..Outcome::default()
        }
    }
}
