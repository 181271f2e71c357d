//! The hub: the registry of sessions, fan-out, topics, timers and the ready queue.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::batch::Batch;
use crate::budget::MemoryBudget;
use slab::Slab;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;

use crate::config::{Config, ConfigError};
use crate::error::{HandshakeRejection, UnknownSession};
use crate::event::Event;
use crate::frame_log::FormLane;
use crate::handshake::{self, Accept, Request, RequestHead, StreamAccept};
use crate::history::{HistoryStats, HistoryStore};
use crate::keys::Keys;
use crate::outbox::{Admit, Bounds, ENCODE_AT_MOST};
use crate::prepared::{MessageKind, Prepared};
use crate::publication::Publication;
use crate::session::{
    ConnectionInfo, Ctx, Outcome, Phase, SessionId, SessionKind, SessionMachine, SessionState,
    SessionStats, Transmit,
};
use crate::shared_copies::SharedCopies;
use crate::target::{Delivery, Target};
use crate::timers::{Due, Tick, TimerWheel, NEVER, TIMER_KINDS};
use crate::topics::Topics;
use crate::SessionView;

/// Stale timer entries tolerated beyond twice the live sessions' before a sweep, so
/// that a small hub does not sweep on every release.
const SWEEP_FLOOR: usize = 1024;

mod resume;

/// Counters of a whole hub.
///
/// ```
/// # use std::time::Instant;
/// # use melody_core::*;
/// # let t0 = Instant::now();
/// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
/// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
/// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
/// # hub.handle_input(id, t0, UPGRADE)?;
/// let stats = hub.stats();
/// assert_eq!((stats.opened, stats.connected, stats.rejected), (1, 1, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Connections opened (handshakes started).
    pub opened: u64,
    /// Handshakes that succeeded.
    pub connected: u64,
    /// Handshakes refused with an HTTP error.
    pub rejected: u64,
    /// Sessions over (every opened connection ends here once).
    pub finished: u64,
    /// Data messages dropped, all sessions together.
    pub dropped: u64,
    /// Binary messages not offered to event-stream sessions, which cannot carry them
    /// (see [`Delivery::skipped`]).
    pub skipped: u64,
    /// Topic history: retained messages and bytes, gaps found on resume (see
    /// [`history`](crate::history)).
    pub history: HistoryStats,
    /// Sessions closed (1008) for a message not complete within
    /// [`Config::message_completion_timeout`].
    pub message_timeouts: u64,
    /// Of the `dropped`, those refused because the memory budget was full
    /// ([`Config::memory_budget`]).
    pub over_budget: u64,
    /// Bytes the sessions hold now against [`Config::memory_budget`]: outboxes (wire
    /// bytes queued or in flight) and partial inbound messages.
    pub memory_held: u64,
    /// Sessions closed (1013) because a partial inbound message they were receiving did
    /// not fit the memory budget ([`Config::memory_budget`]).
    pub inbound_over_budget: u64,
}

/// Many WebSocket server sessions, driven by bytes and time from outside.
///
/// See the [crate documentation](crate) for the event loop that drives it. The hub is
/// single-threaded (`&mut self`); to use it from several threads, put it (or shards of
/// it) behind a lock.
///
/// ```
/// use std::time::Instant;
/// use melody_core::{Config, ConnectionInfo, Event, Hub, Keys, Prepared, Target};
///
/// // Time is an argument: here a simulated clock starting at `t0`.
/// let t0 = Instant::now();
/// let mut hub: Hub<Keys> = Hub::new(Config::default(), t0)?;
/// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
/// hub.handle_input(id, t0, b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
///     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")?;
/// assert!(matches!(hub.poll_event(id), Some(Event::Connect)));
/// assert_eq!(hub.broadcast(t0, &Prepared::text("hello"), Target::All).queued, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Hub<U = Keys> {
    config: Config,
    ws_config: WebSocketConfig,
    sessions: Slab<SessionMachine<U>>,
    topics: Topics,
    wheel: TimerWheel,
    ready: VecDeque<SessionId>,
    due: Vec<Due>,
    scratch: Vec<u8>,
    /// Compressors for shared compressed copies (permessage-deflate), one per window.
    copies: SharedCopies,
    next_serial: u32,
    open: usize,
    last_now: Instant,
    stats: HubStats,
    /// Open sessions counted across several hubs (shards), when shared.
    shared_open: Option<Arc<AtomicUsize>>,
    /// Requests wait for the application's verdict (see `set_request_verdicts`).
    request_verdicts: bool,
    /// Topic histories (empty unless `config.history` has rules).
    history: HistoryStore,
    /// The bytes sessions hold in outboxes and partial messages, against
    /// `Config::memory_budget`.
    budget: MemoryBudget,
    /// The next deadline's tick as `poll_timeout_change` last reported it (`NEVER`:
    /// none); `None` until reported, and after each `handle_timeout`.
    reported_tick: Option<Tick>,
}

impl<U> Hub<U> {
    /// A hub with `config`, whose clock starts at `now`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use melody_core::{Config, Hub, Keys};
    ///
    /// let hub: Hub<Keys> = Hub::new(Config::default(), Instant::now())?;
    /// assert!(hub.is_empty());
    ///
    /// let invalid = Config::default().ping_period(Duration::from_secs(90));
    /// assert!(Hub::<Keys>::new(invalid, Instant::now()).is_err());
    /// # Ok::<(), melody_core::ConfigError>(())
    /// ```
    pub fn new(config: Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let max = config.max_message_size;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(config.read_buffer_size)
            .write_buffer_size(0)
            .max_message_size(Some(max))
            // A frame header announcing more than a message may hold is refused before
            // tungstenite reserves memory for it.
            .max_frame_size(Some(max));
        Ok(Hub {
            history: HistoryStore::new(config.history.clone()),
            budget: MemoryBudget::new(config.memory_budget),
            wheel: TimerWheel::new(now, config.timer_granularity),
            config,
            ws_config,
            sessions: Slab::new(),
            topics: Topics::default(),
            ready: VecDeque::new(),
            due: Vec::new(),
            scratch: Vec::new(),
            copies: SharedCopies::default(),
            next_serial: 0,
            open: 0,
            last_now: now,
            stats: HubStats::default(),
            shared_open: None,
            request_verdicts: false,
            reported_tick: None,
        })
    }

    /// The configuration.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// assert_eq!(hub.config().max_message_size, 64 * 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Time never goes backwards inside the hub, whatever the caller passes.
    fn clock(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    /// Splits the borrow: one session, and the context its operations need.
    fn split(&mut self, id: SessionId, now: Instant) -> Option<(&mut SessionMachine<U>, Ctx<'_>)> {
        let Hub {
            sessions,
            config,
            ws_config,
            wheel,
            scratch,
            budget,
            copies,
            ..
        } = self;
        let session = sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)?;
        let mut ctx = Ctx::new(now, config, ws_config, wheel, scratch, budget, copies);
        ctx.index = id.index;
        Some((session, ctx))
    }

    fn get(&self, id: SessionId) -> Option<&SessionMachine<U>> {
        self.sessions
            .get(id.index as usize)
            .filter(|s| s.serial == id.serial)
    }

