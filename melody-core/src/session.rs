//! One session's protocol state: handshake, frames through tungstenite, close, finish.
//!
//! Hub-wide concerns (the registry, topics, the timer wheel, the ready queue) live in
//! `hub.rs`; this file only changes one session and reports what it did.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::{Error as WsError, Message};

use crate::batch::Batch;
use crate::budget::MemoryBudget;
use crate::deflate::{Compression, Deflater};
use crate::error::{HandshakeRejection, SessionError};
use crate::event::Event;
use crate::event_queue::EventQueue;
use crate::frame_log::{FormLane, LOG_AT_MOST};
use crate::handshake::{self, Accept, Parsed, RequestHead, StreamAccept};
use crate::inbound::{InboundGate, Rules, Step};
use crate::memory_stream::{self, MemoryStream};
use crate::outbox::{Admit, Bounds, Completed, Offer, Outbox, Outgoing, Wire, ENCODE_AT_MOST};
use crate::prepared::{close_frame, truncate_reason, MessageKind, Prepared};
use crate::publication::Publication;
use crate::shared_copies::SharedCopies;
use crate::sse;
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
    /// Memory held by the session's own permessage-deflate compressor
    /// ([`Compression::Dedicated`] with context takeover; 0 until its first compressed
    /// message, and in every other mode): zlib-rs's allocations for its window, 320 KiB
    /// at the default 15 bits.
    pub compressor_bytes: usize,
}

/// The counters a session keeps itself (see [`SessionStats`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) received: u64,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
}

/// Which protocol a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// A WebSocket: messages both ways, pings and pongs, a close handshake.
    WebSocket,
    /// A Server-Sent Events stream: events from the server only, a comment line as
    /// keepalive; the client ends it by closing the connection.
    EventStream,
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
        /// tungstenite's context; `None` while the session is idle (see `trim`): it is
        /// made again, the same, at the next frame.
        ws: Option<Box<WebSocketContext>>,
        reading: bool,
        /// Reads frame headers before tungstenite does (one pointer while idle).
        gate: InboundGate,
    },
    /// An event stream after its `200`: bytes from the client are discarded.
    Stream,
    Finished,
}

/// How a held request will be answered once admitted.
pub(crate) enum Answer {
    Upgrade(Accept),
    Stream(StreamAccept),
}

/// A request held for a verdict: what its 101 and the open session will need.
pub(crate) struct Awaiting {
    pub(crate) head: RequestHead,
    answer: Answer,
    /// Bytes past the request head (frames sent before our answer), kept for the open
    /// session, bounded by `max_handshake_size`.
    leftover: Vec<u8>,
}

/// Limits set for one session by its [`Admission`](crate::Admission): its outbox bounds
/// and its largest inbound message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Overrides {
    messages: Option<usize>,
    bytes: Option<Option<usize>>,
    /// Kept here, since an idle session releases its tungstenite context.
    max_message_size: Option<usize>,
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
    /// The session was closed for a message not completed in time.
    pub(crate) message_timeout: bool,
    /// The session was closed because its partial inbound message did not fit the
    /// memory budget.
    pub(crate) inbound_over_budget: bool,
}

impl Outcome {
    pub(crate) fn merge(&mut self, other: Outcome) {
        self.connected |= other.connected;
        self.finished |= other.finished;
        self.rejected |= other.rejected;
        self.message_timeout |= other.message_timeout;
        self.inbound_over_budget |= other.inbound_over_budget;
        self.undelivered += other.undelivered;
    }
}

/// What a session's handshake recorded: its request, its connection's addresses and the
/// subprotocol agreed. A hub keeps it (boxed) for [`SessionView`](crate::SessionView)'s
/// accessors; an application that keeps these with its own per-session data once the
/// session is connected moves it out with [`Hub::take_origin`](crate::Hub::take_origin),
/// and the session then holds none of it.
#[derive(Debug, Default)]
pub struct SessionOrigin {
    /// The upgrade (or event-stream) request, once the handshake has read it.
    pub request: Option<RequestHead>,
    /// The connection's addresses, as the transport reported them.
    pub connection: ConnectionInfo,
    /// The subprotocol agreed in the handshake, if any.
    pub protocol: Option<String>,
}