    /// Runs one operation on a session, then does the hub's bookkeeping.
    fn with<R>(
        &mut self,
        id: SessionId,
        now: Instant,
        op: impl FnOnce(&mut SessionMachine<U>, &mut Ctx<'_>) -> (R, Outcome),
    ) -> Result<R, UnknownSession> {
        let now = self.clock(now);
        let (session, mut ctx) = self.split(id, now).ok_or(UnknownSession)?;
        let held = session.outbox.data_bytes();
        let (result, mut outcome) = op(session, &mut ctx);
        outcome.merge(session.settle_inbound(&mut ctx));
        session.sync_write_timer(&mut ctx);
        ctx.budget.settle(held, session.outbox.data_bytes());
        self.settle(id, outcome);
        Ok(result)
    }

    /// Counts what an operation did and queues the session for its driver if needed.
    fn settle(&mut self, id: SessionId, outcome: Outcome) {
        if outcome != Outcome::default() {
            self.count_outcome(id, outcome);
        }
        if let Some(s) = self.sessions.get_mut(id.index as usize) {
            if s.serial == id.serial && !s.ready && s.wants_service() {
                s.ready = true;
                self.ready.push_back(id);
            }
        }
    }

    /// The counts and membership an operation's outcome changes.
    fn count_outcome(&mut self, id: SessionId, outcome: Outcome) {
        if outcome.connected {
            self.open += 1;
            self.stats.connected += 1;
            if let Some(shared) = &self.shared_open {
                shared.fetch_add(1, Ordering::Relaxed);
            }
        }
        if outcome.inbound_over_budget {
            self.stats.inbound_over_budget += 1;
        }
        if outcome.message_timeout {
            self.stats.message_timeouts += 1;
        }
        if outcome.rejected {
            self.stats.rejected += 1;
        }
        self.stats.dropped += outcome.undelivered;
        if outcome.finished {
            self.stats.finished += 1;
            self.leave_all_topics(id);
            if self.get(id).is_some_and(|s| s.connected) {
                self.open -= 1;
                if let Some(shared) = &self.shared_open {
                    shared.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    // ---- connections ----------------------------------------------------------------

    /// Registers a new connection whose first bytes will be its HTTP upgrade request.
    /// Returns its id; the handshake must complete within `handshake_timeout`.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// assert_eq!(hub.state(id), Some(SessionState::Handshake));
    ///
    /// let request = "GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    ///                Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
    ///                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// hub.handle_input(id, t0, request.as_bytes())?;
    /// assert_eq!(hub.state(id), Some(SessionState::Open));
    /// assert!(matches!(hub.poll_event(id), Some(Event::Connect)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&mut self, now: Instant, info: ConnectionInfo, user: U) -> SessionId {
        let now = self.clock(now);
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        let index = self
            .sessions
            .insert(SessionMachine::new(serial, info, user)) as u32;
        let id = SessionId { index, serial };
        self.stats.opened += 1;
        if let Some((session, mut ctx)) = self.split(id, now) {
            session.start(&mut ctx);
        }
        id
    }

    /// Checks an upgrade request that an HTTP framework received (origin, version, key,
    /// session cap), before it answers 101. On success, the framework sends the
    /// `Sec-WebSocket-Accept` (and protocol) of the returned [`Accept`], upgrades, and
    /// calls [`Hub::open_upgraded`]. A refusal counts in [`HubStats::rejected`], as one
    /// of the built-in handshake does.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// // `request` is an upgrade request an HTTP framework parsed.
    /// let accept = hub.check_upgrade(&request)?;
    /// assert_eq!(accept.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ///
    /// let not_an_upgrade = http::Request::get("/chat").body(())?;
    /// let rejection = hub.check_upgrade(&not_an_upgrade).unwrap_err();
    /// assert!(rejection.status.is_client_error());
    /// assert_eq!(hub.stats().rejected, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_upgrade(&mut self, request: &Request) -> Result<Accept, HandshakeRejection> {
        let validated = handshake::validate(request, &self.config);
        self.admit_or_count(validated)
    }

    /// Counts a handshake refused outside the hub in [`HubStats::rejected`]: a driver
    /// that refuses an upgrade itself (it is shutting down, say) calls this so the
    /// counters still add up.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// // The driver refused an upgrade itself, say while shutting down.
    /// hub.count_rejection();
    /// assert_eq!(hub.stats().rejected, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn count_rejection(&mut self) {
        self.stats.rejected += 1;
    }

    /// Registers a connection an HTTP framework has already upgraded: `request` is the
    /// upgrade request, `leftover` any bytes read past it. The session is open at once.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// let accept = hub.check_upgrade(&request)?;
    /// // The framework answered 101 with `accept.accept_key` and upgraded the connection.
    /// let id = hub.open_upgraded(t0, request, accept, Vec::new(), ConnectionInfo::default(), Keys::new());
    /// assert_eq!(hub.state(id), Some(SessionState::Open));
    /// assert_eq!(hub.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_upgraded(
        &mut self,
        now: Instant,
        request: Request,
        accept: Accept,
        leftover: Vec<u8>,
        info: ConnectionInfo,
        user: U,
    ) -> SessionId {
        let id = self.open(now, info, user);
        let _ = self.with(id, now, |s, ctx| {
            (
                (),
                s.establish(ctx, RequestHead::parsed(request), accept, leftover),
            )
        });
        id
    }

    /// Checks an event-stream request that an HTTP framework received (origin, session
    /// cap; see [`is_event_stream_request`](crate::is_event_stream_request) for telling
    /// one apart). On success, the framework answers `200` with
    /// [`StreamAccept::response_headers`] and a streaming body, and calls
    /// [`Hub::open_event_stream`]; the session's bytes are then the body (the framework
    /// does the HTTP chunking). A refusal counts in [`HubStats::rejected`].
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # let request = http::Request::get("/events")
    /// #     .header("host", "localhost")
    /// #     .header("accept", "text/event-stream")
    /// #     .body(())?;
    /// assert!(is_event_stream_request(&request));
    /// let accept = hub.check_event_stream(&request)?;
    /// let headers = accept.response_headers();
    /// assert!(headers.contains(&("content-type", "text/event-stream".to_owned())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_event_stream(
        &mut self,
        request: &Request,
    ) -> Result<StreamAccept, HandshakeRejection> {
        let validated = handshake::validate_stream(request, &self.config);
        self.admit_or_count(validated)
    }

    /// A request an HTTP framework received, validated: refused with 503 past the
    /// session cap, and every refusal counted in [`HubStats::rejected`].
    fn admit_or_count<A>(
        &mut self,
        validated: Result<A, HandshakeRejection>,
    ) -> Result<A, HandshakeRejection> {
        let checked = validated.and_then(|accept| {
            if self.at_capacity() {
                Err(HandshakeRejection {
                    status: tungstenite::http::StatusCode::SERVICE_UNAVAILABLE,
                    reason: "session limit reached, try again later",
                })
            } else {
                Ok(accept)
            }
        });
        if checked.is_err() {
            self.count_rejection();
        }
        checked
    }

    /// Registers an event stream an HTTP framework answers (see
    /// [`Hub::check_event_stream`]): open at once, its output the bare event stream
    /// (the `retry:` field first), and it ends, once closed, when its queued events
    /// are written, without bytes of its own: the framework ends the body then.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # /// Writes everything the session has to send; returns it as text.
    /// # fn drain(hub: &mut Hub, id: SessionId, now: Instant) -> String {
    /// #     let (mut batch, mut wire) = (Batch::new(), Vec::new());
    /// #     while let Transmit::Write(_) = hub.poll_transmit(id, now, &mut batch) {
    /// #         batch.iter().for_each(|b| wire.extend_from_slice(b));
    /// #         let written = batch.unwritten_bytes();
    /// #         hub.handle_transmitted(id, now, written, &mut batch).unwrap();
    /// #     }
    /// #     String::from_utf8_lossy(&wire).into_owned()
    /// # }
    /// # let request = http::Request::get("/events")
    /// #     .header("host", "localhost")
    /// #     .header("accept", "text/event-stream")
    /// #     .body(())?;
    /// hub.check_event_stream(&request)?;
    /// // The framework answered 200 with the accepted headers; the body is the session's output.
    /// let id = hub.open_event_stream(t0, request, ConnectionInfo::default(), Keys::new());
    /// assert_eq!(hub.kind(id), Some(SessionKind::EventStream));
    ///
    /// hub.send(id, t0, &Prepared::text("hello"));
    /// assert_eq!(drain(&mut hub, id, t0), "retry: 3000\n\ndata: hello\n\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_event_stream(
        &mut self,
        now: Instant,
        request: Request,
        info: ConnectionInfo,
        user: U,
    ) -> SessionId {
        let id = self.open(now, info, user);
        let _ = self.with(id, now, |s, ctx| {
            (
                (),
                s.establish_stream(ctx, RequestHead::parsed(request), false),
            )
        });
        id
    }

    /// Applies `admission`'s per-session settings to a session (one an HTTP framework
    /// opened with [`Hub::open_upgraded`] or [`Hub::open_event_stream`] after judging
    /// its request itself): outbox bounds, binary writes, and for a WebSocket the
    /// largest message. Data already queued keeps its form.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// let accept = hub.check_upgrade(&request)?;
    /// let id = hub.open_upgraded(t0, request, accept, Vec::new(), ConnectionInfo::default(), Keys::new());
    /// // This client gets a one-message outbox.
    /// hub.apply_admission(id, &Admission::new().message_buffer_size(1))?;
    /// assert_eq!(hub.send(id, t0, &Prepared::text("one")).queued, 1);
    /// assert_eq!(hub.send(id, t0, &Prepared::text("two")).dropped, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_admission(
        &mut self,
        id: SessionId,
        admission: &crate::verdict::Admission,
    ) -> Result<(), UnknownSession> {
        let session = self
            .sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)
            .ok_or(UnknownSession)?;
        session.apply_admission(admission);
        Ok(())
    }

    fn at_capacity(&self) -> bool {
        let open = match &self.shared_open {
            Some(shared) => shared.load(Ordering::Relaxed),
            None => self.open,
        };
        self.config.max_sessions.is_some_and(|max| open >= max)
    }

    /// Counts open sessions in `counter` too, and applies `max_sessions` to that count:
    /// for several hubs (shards) that share one session cap. Handshakes completing at
    /// the same moment in different hubs may overshoot the cap by one each.
    ///
    /// ```
    /// use std::sync::{atomic::{AtomicUsize, Ordering}, Arc};
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// let open = Arc::new(AtomicUsize::new(0));
    /// let config = Config::default().max_sessions(Some(1));
    /// let mut shard_a: Hub = Hub::new(config.clone(), t0)?;
    /// let mut shard_b: Hub = Hub::new(config, t0)?;
    /// shard_a.share_session_count(open.clone());
    /// shard_b.share_session_count(open.clone());
    ///
    /// let a = shard_a.open(t0, ConnectionInfo::default(), Keys::new());
    /// shard_a.handle_input(a, t0, UPGRADE)?;
    /// assert_eq!(open.load(Ordering::Relaxed), 1);
    ///
    /// let b = shard_b.open(t0, ConnectionInfo::default(), Keys::new());
    /// shard_b.handle_input(b, t0, UPGRADE)?;
    /// assert_eq!(shard_b.stats().rejected, 1, "the shared cap of 1 is reached");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn share_session_count(&mut self, counter: Arc<AtomicUsize>) {
        counter.fetch_add(self.open, Ordering::Relaxed);
        self.shared_open = Some(counter);
    }

    /// Counts the bytes held against [`Config::memory_budget`] in `counter` too, and
    /// applies the budget to that count: for several hubs (shards) that share one
    /// budget. Give every hub the same budget in its config.
    ///
    /// ```
    /// use std::sync::{atomic::{AtomicUsize, Ordering}, Arc};
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// let held = Arc::new(AtomicUsize::new(0));
    /// // Room for one 7-byte frame ("hello" and its 2-byte header), for both shards.
    /// let config = Config::default().memory_budget(Some(7));
    /// let mut shard_a: Hub = Hub::new(config.clone(), t0)?;
    /// let mut shard_b: Hub = Hub::new(config, t0)?;
    /// shard_a.share_memory_budget(held.clone());
    /// shard_b.share_memory_budget(held.clone());
    /// let a = shard_a.open(t0, ConnectionInfo::default(), Keys::new());
    /// shard_a.handle_input(a, t0, UPGRADE)?;
    /// let b = shard_b.open(t0, ConnectionInfo::default(), Keys::new());
    /// shard_b.handle_input(b, t0, UPGRADE)?;
    ///
    /// assert_eq!(shard_a.send(a, t0, &Prepared::text("hello")).queued, 1);
    /// assert_eq!(held.load(Ordering::Relaxed), 7);
    /// assert_eq!(shard_b.send(b, t0, &Prepared::text("hello")).dropped, 1);
    /// assert_eq!(shard_b.stats().over_budget, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn share_memory_budget(&mut self, counter: Arc<AtomicUsize>) {
        self.budget.share(counter);
    }

    /// Turns [`Event::Sent`] on or off (see [`Config::sent_events`]).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// # /// Writes everything the session has to send; returns it as text.
    /// # fn drain(hub: &mut Hub, id: SessionId, now: Instant) -> String {
    /// #     let (mut batch, mut wire) = (Batch::new(), Vec::new());
    /// #     while let Transmit::Write(_) = hub.poll_transmit(id, now, &mut batch) {
    /// #         batch.iter().for_each(|b| wire.extend_from_slice(b));
    /// #         let written = batch.unwritten_bytes();
    /// #         hub.handle_transmitted(id, now, written, &mut batch).unwrap();
    /// #     }
    /// #     String::from_utf8_lossy(&wire).into_owned()
    /// # }
    /// hub.set_sent_events(true);
    /// hub.send(id, t0, &Prepared::text("hi"));
    /// drain(&mut hub, id, t0);
    /// let events: Vec<Event> = std::iter::from_fn(|| hub.poll_event(id)).collect();
    /// assert!(events.iter().any(|e| matches!(e, Event::Sent { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_sent_events(&mut self, on: bool) {
        self.config.sent_events = on;
    }

    /// Holds every upgrade request that passes the hub's own checks (parse, version,
    /// key, origin, session cap; those still refuse on their own) for the application's
    /// verdict: the session reports [`Event::Request`], stays in
    /// [`SessionState::Handshake`], and gets its answer from [`Hub::admit`] or
    /// [`Hub::refuse`]. Meanwhile it may be subscribed to topics (what is published to
    /// them goes out behind its 101), bytes the peer sends are kept for the session
    /// (past `max_handshake_size` of them, it is refused with 431), and the handshake
    /// timeout still runs: at it, the client gets 503 and the session ends with
    /// [`SessionError::HandshakeTimeout`](crate::SessionError::HandshakeTimeout).
    /// Off by default: requests are answered at once. Applies to requests completed
    /// after the call.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// hub.set_request_verdicts(true);
    /// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// hub.handle_input(id, t0, UPGRADE)?;
    /// assert!(matches!(hub.poll_event(id), Some(Event::Request)));
    /// assert_eq!(hub.state(id), Some(SessionState::Handshake), "awaiting the verdict");
    ///
    /// hub.admit(id, t0, Admission::new())?;
    /// assert!(matches!(hub.poll_event(id), Some(Event::Connect)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_request_verdicts(&mut self, on: bool) {
        self.request_verdicts = on;
    }

    /// The upgrade request of a session awaiting its verdict, or of an open session
    /// (until [`Hub::take_request`] moves it out). Parsed on first use.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// hub.set_request_verdicts(true);
    /// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// hub.handle_input(id, t0, UPGRADE)?;
    /// let request = hub.request(id).expect("a request awaits its verdict");
    /// assert_eq!(request.uri().path(), "/chat");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request(&self, id: SessionId) -> Option<&Request> {
        self.get(id)?.request_head().map(RequestHead::request)
    }

    /// Admits a request awaiting its verdict: writes its 101 and opens the session
    /// ([`Event::Connect`] follows), with `admission`'s per-session overrides. Returns
    /// `Ok(false)`, doing nothing, when the session awaits no verdict: it ended
    /// meanwhile (the peer left, the handshake timed out) or was answered already, so
    /// a late verdict is harmless.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # /// Writes everything the session has to send; returns it as text.
    /// # fn drain(hub: &mut Hub, id: SessionId, now: Instant) -> String {
    /// #     let (mut batch, mut wire) = (Batch::new(), Vec::new());
    /// #     while let Transmit::Write(_) = hub.poll_transmit(id, now, &mut batch) {
    /// #         batch.iter().for_each(|b| wire.extend_from_slice(b));
    /// #         let written = batch.unwritten_bytes();
    /// #         hub.handle_transmitted(id, now, written, &mut batch).unwrap();
    /// #     }
    /// #     String::from_utf8_lossy(&wire).into_owned()
    /// # }
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// hub.set_request_verdicts(true);
    /// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// hub.handle_input(id, t0, UPGRADE)?;
    ///
    /// assert!(hub.admit(id, t0, Admission::new().max_message_size(1 << 20))?);
    /// assert!(!hub.admit(id, t0, Admission::new())?, "answered already");
    /// assert!(drain(&mut hub, id, t0).starts_with("HTTP/1.1 101"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn admit(
        &mut self,
        id: SessionId,
        now: Instant,
        admission: crate::verdict::Admission,
    ) -> Result<bool, UnknownSession> {
        self.with(id, now, |s, ctx| s.admit(ctx, &admission))
    }

    /// Refuses a request awaiting its verdict: the client gets `refusal`'s status,
    /// headers and reason, then the connection ends, reported as
    /// [`SessionError::Refused`](crate::SessionError::Refused) and counted in
    /// [`HubStats::rejected`]. Anything published to the session's topics meanwhile is
    /// dropped. Returns `Ok(false)`, doing nothing, when the session awaits no verdict.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # /// Writes everything the session has to send; returns it as text.
    /// # fn drain(hub: &mut Hub, id: SessionId, now: Instant) -> String {
    /// #     let (mut batch, mut wire) = (Batch::new(), Vec::new());
    /// #     while let Transmit::Write(_) = hub.poll_transmit(id, now, &mut batch) {
    /// #         batch.iter().for_each(|b| wire.extend_from_slice(b));
    /// #         let written = batch.unwritten_bytes();
    /// #         hub.handle_transmitted(id, now, written, &mut batch).unwrap();
    /// #     }
    /// #     String::from_utf8_lossy(&wire).into_owned()
    /// # }
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// hub.set_request_verdicts(true);
    /// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// hub.handle_input(id, t0, UPGRADE)?;
    ///
    /// let refusal = Refusal::new(http::StatusCode::UNAUTHORIZED, "a token is required");
    /// assert!(hub.refuse(id, t0, refusal)?);
    /// assert!(drain(&mut hub, id, t0).starts_with("HTTP/1.1 401"));
    /// assert_eq!(hub.stats().rejected, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refuse(
        &mut self,
        id: SessionId,
        now: Instant,
        refusal: crate::verdict::Refusal,
    ) -> Result<bool, UnknownSession> {
        self.with(id, now, |s, ctx| s.refuse(ctx, &refusal))
    }

    /// Frees the memory a session's empty queues still hold, unless data was queued
    /// for it since its last ping: call it when a session goes idle (a driver parking
    /// it). Sessions in steady use keep their buffers warm (no allocation per message);
    /// idle ones cost only their fixed state. Returns whether it trimmed.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// # /// Writes everything the session has to send; returns it as text.
    /// # fn drain(hub: &mut Hub, id: SessionId, now: Instant) -> String {
    /// #     let (mut batch, mut wire) = (Batch::new(), Vec::new());
    /// #     while let Transmit::Write(_) = hub.poll_transmit(id, now, &mut batch) {
    /// #         batch.iter().for_each(|b| wire.extend_from_slice(b));
    /// #         let written = batch.unwritten_bytes();
    /// #         hub.handle_transmitted(id, now, written, &mut batch).unwrap();
    /// #     }
    /// #     String::from_utf8_lossy(&wire).into_owned()
    /// # }
    /// drain(&mut hub, id, t0);
    /// // The session went idle: its driver parks it and gives back its buffers.
    /// hub.trim(id);
    /// assert_eq!(hub.send(id, t0, &Prepared::text("still works")).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trim(&mut self, id: SessionId) -> bool {
        self.sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)
            .is_some_and(|s| s.trim())
    }

    /// Whether no data message went either way for the session since its last ping
    /// tick (or since it opened, before the first), and the pong to its last ping has
    /// come: a driver may then give up the task or thread it keeps for the session
    /// until its next wakeup, as quiet sessions are most of a large server's and each
    /// wakes only for its next ping or a rare message. (Waiting for the pong, it stays:
    /// one wakeup per ping period instead of two.) `false` for an unknown session.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// hub.handle_input(id, t0, UPGRADE)?;
    /// assert!(hub.is_quiet(id), "open, nothing sent or received yet");
    /// hub.send(id, t0, &Prepared::text("hello"));
    /// assert!(!hub.is_quiet(id), "until its next ping tick");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_quiet(&self, id: SessionId) -> bool {
        self.sessions
            .get(id.index as usize)
            .filter(|s| s.serial == id.serial)
            .is_some_and(|s| s.is_quiet())
    }

    /// Bytes a session holds of inbound frames and messages not yet complete (see
    /// `SessionMachine::held_inbound_bytes`); `None` for an unknown session.
    // The budget charges these bytes per session (`SessionMachine::settle_inbound`);
    // this view is for the gate's tests.
    #[cfg(test)]
    pub(crate) fn held_inbound_bytes(&self, id: SessionId) -> Option<usize> {
        self.get(id).map(|s| s.held_inbound_bytes())
    }

    /// Slots of the frame log in use (for tests of what it keeps).
    #[cfg(test)]
    pub(crate) fn frame_log_slots(&self) -> usize {
        self.copies.frames.slots_in_use()
    }

    /// Entries of a session's data lane (for tests of how messages are queued).
    #[cfg(test)]
    pub(crate) fn data_lane_entries(&self, id: SessionId) -> Option<usize> {
        self.get(id).map(|s| s.outbox.data_entries())
    }

    /// Whether a session holds a tungstenite context (for tests of the idle cost).
    #[cfg(test)]
    pub(crate) fn ws_allocated(&self, id: SessionId) -> Option<bool> {
        self.get(id).map(|s| match &s.phase {
            crate::session::Phase::Open { ws, .. } => ws.is_some(),
            _ => false,
        })
    }

    /// Whether a session's outbox holds its lanes (for tests of the idle cost).
    #[cfg(test)]
    pub(crate) fn lanes_allocated(&self, id: SessionId) -> Option<bool> {
        self.get(id).map(|s| s.outbox.holds_lanes())
    }

    /// Whether a session's inbound gate holds memory (for tests of the idle cost).
    #[cfg(test)]
    pub(crate) fn gate_allocated(&self, id: SessionId) -> bool {
        self.get(id).is_some_and(|s| match &s.phase {
            crate::session::Phase::Open { gate, .. } => gate.is_allocated(),
            _ => false,
        })
    }

    /// Moves a session's upgrade request out of the hub (for a driver that keeps it
    /// elsewhere); later views of the session show no request.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let head = hub.take_request(id).expect("the upgrade request");
    /// assert_eq!(head.request().uri().path(), "/chat");
    /// assert!(hub.request(id).is_none(), "moved out");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_request(&mut self, id: SessionId) -> Option<RequestHead> {
        let session = self
            .sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)?;
        session.origin.as_mut()?.request.take()
    }

    /// Moves out what the session's handshake recorded (its request, addresses and
    /// subprotocol), for an application that keeps these with its own per-session data:
    /// the session then holds none of it, and its view's `request`, `protocol`,
    /// `remote_addr` and `local_addr` answer `None`. Take it once the session is
    /// connected ([`Event::Connect`]): the handshake records into it until then.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// let peer = "192.0.2.7:50000".parse()?;
    /// let id = hub.open(t0, ConnectionInfo { remote_addr: Some(peer), local_addr: None }, Keys::new());
    /// hub.handle_input(id, t0, UPGRADE)?;
    /// let origin = hub.take_origin(id).expect("recorded");
    /// assert_eq!(origin.connection.remote_addr, Some(peer));
    /// assert_eq!(origin.request.map(|head| head.path().to_owned()).as_deref(), Some("/chat"));
    /// assert_eq!(hub.session(id).unwrap().remote_addr(), None, "moved out");
    /// assert!(hub.take_origin(id).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_origin(&mut self, id: SessionId) -> Option<crate::SessionOrigin> {
        let session = self
            .sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)?;
        session.origin.take().map(|origin| *origin)
    }

    /// Feeds bytes received from the transport.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// // Input may come in any pieces: a partial request waits for the rest.
    /// hub.handle_input(id, t0, &UPGRADE[..20])?;
    /// hub.handle_input(id, t0, &UPGRADE[20..])?;
    /// // A masked text frame, "hi" (a zero mask, as client frames must be masked).
    /// hub.handle_input(id, t0, &[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'])?;
    ///
    /// assert!(matches!(hub.poll_event(id), Some(Event::Connect)));
    /// assert!(matches!(hub.poll_event(id), Some(Event::Text(text)) if text == "hi"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_input(
        &mut self,
        id: SessionId,
        now: Instant,
        input: &[u8],
    ) -> Result<(), UnknownSession> {
        let at_capacity = self.at_capacity();
        let await_verdict = self.request_verdicts;
        self.with(id, now, |s, ctx| {
            let outcome = match s.phase {
                Phase::Handshake { .. } => {
                    s.handle_handshake_input(ctx, input, at_capacity, await_verdict)
                }
                _ => s.handle_frames(ctx, input),
            };
            ((), outcome)
        })
    }

    /// The transport reached end of file (the peer closed its side).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.handle_eof(id, t0)?;
    /// let last = std::iter::from_fn(|| hub.poll_event(id)).last();
    /// assert!(matches!(last, Some(Event::Disconnect { .. })));
    /// assert!(hub.is_closed(id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_eof(&mut self, id: SessionId, now: Instant) -> Result<(), UnknownSession> {
        self.with(id, now, |s, ctx| ((), s.handle_eof(ctx)))
    }

    /// The transport failed; the session ends with this error.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
    /// hub.handle_io_error(id, t0, &reset)?;
    /// let events: Vec<Event> = std::iter::from_fn(|| hub.poll_event(id)).collect();
    /// assert!(events.iter().any(|e| matches!(e, Event::Error(_))));
    /// assert!(matches!(events.last(), Some(Event::Disconnect { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_io_error(
        &mut self,
        id: SessionId,
        now: Instant,
        err: &io::Error,
    ) -> Result<(), UnknownSession> {
        self.with(id, now, |s, ctx| ((), s.handle_io_error(ctx, err)))
    }

    /// Output: the bytes to write for a session. When `batch` is empty, moves what the
    /// session's outbox holds into it (control frames first; small frames copied into
    /// one buffer, large ones by reference); when it still holds unwritten bytes, adds nothing and says so. Write the
    /// batch in order and report progress with [`Hub::handle_transmitted`]. A finished
    /// session, or an unknown id, empties the batch and answers [`Transmit::Finished`].
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let mut batch = Batch::new();
    /// assert!(matches!(hub.poll_transmit(id, t0, &mut batch), Transmit::Write(_)));
    /// let first = batch.iter().next().expect("the 101 response");
    /// assert!(first.starts_with(b"HTTP/1.1 101"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_transmit(&mut self, id: SessionId, now: Instant, batch: &mut Batch) -> Transmit {
        // Telling the driver a session is over is its service: it is not listed as ready
        // again for that (a driver releasing it later must not spin on `poll_ready`).
        match self.get(id) {
            None => {
                batch.clear();
                return Transmit::Finished;
            }
            Some(s) if s.is_finished() => {
                batch.clear();
                return Transmit::Finished;
            }
            // Nothing to hand out changes nothing, so it skips the bookkeeping every
            // operation ends with (each one left it settled): a driver asks after every
            // turn, and most answers are this one.
            Some(s) if batch.is_empty() && !s.outbox.has_unsent() => return Transmit::Idle,
            Some(_) => {}
        }
        self.with(id, now, |s, ctx| s.poll_transmit(ctx, batch))
            .unwrap_or_else(|_| {
                batch.clear();
                Transmit::Finished
            })
    }

    /// Input: the transport wrote `n` more bytes from the front of `batch`, the batch
    /// [`Hub::poll_transmit`] filled for this session. The written bytes leave the
    /// batch (a buffer written in part keeps its rest), and each message they complete
    /// counts as sent; the write deadline starts again. Once the session is over, the
    /// batch is emptied instead: what it held was counted as undelivered.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let mut batch = Batch::new();
    /// hub.poll_transmit(id, t0, &mut batch);
    /// let total = batch.unwritten_bytes();
    /// // The socket took only 10 bytes: the rest stays in the batch, to write next.
    /// hub.handle_transmitted(id, t0, 10, &mut batch)?;
    /// assert_eq!(batch.unwritten_bytes(), total - 10);
    /// hub.handle_transmitted(id, t0, total - 10, &mut batch)?;
    /// assert!(batch.is_empty());
    /// assert!(matches!(hub.poll_transmit(id, t0, &mut batch), Transmit::Idle));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_transmitted(
        &mut self,
        id: SessionId,
        now: Instant,
        n: usize,
        batch: &mut Batch,
    ) -> Result<(), UnknownSession> {
        self.with(id, now, |s, ctx| ((), s.handle_transmitted(ctx, n, batch)))
    }

    /// The next event of a session, in order; `Disconnect` is the last.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// while let Some(event) = hub.poll_event(id) {
    ///     match event {
    ///         Event::Connect => println!("{id:?} connected"),
    ///         Event::Text(text) => println!("{id:?} says {text}"),
    ///         Event::Disconnect { .. } => println!("{id:?} is gone"),
    ///         _ => {}
    ///     }
    /// }
    /// assert!(hub.poll_event(id).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_event(&mut self, id: SessionId) -> Option<Event> {
        let session = self
            .sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)?;
        session.events.pop_front()
    }

    /// A session whose driver has work: events to take, bytes to write, or a transport
    /// to close. Each session is listed once until taken.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// // The session has its 101 to write and its Connect event to report.
    /// assert_eq!(hub.poll_ready(), Some(id));
    /// assert_eq!(hub.poll_ready(), None, "listed once until taken");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_ready(&mut self) -> Option<SessionId> {
        while let Some(id) = self.ready.pop_front() {
            if let Some(s) = self.sessions.get_mut(id.index as usize) {
                if s.serial == id.serial {
                    s.ready = false;
                    return Some(id);
                }
            }
        }
        None
    }

    /// Frees a session's slot and returns its user data. Release after taking the
    /// `Disconnect` event; releasing a live session ends it abruptly, unreported.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.user_mut(id).unwrap().set("name", "ada".to_owned());
    /// hub.handle_eof(id, t0)?;
    /// while hub.poll_event(id).is_some() {} // up to Disconnect
    /// let keys = hub.release(id).expect("its user data");
    /// assert_eq!(keys.get::<String>("name").map(String::as_str), Some("ada"));
    /// assert_eq!(hub.connection_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&mut self, id: SessionId) -> Option<U> {
        self.get(id)?;
        let now = self.last_now;
        let _ = self.with(id, now, |s, ctx| ((), s.finish(ctx, None)));
        // A ready-queue entry left behind is skipped by `poll_ready` (serial mismatch).
        let user = self.sessions.remove(id.index as usize).user;
        self.sweep_timers_if_mostly_stale();
        Some(user)
    }

    /// A released session's timer entries stay in the wheel until they come due, so
    /// under churn they would pile up with the churn rate × the periods (254k entries
    /// for no session at all in a churn run). Once they outnumber the live sessions'
    /// possible entries twice over, one sweep drops them: amortized O(1) per release,
    /// and the wheel stays bounded by the sessions, not by the churn rate.
    fn sweep_timers_if_mostly_stale(&mut self) {
        let live_bound = self.sessions.len() * TIMER_KINDS;
        if self.wheel.len() <= 2 * live_bound + SWEEP_FLOOR {
            return;
        }
        let sessions = &self.sessions;
        self.wheel.sweep(|index, serial, kind, tick| {
            sessions
                .get(index as usize)
                .is_some_and(|s| s.serial == serial && s.timers.is_scheduled(kind, tick))
        });
    }

    // ---- sending ----------------------------------------------------------------------

    fn bounds(&self) -> Bounds {
        Bounds {
            messages: self.config.message_buffer_size,
            bytes: self.config.message_buffer_bytes,
            policy: self.config.drop_policy,
        }
    }

    /// Queues a message for one session (an event stream gets a text message as a
    /// data-only event, and skips a binary one).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let delivery = hub.send(id, t0, &Prepared::text("hello"));
    /// assert_eq!(delivery.queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send(&mut self, id: SessionId, now: Instant, msg: &Prepared) -> Delivery {
        self.send_publication(id, now, &Publication::from(msg.clone()))
    }

    /// Queues a publication (a message or a server-sent event) for one session, in
    /// the form its kind needs.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let reading = Publication::event(sse::Event::new("21.5").name("temperature")?);
    /// // A WebSocket gets the data as a text frame; an event stream, the whole event.
    /// assert_eq!(hub.send_publication(id, t0, &reading).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_publication(&mut self, id: SessionId, now: Instant, msg: &Publication) -> Delivery {
        let bounds = self.bounds();
        let mut delivery = Delivery::default();
        match self.with(id, now, |s, ctx| s.send(ctx, msg, bounds)) {
            Ok(admit) => count(&mut delivery, admit),
            Err(UnknownSession) => delivery.closed += 1,
        }
        self.stats.dropped += delivery.dropped as u64;
        self.stats.skipped += delivery.skipped as u64;
        delivery
    }

    /// Queues a text message for one session. Same as [`Hub::send`] with
    /// [`Prepared::text`], but a small message (up to 66 bytes) that the session takes
    /// as a plain frame is framed straight into its outbox: no frame of its own is
    /// allocated and freed, which is most of a small echo's cost in the hub.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.send_text(id, t0, "pong").queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_text(&mut self, id: SessionId, now: Instant, text: &str) -> Delivery {
        self.send_payload(id, now, MessageKind::Text, text.as_bytes())
    }

    /// Queues a binary message for one session, as [`Hub::send_text`] does text.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.send_binary(id, t0, &[0xca, 0xfe]).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_binary(&mut self, id: SessionId, now: Instant, data: &[u8]) -> Delivery {
        self.send_payload(id, now, MessageKind::Binary, data)
    }

    /// `payload` is UTF-8 when `kind` is text (the public callers take `&str`).
    fn send_payload(
        &mut self,
        id: SessionId,
        now: Instant,
        kind: MessageKind,
        payload: &[u8],
    ) -> Delivery {
        if payload.len() > ENCODE_AT_MOST {
            // Encoded outside the session's turn, as any larger message.
            return self.send_publication(
                id,
                now,
                &Publication::from(Prepared::encode(kind, payload)),
            );
        }
        let bounds = self.bounds();
        let mut delivery = Delivery::default();
        let admit = self.with(id, now, |s, ctx| {
            let mut ended = Outcome::default();
            let admit = match s.offer_payload(ctx, kind, payload, bounds, &mut ended) {
                Some(admit) => admit,
                None => {
                    let msg = Publication::from(Prepared::encode(kind, payload));
                    s.offer(ctx, &msg, bounds, &mut ended)
                }
            };
            (admit, ended)
        });
        match admit {
            Ok(admit) => count(&mut delivery, admit),
            Err(UnknownSession) => delivery.closed += 1,
        }
        self.stats.dropped += delivery.dropped as u64;
        self.stats.skipped += delivery.skipped as u64;
        delivery
    }

    /// Queues a message for every session of `target`: one encode, then a position
    /// per recipient (a frame of up to 1 KiB is held once in the hub's log of its
    /// form, and each recipient's outbox keeps its position; a larger one is shared by
    /// reference), no allocation per recipient once outboxes have grown. Event-stream
    /// sessions get a text message as a data-only event (encoded once for all of
    /// them) and skip a binary one ([`Delivery::skipped`]).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let news = Prepared::text("news"); // encoded once for every recipient
    /// assert_eq!(hub.broadcast(t0, &news, Target::All).queued, 1);
    /// assert_eq!(hub.broadcast(t0, &news, Target::AllExcept(id)).queued, 0);
    /// assert_eq!(hub.broadcast(t0, &news, Target::List(&[id])).queued, 1);
    /// let named = |s: &SessionView<'_, Keys>| s.user().contains("name");
    /// assert_eq!(hub.broadcast(t0, &news, Target::Filter(&named)).queued, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn broadcast(&mut self, now: Instant, msg: &Prepared, target: Target<'_, U>) -> Delivery {
        self.publish(now, &Publication::from(msg.clone()), target)
    }

    /// Queues a publication for every session of `target`, each in the form its kind
    /// needs (see [`Publication`]): every form is encoded at most once, however many
    /// recipients share it. Build the publication once to share its encodings across
    /// several hubs (shards).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.subscribe(id, "weather");
    /// let forecast = Publication::event(sse::Event::new("sunny").name("forecast")?);
    /// assert_eq!(hub.publish(t0, &forecast, Target::Topic("weather")).queued, 1);
    /// assert_eq!(hub.publish(t0, &forecast, Target::TopicExcept("weather", id)).queued, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(&mut self, now: Instant, msg: &Publication, target: Target<'_, U>) -> Delivery {
        let now = self.clock(now);
        // A history topic stamps and keeps the message before it goes out, so that
        // positions follow delivery order.
        let stamped = match target {
            Target::Topic(topic) | Target::TopicExcept(topic, _) => {
                self.history.append(topic, now, msg)
            }
            _ => None,
        };
        let msg = stamped.as_ref().unwrap_or(msg);
        let bounds = self.bounds();
        let Hub {
            sessions,
            config,
            ws_config,
            wheel,
            scratch,
            copies,
            topics,
            ready,
            budget,
            ..
        } = self;
        spill_slow_holders(sessions, copies);
        copies.frames.begin_fanout();
        let mut ctx = Ctx::new(now, config, ws_config, wheel, scratch, budget, copies);
        ctx.log_frames = true;
        let mut fan = Fanout {
            msg,
            bounds,
            delivery: Delivery::default(),
            ready,
            ended: Vec::new(),
        };
        match target {
            Target::All | Target::AllExcept(_) | Target::Filter(_) => {
                let except = match target {
                    Target::AllExcept(id) => Some(id),
                    _ => None,
                };
                for (index, session) in sessions.iter_mut() {
                    if !session.connected || session.is_finished() {
                        continue;
                    }
                    let id = SessionId {
                        index: index as u32,
                        serial: session.serial,
                    };
                    if Some(id) == except {
                        continue;
                    }
                    if let Target::Filter(keep) = &target {
                        if !keep(&SessionView::new(id, session)) {
                            continue;
                        }
                    }
                    fan.deliver(id, session, &mut ctx);
                }
            }
            Target::List(ids) => {
                for &id in ids {
                    match sessions
                        .get_mut(id.index as usize)
                        .filter(|s| s.serial == id.serial)
                    {
                        Some(session) => fan.deliver(id, session, &mut ctx),
                        None => fan.delivery.closed += 1,
                    }
                }
            }
            Target::Topic(topic) | Target::TopicExcept(topic, _) => {
                let except = match target {
                    Target::TopicExcept(_, id) => Some(id),
                    _ => None,
                };
                for &id in topics.subscribers(topic) {
                    if Some(id) == except {
                        continue;
                    }
                    if let Some(session) = sessions.get_mut(id.index as usize) {
                        fan.deliver(id, session, &mut ctx);
                    }
                }
            }
        }
        let (delivery, ended) = (fan.delivery, fan.ended);
        for (id, outcome) in ended {
            self.settle(id, outcome);
        }
        self.stats.dropped += delivery.dropped as u64;
        self.stats.skipped += delivery.skipped as u64;
        delivery
    }

    /// Starts closing a session with `code` and `reason`: no more data is accepted, the
    /// close frame goes out after what is queued, then the peer has `close_timeout` to
    /// answer. A session still in its handshake is dropped. Returns `false` if the
    /// session was already closing, over, or unknown.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert!(hub.close(id, t0, CloseCode::Normal, "bye"));
    /// assert_eq!(hub.state(id), Some(SessionState::Closing));
    /// assert!(!hub.close(id, t0, CloseCode::Normal, "bye"), "already closing");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&mut self, id: SessionId, now: Instant, code: CloseCode, reason: &str) -> bool {
        self.with(id, now, |s, ctx| s.close(ctx, code, reason))
            .unwrap_or(false)
    }

    /// Closes every session (e.g. 1001 "going away" on shutdown) and drops the
    /// connections still in their handshake; returns how many sessions started closing.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let handshaking = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// assert_eq!(hub.close_all(t0, CloseCode::Away, "server restarting"), 1);
    /// assert!(hub.is_closed(id) && hub.is_closed(handshaking));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_all(&mut self, now: Instant, code: CloseCode, reason: &str) -> usize {
        let ids: Vec<SessionId> = self.all_connections().collect();
        ids.into_iter()
            .filter(|&id| {
                let was_open = self.get(id).is_some_and(|s| s.connected);
                self.close(id, now, code, reason) && was_open
            })
            .count()
    }

    // ---- time -------------------------------------------------------------------------

    /// When [`Hub::handle_timeout`] should next be called: the earliest deadline,
    /// rounded up to `timer_granularity`. `None` when no deadline is pending.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let next = hub.poll_timeout().expect("a ping is due some day");
    /// assert!(next > t0);
    /// // An event loop sleeps until `next` (or input), then calls `hub.handle_timeout(now)`.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wheel
            .next_tick()
            .map(|tick| self.wheel.instant_of(tick))
    }

    /// [`Hub::poll_timeout`], but only when it changed since the last call (and always
    /// after [`Hub::handle_timeout`]): `None` when the deadline is the one last
    /// reported, `Some(None)` when no deadline is left. For a clock shared by several
    /// hubs that is told each hub's next deadline: told only of changes, it is spared
    /// the conversion and the wakeup test after every operation.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// assert_eq!(hub.poll_timeout_change(), Some(None), "no deadline yet");
    /// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// let next = hub.poll_timeout_change().expect("the handshake deadline is new");
    /// assert_eq!(next, hub.poll_timeout());
    /// assert_eq!(hub.poll_timeout_change(), None, "unchanged");
    /// hub.handle_timeout(t0);
    /// assert_eq!(hub.poll_timeout_change(), Some(next), "reported again after firing");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_timeout_change(&mut self) -> Option<Option<Instant>> {
        let next = self.wheel.next_tick().unwrap_or(NEVER);
        if self.reported_tick == Some(next) {
            return None;
        }
        self.reported_tick = Some(next);
        Some((next != NEVER).then(|| self.wheel.instant_of(next)))
    }

    /// Fires every deadline that has passed by `now`: pings, pong and write deadlines,
    /// handshake and close timeouts. Calling it again with the same `now` does nothing.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// // The peer stays silent: no pong comes, so the session ends after `pong_wait`.
    /// let later = t0 + hub.config().pong_wait + hub.config().timer_granularity;
    /// hub.handle_timeout(later);
    /// assert!(hub.is_closed(id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        // Whoever fired the deadlines needs the next one, changed or not.
        self.reported_tick = None;
        let mut due = std::mem::take(&mut self.due);
        self.wheel.expire(now, &mut due);
        for d in due.drain(..) {
            let Some(session) = self.sessions.get_mut(d.index as usize) else {
                continue;
            };
            if session.serial != d.serial {
                continue;
            }
            let Some(tick) = self.wheel.settle(&mut session.timers, d) else {
                continue;
            };
            let id = SessionId {
                index: d.index,
                serial: d.serial,
            };
            let _ = self.with(id, now, |s, ctx| ((), s.on_timer(ctx, d.kind, tick)));
        }
        self.due = due;
        self.history.evict_expired(now);
    }

    // ---- topics -----------------------------------------------------------------------

    /// Subscribes a session to a topic; `false` if it already was (or is unknown/over).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert!(hub.subscribe(id, "news"));
    /// assert!(!hub.subscribe(id, "news"), "already subscribed");
    /// assert_eq!(hub.subscriber_count("news"), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&mut self, id: SessionId, topic: &str) -> bool {
        if let Some(resume) = self.resume_event_stream(id, topic) {
            return resume.subscribed;
        }
        self.join(id, topic)
    }

    /// Adds a session to a topic's subscribers, nothing more.
    fn join(&mut self, id: SessionId, topic: &str) -> bool {
        let Some(session) = self.get(id) else {
            return false;
        };
        if session.is_finished() || session.topics.iter().any(|(t, _)| &**t == topic) {
            return false;
        }
        let membership = self.topics.subscribe(topic, id);
        if let Some(s) = self.sessions.get_mut(id.index as usize) {
            s.topics.push(membership);
        }
        true
    }

    /// Unsubscribes a session from a topic; `false` if it was not subscribed.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.subscribe(id, "news");
    /// assert!(hub.unsubscribe(id, "news"));
    /// assert!(!hub.unsubscribe(id, "news"));
    /// assert_eq!(hub.topic_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unsubscribe(&mut self, id: SessionId, topic: &str) -> bool {
        let Some(session) = self
            .sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)
        else {
            return false;
        };
        let Some(at) = session.topics.iter().position(|(t, _)| &**t == topic) else {
            return false;
        };
        let (name, pos) = session.topics.swap_remove(at);
        self.remove_member(&name, pos);
        true
    }

    fn remove_member(&mut self, topic: &Arc<str>, pos: u32) {
        if let Some(moved) = self.topics.remove(topic, pos) {
            if let Some(s) = self.sessions.get_mut(moved.index as usize) {
                if let Some(m) = s
                    .topics
                    .iter_mut()
                    .find(|(t, _)| Arc::ptr_eq(t, topic) || t == topic)
                {
                    m.1 = pos;
                }
            }
        }
    }

    fn leave_all_topics(&mut self, id: SessionId) {
        let Some(session) = self.sessions.get_mut(id.index as usize) else {
            return;
        };
        let memberships = std::mem::take(&mut session.topics);
        for (name, pos) in memberships {
            self.remove_member(&name, pos);
        }
    }

    /// The topics a session is subscribed to.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.subscribe(id, "news");
    /// hub.subscribe(id, "sport");
    /// let mut topics: Vec<&str> = hub.topics(id).collect();
    /// topics.sort();
    /// assert_eq!(topics, ["news", "sport"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topics(&self, id: SessionId) -> impl Iterator<Item = &str> + '_ {
        self.get(id)
            .into_iter()
            .flat_map(|s| s.topics.iter().map(|(t, _)| &**t))
    }

    /// How many sessions are subscribed to `topic`.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.subscriber_count("news"), 0);
    /// hub.subscribe(id, "news");
    /// assert_eq!(hub.subscriber_count("news"), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.topics.subscribers(topic).len()
    }

    /// How many topics have at least one subscriber.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.subscribe(id, "news");
    /// hub.subscribe(id, "sport");
    /// assert_eq!(hub.topic_count(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topic_count(&self) -> usize {
        self.topics.topic_count()
    }

    // ---- inspection -------------------------------------------------------------------

    /// Open sessions: connected and not over (closing ones included).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let _handshaking = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// assert_eq!(hub.len(), 1, "the handshaking connection is not a session yet");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether no session is open.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// assert!(hub.is_empty());
    /// let _handshaking = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// assert!(hub.is_empty(), "no session is open yet");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Every connection the hub holds, from handshake to released.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let _handshaking = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// assert_eq!(hub.connection_count(), 2);
    /// assert_eq!(hub.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connection_count(&self) -> usize {
        self.sessions.len()
    }

    /// Entries in the timer wheel, stale ones included: for leak checks. Deletion is
    /// lazy, so a released session's entries (at most one per timer kind) stay until
    /// their deadline comes and [`Hub::handle_timeout`] drops them, or until a release
    /// finds stale entries outnumbering twice the live sessions' (plus 1,024) and
    /// sweeps them all. With no connection left, the count returns to 0 once the
    /// longest period (`ping_period`, `pong_wait`, `handshake_timeout`, `write_wait`,
    /// `close_timeout`) has passed.
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_core::{Config, ConnectionInfo, Hub};
    ///
    /// let t0 = Instant::now();
    /// let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// let id = hub.open(t0, ConnectionInfo::default(), Default::default());
    /// assert_eq!(hub.timer_entries(), 1, "the handshake deadline");
    /// hub.release(id);
    /// assert_eq!(hub.timer_entries(), 1, "stale until its deadline");
    /// hub.handle_timeout(t0 + Config::default().handshake_timeout);
    /// assert_eq!(hub.timer_entries(), 0);
    /// # Ok::<(), melody_core::ConfigError>(())
    /// ```
    pub fn timer_entries(&self) -> usize {
        self.wheel.len()
    }

    /// The ids of the open sessions.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let _handshaking = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// assert_eq!(hub.sessions().collect::<Vec<_>>(), [id]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions
            .iter()
            .filter(|(_, s)| s.connected && !s.is_finished())
            .map(|(i, s)| SessionId {
                index: i as u32,
                serial: s.serial,
            })
    }

    /// The ids of every connection not yet over, handshaking ones included.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let handshaking = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// assert_eq!(hub.all_connections().collect::<Vec<_>>(), [id, handshaking]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn all_connections(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions
            .iter()
            .filter(|(_, s)| !s.is_finished())
            .map(|(i, s)| SessionId {
                index: i as u32,
                serial: s.serial,
            })
    }

    /// A read-only view of a session.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let view = hub.session(id).expect("a live session");
    /// assert_eq!(view.request().map(|r| r.uri().path()), Some("/chat"));
    /// assert_eq!(view.state(), SessionState::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session(&self, id: SessionId) -> Option<SessionView<'_, U>> {
        self.get(id).map(|s| SessionView::new(id, s))
    }

    /// Which protocol a session speaks (known from its request on, so also while it
    /// awaits its verdict); `None` once released.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.kind(id), Some(SessionKind::WebSocket));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kind(&self, id: SessionId) -> Option<SessionKind> {
        self.get(id).map(|s| s.kind)
    }

    /// A session's state; `None` once released (or for an id of another hub).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.state(id), Some(SessionState::Open));
    /// hub.close(id, t0, CloseCode::Normal, "");
    /// assert_eq!(hub.state(id), Some(SessionState::Closing));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state(&self, id: SessionId) -> Option<SessionState> {
        self.get(id).map(SessionMachine::state)
    }

    /// Whether a session is closing, over or unknown (olahol/melody's `IsClosed`).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert!(!hub.is_closed(id));
    /// hub.close(id, t0, CloseCode::Normal, "");
    /// assert!(hub.is_closed(id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self, id: SessionId) -> bool {
        !matches!(
            self.state(id),
            Some(SessionState::Open | SessionState::Handshake)
        )
    }

    /// A session's user data.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// let mut keys = Keys::new();
    /// keys.set("name", "ada".to_owned());
    /// let id = hub.open(t0, ConnectionInfo::default(), keys);
    /// let name = hub.user(id).and_then(|keys| keys.get::<String>("name"));
    /// assert_eq!(name.map(String::as_str), Some("ada"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn user(&self, id: SessionId) -> Option<&U> {
        self.get(id).map(|s| &s.user)
    }

    /// A session's user data, mutably.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.user_mut(id).expect("a live session").set("room", 7u32);
    /// assert_eq!(hub.user(id).and_then(|k| k.get::<u32>("room")), Some(&7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn user_mut(&mut self, id: SessionId) -> Option<&mut U> {
        self.sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)
            .map(|s| &mut s.user)
    }

    /// A session's counters.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.send(id, t0, &Prepared::text("queued"));
    /// let stats = hub.session_stats(id).expect("a live session");
    /// assert_eq!(stats.queued, 1);
    /// assert_eq!(stats.dropped, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn session_stats(&self, id: SessionId) -> Option<SessionStats> {
        self.get(id).map(SessionMachine::stats)
    }

    /// The hub's counters.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.stats().opened, 1);
    /// assert_eq!(hub.stats().connected, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> HubStats {
        let mut history = self.history.stats();
        // Gaps found here rather than in the store (a replay cut to the outbox).
        history.merge(self.stats.history);
        HubStats {
            history,
            over_budget: self.budget.refused(),
            memory_held: self.budget.held() as u64,
            ..self.stats
        }
    }
}