/// One session's state machine (the hub owns many; applications see it through
/// [`SessionView`](crate::SessionView) and [`Hub`](crate::Hub) methods).
///
/// In declaration order (`repr(C)`): a broadcast visits every recipient's session per
/// message, so what it reads and writes comes first, on as few cache lines as can
/// hold it; what only the session's own turns use follows.
#[repr(C)]
pub(crate) struct SessionMachine<U> {
    // ---- read and written by every delivery ----
    pub(crate) serial: u32,
    /// Queued in the hub's ready list.
    pub(crate) ready: bool,
    /// Data was queued since the last ping tick (see `trim`).
    pub(crate) data_since_ping: bool,
    /// A data message was received since the last ping tick (see `is_quiet`).
    received_since_ping: bool,
    /// Our last keepalive ping has had no pong yet (see `is_quiet`).
    awaiting_pong: bool,
    pub(crate) kind: SessionKind,
    /// Text messages go out as binary frames (see `Admission::binary_writes`).
    binary_writes: bool,
    /// History topics' messages carry their position (see `Admission::positions`).
    positions: bool,
    /// It agreed to permessage-deflate (`meta.deflate` is set): read per delivery
    /// without reaching into `meta`.
    compressed: bool,
    /// An event stream whose HTTP framing (chunks) we write ourselves.
    chunked: bool,
    /// `Connect` was emitted (and the session counted as open).
    pub(crate) connected: bool,
    // (The next two belong to the session's own turns; here they fill padding.)
    /// Our close frame (or error response) has been written out.
    close_written: bool,
    /// After our close frame is written, wait for the peer's before finishing.
    await_peer_close: bool,
    pub(crate) outbox: Outbox,
    /// The driver's part; its waker is taken when a delivery makes the session ready.
    pub(crate) user: U,
    /// Read by a delivery only when the outbox was empty (to arm the write deadline).
    pub(crate) timers: SessionTimers,
    /// Limits of this session's admission, if it set any (boxed: most have none).
    overrides: Option<Box<Overrides>>,
    pub(crate) events: EventQueue,
    pub(crate) phase: Phase,
    // ---- the session's own turns ----
    /// What the handshake recorded, until the application takes it (`Hub::take_origin`).
    pub(crate) origin: Option<Box<SessionOrigin>>,
    /// permessage-deflate as agreed in the handshake (`None`: no compressed frames).
    pub(crate) deflate: Option<crate::DeflateParams>,
    /// How this session compresses what it sends: the configured mode when it agreed
    /// to permessage-deflate, `Off` otherwise.
    pub(crate) compression: Compression,
    peer_closed: bool,
    pub(crate) topics: Vec<Membership>,
    /// Messages received, sent and dropped; the rest of [`SessionStats`] is read off
    /// the outbox and the compressor when asked for.
    pub(crate) counters: Counters,
    /// Bytes of partial inbound frames and messages charged to the memory budget
    /// (see `settle_inbound`).
    inbound_charged: usize,
    /// The session's own compressor (`Compression::Dedicated` with context takeover),
    /// created when its first compressed message leaves the outbox.
    pub(crate) deflater: Option<Box<Deflater>>,
}