/// Has every outbox take its frames out of a log that slow sessions keep nearly full
/// (see `FrameLog::spill_before`): a walk of the sessions at most once per quarter
/// of a log's slots appended.
fn spill_slow_holders<U>(sessions: &mut Slab<SessionMachine<U>>, copies: &mut SharedCopies) {
    for lane in FormLane::ALL {
        if let Some(before) = copies.frames.get(lane).spill_before() {
            for (_, session) in sessions.iter_mut() {
                session
                    .outbox
                    .spill_logged(lane, before, &mut copies.frames);
            }
        }
    }
}

/// One fan-out in progress: the message, its bounds, the running counts.
struct Fanout<'a> {
    msg: &'a Publication,
    bounds: Bounds,
    delivery: Delivery,
    ready: &'a mut VecDeque<SessionId>,
    /// Sessions the fan-out ended (slow consumers still awaiting their verdict), settled
    /// once the walk is over: settling changes topic membership.
    ended: Vec<(SessionId, Outcome)>,
}

impl Fanout<'_> {
    fn deliver<U>(&mut self, id: SessionId, session: &mut SessionMachine<U>, ctx: &mut Ctx<'_>) {
        if session.serial != id.serial {
            self.delivery.closed += 1;
            return;
        }
        ctx.index = id.index;
        let held = session.outbox.data_bytes();
        let mut ended = Outcome::default();
        let admit = match session.offer_logged_plain(ctx, self.msg, self.bounds, &mut ended) {
            Some(admit) => admit,
            None => session.offer(ctx, self.msg, self.bounds, &mut ended),
        };
        ctx.budget.settle(held, session.outbox.data_bytes());
        count(&mut self.delivery, admit);
        if matches!(admit, Admit::Disconnect { .. }) && ended != Outcome::default() {
            self.ended.push((id, ended));
        }
        if !session.ready && session.wants_service() {
            session.ready = true;
            self.ready.push_back(id);
        }
    }
}

fn count(delivery: &mut Delivery, admit: Admit) {
    match admit {
        Admit::Queued { evicted } => {
            delivery.queued += 1;
            delivery.dropped += evicted;
        }
        Admit::Dropped | Admit::OverBudget => delivery.dropped += 1,
        Admit::Disconnect { discarded } => {
            delivery.dropped += 1 + discarded;
            delivery.disconnected += 1;
        }
        Admit::Closed => delivery.closed += 1,
        Admit::Skipped => delivery.skipped += 1,
    }
}