/// The context every session operation needs from the hub.
pub(crate) struct Ctx<'a> {
    pub(crate) now: Instant,
    pub(crate) index: u32,
    pub(crate) config: &'a crate::Config,
    pub(crate) ws_config: &'a WebSocketConfig,
    pub(crate) wheel: &'a mut TimerWheel,
    pub(crate) scratch: &'a mut Vec<u8>,
    /// The hub's memory budget: outboxes are settled against it by the hub after each
    /// operation; a partial inbound message reserves its bytes here as they arrive.
    pub(crate) budget: &'a mut MemoryBudget,
    /// The hub's compressors for shared compressed copies, and its frame logs.
    pub(crate) copies: &'a mut SharedCopies,
    /// Whether plain frames of up to 1 KiB go to the frame logs (a fan-out) rather
    /// than into the outbox (one session's own message: nobody would share its slot).
    /// The fan-out must have begun (`FrameLogs::begin_fanout`).
    pub(crate) log_frames: bool,
    /// Cache of [`Ctx::write_deadline`]; `NEVER` until first needed.
    pub(crate) write_tick: Tick,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        now: Instant,
        config: &'a crate::Config,
        ws_config: &'a WebSocketConfig,
        wheel: &'a mut TimerWheel,
        scratch: &'a mut Vec<u8>,
        budget: &'a mut MemoryBudget,
        copies: &'a mut SharedCopies,
    ) -> Self {
        Ctx {
            now,
            index: 0,
            config,
            ws_config,
            wheel,
            scratch,
            budget,
            copies,
            log_frames: false,
            write_tick: NEVER,
        }
    }

    fn arm<U>(&mut self, session: &mut SessionMachine<U>, kind: TimerKind, at: Instant) {
        self.wheel
            .arm(&mut session.timers, self.index, session.serial, kind, at);
    }

    /// Where `offer`, of the form `lane`, is held in the hub's log of that form, and
    /// its length: a plain frame of a fan-out, up to 1 KiB, is (appended once per
    /// publication) unless the log is full.
    #[inline]
    fn logged(&mut self, offer: &Offer<'_>, lane: FormLane) -> Option<(u64, usize)> {
        let Offer::Copy(frame) = offer else {
            return None;
        };
        if !self.log_frames || frame.wire_len() > LOG_AT_MOST {
            return None;
        }
        let at = self.copies.frames.position_in_fanout(lane, frame)?;
        Some((at, frame.wire_len()))
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

/// What a session queues: a position in a frame log, or a message in a form of its
/// own.
enum Queue<'a> {
    Logged { lane: FormLane, at: u64, len: usize },
    Form(Offer<'a>),
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

/// tungstenite's settings for this session: the hub's, with its admission's message
/// size limit if it set one.
fn session_ws_config(hub: WebSocketConfig, overrides: &Option<Box<Overrides>>) -> WebSocketConfig {
    match overrides.as_ref().and_then(|o| o.max_message_size) {
        Some(max) => hub.max_message_size(Some(max)).max_frame_size(Some(max)),
        None => hub,
    }
}

impl<U> SessionMachine<U> {
    /// Its counters now, with what it holds queued.
    pub(crate) fn stats(&self) -> SessionStats {
        let Counters {
            received,
            sent,
            dropped,
        } = self.counters;
        SessionStats {
            received,
            sent,
            dropped,
            queued: self.outbox.data_len(),
            queued_bytes: self.outbox.data_bytes(),
            compressor_bytes: self.deflater.as_ref().map_or(0, |d| d.memory()),
        }
    }

    pub(crate) fn new(serial: u32, info: ConnectionInfo, user: U) -> Self {
        SessionMachine {
            serial,
            phase: Phase::Handshake {
                buf: Vec::new(),
                awaiting: None,
            },
            outbox: Outbox::default(),
            events: EventQueue::default(),
            timers: SessionTimers::default(),
            origin: Some(Box::new(SessionOrigin {
                request: None,
                connection: info,
                protocol: None,
            })),
            deflate: None,
            compression: Compression::Off,
            user,
            topics: Vec::new(),
            counters: Counters::default(),
            ready: false,
            data_since_ping: false,
            received_since_ping: false,
            awaiting_pong: false,
            connected: false,
            close_written: false,
            overrides: None,
            await_peer_close: false,
            peer_closed: false,
            kind: SessionKind::WebSocket,
            chunked: false,
            binary_writes: false,
            positions: false,
            compressed: false,
            inbound_charged: 0,
            deflater: None,
        }
    }

    pub(crate) fn state(&self) -> SessionState {
        match self.phase {
            Phase::Handshake { .. } => SessionState::Handshake,
            Phase::Open { .. } | Phase::Stream if self.outbox.is_sealed() => SessionState::Closing,
            Phase::Open { .. } | Phase::Stream => SessionState::Open,
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

    /// Bytes the session holds of inbound frames and messages not yet complete (the
    /// gate's partial frame and what tungstenite holds of a fragmented message): what
    /// a global memory budget charges for input in progress.
    #[inline]
    pub(crate) fn held_inbound_bytes(&self) -> usize {
        match &self.phase {
            Phase::Open { gate, .. } => gate.held_bytes(),
            _ => 0,
        }
    }

    /// Charges the memory budget with what the session now holds of partial inbound
    /// frames and messages (or gives back what it no longer holds). When the budget
    /// cannot take the growth, the partial data is discarded and the session closed
    /// with 1013: new inbound data is refused, never held past the budget. The hub
    /// calls this after every operation on the session.
    #[inline]
    pub(crate) fn settle_inbound(&mut self, ctx: &mut Ctx<'_>) -> Outcome {
        let held = self.held_inbound_bytes();
        if held == self.inbound_charged {
            // The usual answer, after every operation: nothing changed.
            return Outcome::default();
        }
        self.settle_inbound_change(ctx, held)
    }

    /// [`SessionMachine::settle_inbound`] when the bytes held changed.
    #[inline(never)]
    fn settle_inbound_change(&mut self, ctx: &mut Ctx<'_>, held: usize) -> Outcome {
        if held < self.inbound_charged {
            ctx.budget.release(self.inbound_charged - held);
            self.inbound_charged = held;
            return Outcome::default();
        }
        if ctx.budget.reserve(held - self.inbound_charged) {
            self.inbound_charged = held;
            return Outcome::default();
        }
        if let Phase::Open { gate, .. } = &mut self.phase {
            *gate = InboundGate::default();
        }
        let mut outcome = self.fail(ctx, SessionError::OverBudget);
        outcome.inbound_over_budget = true;
        // What tungstenite still holds of the message goes with the session, which
        // reads nothing more: the charge ends here.
        ctx.budget.release(self.inbound_charged);
        self.inbound_charged = 0;
        outcome
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
            _ => self.origin.as_ref()?.request.as_ref(),
        }
    }

    /// No data message went either way since the last ping tick (or since it opened),
    /// and no pong is due: its next wakeup is its next ping, or news.
    pub(crate) fn is_quiet(&self) -> bool {
        !self.data_since_ping && !self.received_since_ping && !self.awaiting_pong
    }

    /// Frees the memory of empty queues, unless data flowed since the last ping tick:
    /// a session in steady use keeps its buffers (no allocation per message), one idle
    /// for a ping period holds none.
    pub(crate) fn trim(&mut self) -> bool {
        if self.data_since_ping {
            return false;
        }
        self.events.trim();
        self.outbox.trim();
        if let Phase::Open { ws, reading, gate } = &mut self.phase {
            gate.trim(self.deflate.as_ref());
            // tungstenite holds nothing between messages (it gets whole frames and is
            // read until it wants more), so a fresh context at the next frame is the
            // same; not while closing, where its state remembers the close.
            let quiet = *reading && !gate.message_in_progress() && !self.peer_closed;
            if quiet && !self.outbox.is_sealed() {
                *ws = None;
            }
        }
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
            if self.kind == SessionKind::EventStream {
                // An event-stream client has nothing to say: what it sends is discarded.
                return Outcome::default();
            }
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
        if ctx.config.event_streams && handshake::is_event_stream_request(&request) {
            return self.handle_stream_request(ctx, request, head, at_capacity, await_verdict);
        }
        if let Some(page) = &ctx.config.http_page {
            if request.method() == tungstenite::http::Method::GET
                && !handshake::asks_upgrade(&request)
                && page.serves(request.uri().path())
            {
                // Not a WebSocket client: answer with the page and end, without an error.
                self.outbox
                    .seal_with_close(handshake::page_response(page.html()));
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
                    answer: Answer::Upgrade(accept),
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

    /// Answers (or holds for a verdict) a request for an event stream.
    fn handle_stream_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: Box<handshake::Request>,
        head: RequestHead,
        at_capacity: bool,
        await_verdict: bool,
    ) -> Outcome {
        let accepted = match handshake::validate_stream(&request, ctx.config) {
            Ok(_) if at_capacity => Err(HandshakeRejection::new(
                tungstenite::http::StatusCode::SERVICE_UNAVAILABLE,
                "session limit reached, try again later",
            )),
            other => other,
        };
        let accept = match accepted {
            Ok(accept) => accept,
            Err(rejection) => {
                self.reject(ctx, rejection);
                return Outcome {
                    rejected: true,
                    ..Outcome::default()
                };
            }
        };
        self.kind = SessionKind::EventStream;
        self.chunked = true;
        if await_verdict {
            let held = Awaiting {
                head: RequestHead::parsed(*request),
                answer: Answer::Stream(accept),
                leftover: Vec::new(),
            };
            if let Phase::Handshake { awaiting, .. } = &mut self.phase {
                *awaiting = Some(Box::new(held));
            }
            self.events.push_back(Event::Request);
            return Outcome::default();
        }
        self.outbox.push_control(handshake::stream_head(&accept));
        self.establish_stream(ctx, head, true)
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
        self.apply_overrides(admission);
        // The control lane goes out before the data lane: the 101 (or 200) precedes
        // whatever was published to the session's topics while it waited.
        let Awaiting {
            head,
            answer,
            leftover,
        } = *held;
        match answer {
            Answer::Upgrade(accept) => {
                self.outbox
                    .push_control(handshake::switching_protocols(&accept));
                (true, self.establish(ctx, head, accept, leftover))
            }
            Answer::Stream(accept) => {
                self.outbox.push_control(handshake::stream_head(&accept));
                (true, self.establish_stream(ctx, head, true))
            }
        }
    }

    /// The admission's settings that live outside the WebSocket context.
    fn apply_overrides(&mut self, admission: &crate::verdict::Admission) {
        if admission.message_buffer_size.is_some() || admission.message_buffer_bytes.is_some() {
            let overrides = self.overrides.get_or_insert_with(Box::default);
            overrides.messages = admission.message_buffer_size;
            overrides.bytes = admission.message_buffer_bytes;
        }
        if let Some(on) = admission.binary_writes {
            self.binary_writes = on;
        }
        if let Some(on) = admission.positions {
            self.positions = on;
        }
        if let Some(max) = admission.max_message_size {
            self.overrides
                .get_or_insert_with(Box::default)
                .max_message_size = Some(max);
        }
    }

    /// Applies an admission's settings to a session already open (one an HTTP
    /// framework answered after judging its request).
    pub(crate) fn apply_admission(&mut self, admission: &crate::verdict::Admission) {
        self.apply_overrides(admission);
        if let (Some(max), Phase::Open { ws: Some(ws), .. }) =
            (admission.max_message_size, &mut self.phase)
        {
            ws.set_config(|config| {
                config.max_message_size = Some(max);
                config.max_frame_size = Some(max);
            });
        }
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
        let discarded = self.outbox.discard_queued_data(&mut ctx.copies.frames);
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
        match &self.overrides {
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
        if let Some(origin) = &mut self.origin {
            origin.request = Some(request.into_session_head());
            origin.protocol = accept.protocol;
        }
        self.deflate = accept.deflate;
        self.compressed = accept.deflate.is_some();
        if accept.deflate.is_some() {
            self.compression = ctx.config.compression;
        }
        self.phase = Phase::Open {
            ws: None,
            reading: true,
            gate: InboundGate::default(),
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
        // Frames that came with the request go through the gate like any others.
        outcome.merge(self.handle_frames(ctx, &leftover));
        outcome
    }

    /// Enters the streaming phase of an event stream (after our `200`, or after an
    /// HTTP framework's); `chunked` when we write the HTTP framing ourselves.
    pub(crate) fn establish_stream(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: RequestHead,
        chunked: bool,
    ) -> Outcome {
        if let Some(origin) = &mut self.origin {
            origin.request = Some(request);
        }
        self.kind = SessionKind::EventStream;
        self.chunked = chunked;
        self.phase = Phase::Stream;
        self.connected = true;
        self.timers.disarm(TimerKind::Handshake);
        // No pong deadline: an event stream has no pongs. A vanished client shows as a
        // keepalive that cannot be written (write_wait) or as a transport error.
        let ping_at = ctx.now + ctx.config.ping_period;
        ctx.arm(self, TimerKind::Ping, ping_at);
        if let Some(retry) = ctx.config.event_stream_retry {
            self.outbox.push_control(sse::retry_field(retry, chunked));
        }
        self.events.push_back(Event::Connect);
        Outcome {
            connected: true,
            ..Outcome::default()
        }
    }

    // ---- frames -------------------------------------------------------------------

    /// Feeds WebSocket bytes through the inbound gate and tungstenite, turning
    /// messages into events. The gate hands tungstenite one complete frame at a time
    /// (inflated, if it was compressed); see `inbound`.
    pub(crate) fn handle_frames(&mut self, ctx: &mut Ctx<'_>, input: &[u8]) -> Outcome {
        let Phase::Open { ws, reading, gate } = &mut self.phase else {
            return Outcome::default();
        };
        if !*reading {
            return Outcome::default();
        }
        let max_message_size = self
            .overrides
            .as_ref()
            .and_then(|o| o.max_message_size)
            .or(ctx.ws_config.max_message_size);
        let rules = Rules {
            max_message_size: max_message_size.unwrap_or(usize::MAX),
            deflate: self.deflate,
        };
        ctx.scratch.clear();
        let mut rest = input;
        let mut failure = None;
        let mut pong = false;
        'frames: loop {
            let frame = match gate.next(&mut rest, &rules) {
                Step::Frame(frame) => frame,
                // tungstenite has nothing to add to a whole message while it is open
                // both ways; once either side closed, its state judges what comes.
                Step::Whole(whole)
                    if !self.peer_closed && ws.as_ref().is_none_or(|ws| ws.can_write()) =>
                {
                    let payload = whole.payload();
                    let event = if whole.text {
                        match Utf8Bytes::try_from(payload) {
                            Ok(text) => Event::Text(text),
                            Err(_) => {
                                failure = Some(SessionError::InvalidUtf8);
                                *reading = false;
                                break;
                            }
                        }
                    } else {
                        Event::Binary(payload)
                    };
                    self.counters.received += 1;
                    self.received_since_ping = true;
                    self.events.push_back(event);
                    continue;
                }
                Step::Whole(whole) => whole.frame,
                Step::NeedMore => break,
                Step::Fail(err) => {
                    failure = Some(err);
                    *reading = false;
                    break;
                }
            };
            let mut stream = MemoryStream::new(frame, ctx.scratch);
            let ws = ws.get_or_insert_with(|| {
                let config = session_ws_config(*ctx.ws_config, &self.overrides);
                Box::new(WebSocketContext::new(Role::Server, Some(config)))
            });
            loop {
                match ws.read(&mut stream) {
                    Ok(Message::Text(text)) => {
                        self.counters.received += 1;
                        self.received_since_ping = true;
                        self.events.push_back(Event::Text(text));
                    }
                    Ok(Message::Binary(data)) => {
                        self.counters.received += 1;
                        self.received_since_ping = true;
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
                    // The frame is used up: on to the next.
                    Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // The orderly end of a close handshake maps to no error.
                        failure = SessionError::from_tungstenite(e);
                        *reading = false;
                        break 'frames;
                    }
                }
            }
        }
        // The message-completion deadline runs from a message's first byte to its last;
        // control frames between its fragments do not move it.
        let started = gate.take_message_started();
        let in_progress = *reading && gate.message_in_progress();
        if !in_progress {
            self.timers.disarm(TimerKind::Message);
        } else if started || self.timers.deadline(TimerKind::Message) == NEVER {
            let at = ctx.now + ctx.config.message_completion_timeout;
            ctx.arm(self, TimerKind::Message, at);
        }
        // Keepalive ends when the session starts closing: a late pong re-arms nothing.
        if pong {
            self.awaiting_pong = false;
        }
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
        if ctx.scratch.is_empty() {
            // The usual case: tungstenite wrote nothing (or never ran).
            return;
        }
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
    /// The outcome is the session's own when the offer ended it (a slow consumer still
    /// awaiting its verdict finishes at once).
    pub(crate) fn send(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: &Publication,
        bounds: Bounds,
    ) -> (Admit, Outcome) {
        let mut ended = Outcome::default();
        let admit = self.offer(ctx, msg, bounds, &mut ended);
        (admit, ended)
    }

    /// [`SessionMachine::send`] for a fan-out's hot loop: the outcome of a session the
    /// message ended (`Admit::Disconnect`) goes to `ended`, so the common answer comes
    /// back in registers rather than through memory the caller reads back at once.
    pub(crate) fn offer(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: &Publication,
        bounds: Bounds,
        ended: &mut Outcome,
    ) -> Admit {
        if !self.takes_data() {
            // Closing or over: counted as closed, whatever the message's kind.
            return Admit::Closed;
        }
        let keep = ctx.config.sent_events;
        let form = match self.kind {
            SessionKind::WebSocket if self.positions => {
                self.outgoing(ctx, msg, msg.positioned_frame_for(self.binary_writes))
            }
            SessionKind::WebSocket => self.outgoing(ctx, msg, msg.frame_for(self.binary_writes)),
            SessionKind::EventStream => match msg.event_for(self.chunked) {
                Some(form) => Offer::plain(form, keep),
                None => return Admit::Skipped,
            },
        };
        self.queue_form(ctx, form, bounds, ended)
    }

    /// [`SessionMachine::offer`] for a small message given as its payload: its frame is
    /// built in the outbox itself when this session takes it as a plain frame (a
    /// WebSocket session that sees no positions, has no `Sent` events and does not
    /// compress it). `None`: it needs another form; offer a [`Publication`] instead.
    pub(crate) fn offer_payload(
        &mut self,
        ctx: &mut Ctx<'_>,
        kind: MessageKind,
        payload: &[u8],
        bounds: Bounds,
        ended: &mut Outcome,
    ) -> Option<Admit> {
        if !self.takes_data() {
            return Some(Admit::Closed);
        }
        if self.kind != SessionKind::WebSocket
            || self.positions
            || ctx.config.sent_events
            || self.compresses(ctx, payload.len())
            || payload.len() > ENCODE_AT_MOST
        {
            return None;
        }
        // Text goes in a binary frame to a session that writes binary, as `frame_for`.
        let kind = if self.binary_writes {
            MessageKind::Binary
        } else {
            kind
        };
        Some(self.queue_form(ctx, Offer::Encode { kind, payload }, bounds, ended))
    }

    /// Whether a message with a payload of `len` bytes goes compressed to this session
    /// (then `outgoing` picks how), rather than as its plain frame.
    #[inline]
    fn compresses(&self, ctx: &Ctx<'_>, len: usize) -> bool {
        self.compressed && self.deflate.is_some() && len >= ctx.config.compression_threshold
    }

    /// Whether data may still be queued. A session awaiting its verdict queues data
    /// too (for the topics it was subscribed to meanwhile): it goes out behind the 101,
    /// or is dropped on refusal.
    fn takes_data(&self) -> bool {
        !self.outbox.is_sealed()
            && (matches!(self.phase, Phase::Open { .. } | Phase::Stream) || self.is_awaiting())
    }

    /// Queues a message in the form this session takes: at its position in a fan-out's
    /// frame log when the log holds it, else as an entry of its own (see `queue`).
    #[inline(always)]
    fn queue_form(
        &mut self,
        ctx: &mut Ctx<'_>,
        form: Offer<'_>,
        bounds: Bounds,
        ended: &mut Outcome,
    ) -> Admit {
        let lane = self.form_lane();
        match ctx.logged(&form, lane) {
            Some((at, len)) => self.queue(ctx, Queue::Logged { lane, at, len }, bounds, ended),
            None => self.queue(ctx, Queue::Form(form), bounds, ended),
        }
    }

    /// [`SessionMachine::offer`] in a fan-out, for the usual recipient: a WebSocket
    /// session that takes the publication's plain frame (in its own kind or binary),
    /// with no positions or compression, or an event stream that takes its event; no
    /// `Sent` events. Its position in the frame log is all it queues, reached without
    /// the general path's steps (most of a delivery's instructions were those).
    /// `None`: take the general path.
    #[inline(always)]
    pub(crate) fn offer_logged_plain(
        &mut self,
        ctx: &mut Ctx<'_>,
        msg: &Publication,
        bounds: Bounds,
        ended: &mut Outcome,
    ) -> Option<Admit> {
        if !ctx.log_frames || ctx.config.sent_events || !self.takes_data() {
            return None;
        }
        let (frame, lane) = match self.kind {
            SessionKind::WebSocket if !self.positions => {
                let frame = msg.frame_for(self.binary_writes);
                if self.compresses(ctx, frame.payload_len()) {
                    return None;
                }
                let lane = if self.binary_writes {
                    FormLane::BinaryFrame
                } else {
                    FormLane::Frame
                };
                (frame, lane)
            }
            // No event (a binary message): the general path skips it.
            SessionKind::EventStream => (msg.event_for(self.chunked)?, self.form_lane()),
            SessionKind::WebSocket => return None,
        };
        let len = frame.wire_len();
        if len > LOG_AT_MOST {
            return None;
        }
        let at = ctx.copies.frames.position_in_fanout(lane, frame)?;
        Some(self.queue(ctx, Queue::Logged { lane, at, len }, bounds, ended))
    }

    /// Queues a message within its bounds and the memory budget, and counts what that
    /// dropped.
    #[inline(always)]
    fn queue(
        &mut self,
        ctx: &mut Ctx<'_>,
        what: Queue<'_>,
        bounds: Bounds,
        ended: &mut Outcome,
    ) -> Admit {
        // Claimed before it is queued (see `MemoryBudget::claim`); without the claim, the
        // room left decides, and evicting older messages (`DropOldest`) may make enough.
        let len = match &what {
            Queue::Logged { len, .. } => *len,
            Queue::Form(form) => form.wire_len(),
        };
        let claimed = ctx.budget.claim(len);
        let room = if claimed {
            usize::MAX
        } else {
            ctx.budget.room()
        };
        // The write deadline is armed whenever the outbox holds something: only a
        // message into an empty one arms it (and reads the timers at all).
        let was_empty = self.outbox.is_empty();
        let (bounds, log) = (self.bounds(bounds), &mut ctx.copies.frames);
        let admit = match what {
            Queue::Logged { lane, at, len } => {
                self.outbox.push_logged(lane, at, len, bounds, room, log)
            }
            Queue::Form(form) => self.outbox.push_data_within(form, bounds, room, log),
        };
        if claimed && !matches!(admit, Admit::Queued { .. }) {
            ctx.budget.unclaim(len);
        }
        match admit {
            Admit::Queued { evicted } => {
                self.data_since_ping = true;
                if evicted > 0 {
                    self.count_drops(evicted as u64);
                }
            }
            Admit::Dropped => self.count_drops(1),
            Admit::OverBudget => {
                ctx.budget.count_refusal();
                self.count_drops(1)
            }
            Admit::Disconnect { .. } => {
                let discarded = self.outbox.discard_queued_data(&mut ctx.copies.frames);
                self.count_drops(1 + discarded as u64);
                self.events
                    .push_back(Event::Error(SessionError::SlowConsumer));
                let (_, outcome) = self.close(ctx, CloseCode::Policy, "slow consumer: outbox full");
                *ended = outcome;
                self.sync_write_timer(ctx);
                return Admit::Disconnect { discarded };
            }
            Admit::Closed | Admit::Skipped => {}
        }
        if was_empty {
            self.sync_write_timer(ctx);
        }
        admit
    }

    /// Tells the session its resume on `topic` found a gap: an event for its owner,
    /// and for an event stream the reserved gap event, queued ahead of the replay.
    pub(crate) fn note_gap(
        &mut self,
        ctx: &mut Ctx<'_>,
        topic: &str,
        reason: crate::history::GapReason,
        bounds: Bounds,
    ) -> (Admit, Outcome) {
        self.events.push_back(Event::HistoryGap {
            topic: topic.into(),
            reason,
        });
        if self.kind != SessionKind::EventStream {
            return (Admit::Skipped, Outcome::default());
        }
        match sse::Event::new(reason.as_str()).name(crate::history::GAP_EVENT) {
            Ok(event) => self.send(ctx, &Publication::event(event), bounds),
            // A constant name cannot be invalid; nothing to send if it were.
            Err(_) => (Admit::Skipped, Outcome::default()),
        }
    }

    /// How many more data messages the outbox takes before its message bound.
    pub(crate) fn data_room(&self, bounds: Bounds) -> usize {
        self.bounds(bounds)
            .messages
            .saturating_sub(self.outbox.data_len())
    }

    /// How many more wire bytes the outbox takes before its byte bound.
    pub(crate) fn data_byte_room(&self, bounds: Bounds) -> usize {
        self.bounds(bounds).bytes.map_or(usize::MAX, |max| {
            max.saturating_sub(self.outbox.data_bytes())
        })
    }

    /// Which form of a publication this session takes (see `offer`).
    fn form_lane(&self) -> FormLane {
        match (self.kind, self.positions, self.binary_writes) {
            (SessionKind::WebSocket, false, false) => FormLane::Frame,
            (SessionKind::WebSocket, false, true) => FormLane::BinaryFrame,
            (SessionKind::WebSocket, true, false) => FormLane::Positioned,
            (SessionKind::WebSocket, true, true) => FormLane::PositionedBinary,
            (SessionKind::EventStream, ..) if self.chunked => FormLane::ChunkedEvent,
            (SessionKind::EventStream, ..) => FormLane::Event,
        }
    }

    /// The form of `msg` this session queues (`None`: it has none for this kind).
    fn form_of(&self, msg: &Publication) -> Option<Prepared> {
        match self.kind {
            SessionKind::WebSocket if self.positions => {
                Some(msg.positioned_frame_for(self.binary_writes).clone())
            }
            SessionKind::WebSocket => Some(msg.frame_for(self.binary_writes).clone()),
            SessionKind::EventStream => msg.event_for(self.chunked).cloned(),
        }
    }

    /// The wire bytes `msg` would take in this session's outbox (0: none, skipped).
    pub(crate) fn wire_len_of(&self, msg: &Publication) -> usize {
        self.form_of(msg).map_or(0, |form| form.wire_len())
    }

    /// A message in the form this WebSocket session sends it: compressed when it agreed
    /// to permessage-deflate and the message reaches the threshold.
    /// `frame` is the session's form of `msg` (see `form_of`).
    #[inline]
    fn outgoing<'a>(&self, ctx: &mut Ctx<'_>, msg: &Publication, frame: &'a Prepared) -> Offer<'a> {
        let params = match self.deflate {
            Some(params) if self.compresses(ctx, frame.payload_len()) => params,
            _ => return Offer::plain(frame, ctx.config.sent_events),
        };
        // A dedicated compressor without context takeover would produce exactly the
        // shared copy: share it instead.
        if self.compression == Compression::Dedicated && !params.server_no_context_takeover {
            return Outgoing::new(frame.clone(), Wire::DeflateOnTransmit).into();
        }
        // The shared copies are of the plain frame: a session that sees positions gets
        // a positioned frame of a history message, which has none, and goes as it is.
        if self.positions && msg.position().is_some() {
            return Offer::plain(frame, ctx.config.sent_events);
        }
        let window = params.server_max_window_bits;
        match msg.deflated_for(self.binary_writes, window, &mut ctx.copies.deflaters) {
            Some(compressed) => Outgoing::new(frame.clone(), Wire::Deflated(compressed)).into(),
            None => Offer::plain(frame, ctx.config.sent_events),
        }
    }

    fn count_drops(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.counters.dropped += n;
        if let Some(Event::Dropped { count }) = self.events.back_mut() {
            *count += n;
        } else {
            self.events.push_back(Event::Dropped { count: n });
        }
    }

    /// Starts the closing handshake: the close frame goes out after the queued data.
    /// Returns `false` if the session was already closing or over, and the outcome of
    /// a session that ended at once (one still in its handshake).
    pub(crate) fn close(
        &mut self,
        ctx: &mut Ctx<'_>,
        code: CloseCode,
        reason: &str,
    ) -> (bool, Outcome) {
        match &mut self.phase {
            Phase::Handshake { .. } => (true, self.finish(ctx, None)),
            Phase::Open { ws, .. } if !self.outbox.is_sealed() => {
                let config = session_ws_config(*ctx.ws_config, &self.overrides);
                let ws = ws.get_or_insert_with(|| {
                    Box::new(WebSocketContext::new(Role::Server, Some(config)))
                });
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
                (true, Outcome::default())
            }
            Phase::Stream if !self.outbox.is_sealed() => {
                // An event stream has no close frame: it ends after what is queued,
                // with the last chunk when we frame it (code and reason go nowhere).
                let end = if self.chunked {
                    Bytes::from_static(sse::LAST_CHUNK)
                } else {
                    Bytes::new()
                };
                self.outbox.seal_with_close(end);
                self.await_peer_close = false;
                self.on_sealed();
                self.sync_write_timer(ctx);
                (true, Outcome::default())
            }
            _ => (false, Outcome::default()),
        }
    }

    /// Moves pending buffers into `batch` when it is empty; a finished session
    /// empties it instead (what it held was counted as undelivered).
    pub(crate) fn poll_transmit(
        &mut self,
        ctx: &mut Ctx<'_>,
        batch: &mut Batch,
    ) -> (Transmit, Outcome) {
        if self.is_finished() {
            batch.clear();
            return (Transmit::Finished, Outcome::default());
        }
        if !batch.is_empty() {
            return (Transmit::Write(0), Outcome::default());
        }
        if self.is_awaiting() {
            // Nothing goes out before the verdict's answer.
            return (Transmit::Idle, Outcome::default());
        }
        let (deflater, window) = (
            &mut self.deflater,
            self.deflate.map_or(15, |p| p.server_max_window_bits),
        );
        let n = self.outbox.transmit_with(
            batch,
            ctx.config.sent_events,
            &mut ctx.copies.frames,
            |msg| {
                let deflater = deflater.get_or_insert_with(|| Box::new(Deflater::new(window)));
                deflater
                    .frame(msg.kind(), &msg.payload(), true)
                    // Compression failed and reset the context: this message goes
                    // uncompressed, which the peer accepts (RSV1 is per message).
                    .unwrap_or_else(|| msg.frame().clone())
            },
        );
        if self.outbox.take_closed_without_bytes() {
            // An end that needs no bytes is done once everything before it is written.
            self.close_written = true;
            batch.clear();
            let outcome = self.finish(ctx, None);
            return (Transmit::Finished, outcome);
        }
        self.sync_write_timer(ctx);
        // Small frames share buffers: the driver is told how many buffers, not frames.
        let transmit = if n == 0 {
            Transmit::Idle
        } else {
            Transmit::Write(batch.len())
        };
        (transmit, Outcome::default())
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
        let stream = self.kind == SessionKind::EventStream;
        let (events, stats) = (&mut self.events, &mut self.counters);
        self.outbox.transmitted(batch, n, |done| match done {
            Completed::Data { count, msg } => {
                stats.sent += count as u64;
                if let (true, Some(msg)) = (sent_events, msg) {
                    // An event reports its data, as the message it was built from.
                    let payload = if stream {
                        sse::data_of(&msg.payload())
                    } else {
                        msg.payload()
                    };
                    events.push_back(Event::Sent {
                        kind: msg.kind(),
                        payload,
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
            // The two share a slot: once our close frame is written, it is the close
            // deadline (keepalive stopped when the session began to close).
            TimerKind::Ping | TimerKind::Close if self.close_written => {
                self.fail(ctx, SessionError::CloseTimeout)
            }
            TimerKind::Close => Outcome::default(),
            TimerKind::Ping => {
                self.data_since_ping = false;
                self.received_since_ping = false;
                if self.state() == SessionState::Open {
                    if !self.outbox.has_queued_control() {
                        self.outbox.push_control(self.keepalive());
                    }
                    // An event stream's keepalive comment gets no answer.
                    self.awaiting_pong = self.kind == SessionKind::WebSocket;
                    let next = ctx.wheel.instant_of(tick) + ctx.config.ping_period;
                    ctx.arm(self, TimerKind::Ping, next);
                    self.sync_write_timer(ctx);
                }
                Outcome::default()
            }
            // The two share a slot: an open session's is its message deadline.
            TimerKind::Handshake | TimerKind::Message
                if matches!(self.phase, Phase::Open { .. }) =>
            {
                let outcome = self.fail(ctx, SessionError::MessageTimeout);
                Outcome {
                    message_timeout: true,
                    ..outcome
                }
            }
            TimerKind::Message => Outcome::default(),
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
        }
    }

    /// A ping frame, or an event stream's comment line.
    fn keepalive(&self) -> Bytes {
        match (self.kind, self.chunked) {
            (SessionKind::WebSocket, _) => crate::prepared::ping_frame(),
            (SessionKind::EventStream, true) => Bytes::from_static(sse::KEEPALIVE_CHUNKED),
            (SessionKind::EventStream, false) => Bytes::from_static(sse::KEEPALIVE),
        }
    }

    /// The transport reached end of file.
    pub(crate) fn handle_eof(&mut self, ctx: &mut Ctx<'_>) -> Outcome {
        match self.phase {
            Phase::Finished => Outcome::default(),
            // A handshake that never completed, or a close we started: nothing went wrong.
            Phase::Handshake { .. } => self.finish(ctx, None),
            Phase::Open { .. } if self.close_written || self.peer_closed => self.finish(ctx, None),
            // Closing the connection is how an event-stream client says goodbye.
            Phase::Stream => self.finish(ctx, None),
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
        if self.is_finished() {
            return Outcome::default();
        }
        self.phase = Phase::Finished;
        self.timers.disarm_all();
        let undelivered = self.outbox.clear(&mut ctx.copies.frames);
        self.counters.dropped += undelivered as u64;
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
