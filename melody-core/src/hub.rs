//! The hub: the registry of sessions, fan-out, topics, timers and the ready queue.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::batch::Batch;
use slab::Slab;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::WebSocketConfig;

use crate::config::{Config, ConfigError};
use crate::error::{HandshakeRejection, UnknownSession};
use crate::event::Event;
use crate::handshake::{self, Accept, Request, RequestHead};
use crate::keys::Keys;
use crate::outbox::{Admit, Bounds};
use crate::prepared::Prepared;
use crate::session::{
    ConnectionInfo, Ctx, Outcome, Phase, SessionId, SessionMachine, SessionState, SessionStats,
    Transmit,
};
use crate::target::{Delivery, Target};
use crate::timers::{Due, TimerWheel, TIMER_KINDS};
use crate::topics::Topics;
use crate::SessionView;

/// Stale timer entries tolerated beyond twice the live sessions' before a sweep, so
/// that a small hub does not sweep on every release.
const SWEEP_FLOOR: usize = 1024;

/// Counters of a whole hub.
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
}

/// Many WebSocket server sessions, driven by bytes and time from outside.
///
/// See the [crate documentation](crate) for the event loop that drives it. The hub is
/// single-threaded (`&mut self`); to use it from several threads, put it (or shards of
/// it) behind a lock.
pub struct Hub<U = Keys> {
    config: Config,
    ws_config: WebSocketConfig,
    sessions: Slab<SessionMachine<U>>,
    topics: Topics,
    wheel: TimerWheel,
    ready: VecDeque<SessionId>,
    due: Vec<Due>,
    scratch: Vec<u8>,
    next_serial: u32,
    open: usize,
    last_now: Instant,
    stats: HubStats,
    /// Open sessions counted across several hubs (shards), when shared.
    shared_open: Option<Arc<AtomicUsize>>,
    /// Requests wait for the application's verdict (see `set_request_verdicts`).
    request_verdicts: bool,
}

impl<U> Hub<U> {
    /// A hub with `config`, whose clock starts at `now`.
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
            wheel: TimerWheel::new(now, config.timer_granularity),
            config,
            ws_config,
            sessions: Slab::new(),
            topics: Topics::default(),
            ready: VecDeque::new(),
            due: Vec::new(),
            scratch: Vec::new(),
            next_serial: 0,
            open: 0,
            last_now: now,
            stats: HubStats::default(),
            shared_open: None,
            request_verdicts: false,
        })
    }

    /// The configuration.
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
            ..
        } = self;
        let session = sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)?;
        let mut ctx = Ctx::new(now, config, *ws_config, wheel, scratch);
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
        let (result, outcome) = op(session, &mut ctx);
        session.sync_write_timer(&mut ctx);
        self.settle(id, outcome);
        Ok(result)
    }

    /// Counts what an operation did and queues the session for its driver if needed.
    fn settle(&mut self, id: SessionId, outcome: Outcome) {
        if outcome.connected {
            self.open += 1;
            self.stats.connected += 1;
            if let Some(shared) = &self.shared_open {
                shared.fetch_add(1, Ordering::Relaxed);
            }
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
        if let Some(s) = self.sessions.get_mut(id.index as usize) {
            if s.serial == id.serial && !s.ready && s.wants_service() {
                s.ready = true;
                self.ready.push_back(id);
            }
        }
    }

    // ---- connections ----------------------------------------------------------------

    /// Registers a new connection whose first bytes will be its HTTP upgrade request.
    /// Returns its id; the handshake must complete within `handshake_timeout`.
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
    pub fn check_upgrade(&mut self, request: &Request) -> Result<Accept, HandshakeRejection> {
        let checked = handshake::validate(request, &self.config).and_then(|accept| {
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

    /// Counts a handshake refused outside the hub in [`HubStats::rejected`]: a driver
    /// that refuses an upgrade itself (it is shutting down, say) calls this so the
    /// counters still add up.
    pub fn count_rejection(&mut self) {
        self.stats.rejected += 1;
    }

    /// Registers a connection an HTTP framework has already upgraded: `request` is the
    /// upgrade request, `leftover` any bytes read past it. The session is open at once.
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
    pub fn share_session_count(&mut self, counter: Arc<AtomicUsize>) {
        counter.fetch_add(self.open, Ordering::Relaxed);
        self.shared_open = Some(counter);
    }

    /// Turns [`Event::Sent`] on or off (see [`Config::sent_events`]).
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
    pub fn set_request_verdicts(&mut self, on: bool) {
        self.request_verdicts = on;
    }

    /// The upgrade request of a session awaiting its verdict, or of an open session
    /// (until [`Hub::take_request`] moves it out). Parsed on first use.
    pub fn request(&self, id: SessionId) -> Option<&Request> {
        self.get(id)?.request_head().map(RequestHead::request)
    }

    /// Admits a request awaiting its verdict: writes its 101 and opens the session
    /// ([`Event::Connect`] follows), with `admission`'s per-session overrides. Returns
    /// `Ok(false)`, doing nothing, when the session awaits no verdict: it ended
    /// meanwhile (the peer left, the handshake timed out) or was answered already, so
    /// a late verdict is harmless.
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
    pub fn trim(&mut self, id: SessionId) -> bool {
        self.sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)
            .is_some_and(|s| s.trim())
    }

    /// Moves a session's upgrade request out of the hub (for a driver that keeps it
    /// elsewhere); later views of the session show no request.
    pub fn take_request(&mut self, id: SessionId) -> Option<RequestHead> {
        let session = self
            .sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)?;
        session.meta.request.take()
    }

    /// Feeds bytes received from the transport.
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
    pub fn handle_eof(&mut self, id: SessionId, now: Instant) -> Result<(), UnknownSession> {
        self.with(id, now, |s, ctx| ((), s.handle_eof(ctx)))
    }

    /// The transport failed; the session ends with this error.
    pub fn handle_io_error(
        &mut self,
        id: SessionId,
        now: Instant,
        err: &io::Error,
    ) -> Result<(), UnknownSession> {
        self.with(id, now, |s, ctx| ((), s.handle_io_error(ctx, err)))
    }

    /// Output: the bytes to write for a session. When `batch` is empty, moves what the
    /// session's outbox holds into it (cheap reference-counted frames, control frames
    /// first); when it still holds unwritten bytes, adds nothing and says so. Write the
    /// batch in order and report progress with [`Hub::handle_transmitted`]. A finished
    /// session, or an unknown id, empties the batch and answers [`Transmit::Finished`].
    pub fn poll_transmit(&mut self, id: SessionId, now: Instant, batch: &mut Batch) -> Transmit {
        // Telling the driver a session is over is its service: it is not listed as ready
        // again for that (a driver releasing it later must not spin on `poll_ready`).
        if self.get(id).is_none_or(|s| s.is_finished()) {
            batch.clear();
            return Transmit::Finished;
        }
        self.with(id, now, |s, ctx| {
            (s.poll_transmit(ctx, batch), Outcome::default())
        })
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
    pub fn poll_event(&mut self, id: SessionId) -> Option<Event> {
        let session = self
            .sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)?;
        session.events.pop_front()
    }

    /// A session whose driver has work: events to take, bytes to write, or a transport
    /// to close. Each session is listed once until taken.
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

    /// Queues a message for one session.
    pub fn send(&mut self, id: SessionId, now: Instant, msg: &Prepared) -> Delivery {
        let bounds = self.bounds();
        let mut delivery = Delivery::default();
        match self.with(id, now, |s, ctx| {
            (s.send(ctx, msg, bounds), Outcome::default())
        }) {
            Ok(admit) => count(&mut delivery, admit),
            Err(UnknownSession) => delivery.closed += 1,
        }
        self.stats.dropped += delivery.dropped as u64;
        delivery
    }

    /// Queues a message for every session of `target`: one encode, one reference per
    /// recipient, no allocation per recipient once outboxes have grown.
    pub fn broadcast(&mut self, now: Instant, msg: &Prepared, target: Target<'_, U>) -> Delivery {
        let now = self.clock(now);
        let bounds = self.bounds();
        let Hub {
            sessions,
            config,
            ws_config,
            wheel,
            scratch,
            topics,
            ready,
            ..
        } = self;
        let mut ctx = Ctx::new(now, config, *ws_config, wheel, scratch);
        let mut fan = Fanout {
            msg,
            bounds,
            delivery: Delivery::default(),
            ready,
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
        let delivery = fan.delivery;
        self.stats.dropped += delivery.dropped as u64;
        delivery
    }

    /// Starts closing a session with `code` and `reason`: no more data is accepted, the
    /// close frame goes out after what is queued, then the peer has `close_timeout` to
    /// answer. A session still in its handshake is dropped. Returns `false` if the
    /// session was already closing, over, or unknown.
    pub fn close(&mut self, id: SessionId, now: Instant, code: CloseCode, reason: &str) -> bool {
        self.with(id, now, |s, ctx| {
            let started = s.close(ctx, code, reason);
            let finished = s.is_finished() && started;
            (
                started,
                Outcome {
                    finished,
                    ..Outcome::default()
                },
            )
        })
        .unwrap_or(false)
    }

    /// Closes every session (e.g. 1001 "going away" on shutdown) and drops the
    /// connections still in their handshake; returns how many sessions started closing.
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
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.wheel
            .next_tick()
            .map(|tick| self.wheel.instant_of(tick))
    }

    /// Fires every deadline that has passed by `now`: pings, pong and write deadlines,
    /// handshake and close timeouts. Calling it again with the same `now` does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
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
    }

    // ---- topics -----------------------------------------------------------------------

    /// Subscribes a session to a topic; `false` if it already was (or is unknown/over).
    pub fn subscribe(&mut self, id: SessionId, topic: &str) -> bool {
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
    pub fn topics(&self, id: SessionId) -> impl Iterator<Item = &str> + '_ {
        self.get(id)
            .into_iter()
            .flat_map(|s| s.topics.iter().map(|(t, _)| &**t))
    }

    /// How many sessions are subscribed to `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.topics.subscribers(topic).len()
    }

    /// How many topics have at least one subscriber.
    pub fn topic_count(&self) -> usize {
        self.topics.topic_count()
    }

    // ---- inspection -------------------------------------------------------------------

    /// Open sessions: connected and not over (closing ones included).
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Every connection the hub holds, from handshake to released.
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
    pub fn session(&self, id: SessionId) -> Option<SessionView<'_, U>> {
        self.get(id).map(|s| SessionView::new(id, s))
    }

    /// A session's state; `None` once released (or for an id of another hub).
    pub fn state(&self, id: SessionId) -> Option<SessionState> {
        self.get(id).map(SessionMachine::state)
    }

    /// Whether a session is closing, over or unknown (olahol/melody's `IsClosed`).
    pub fn is_closed(&self, id: SessionId) -> bool {
        !matches!(
            self.state(id),
            Some(SessionState::Open | SessionState::Handshake)
        )
    }

    /// A session's user data.
    pub fn user(&self, id: SessionId) -> Option<&U> {
        self.get(id).map(|s| &s.user)
    }

    /// A session's user data, mutably.
    pub fn user_mut(&mut self, id: SessionId) -> Option<&mut U> {
        self.sessions
            .get_mut(id.index as usize)
            .filter(|s| s.serial == id.serial)
            .map(|s| &mut s.user)
    }

    /// A session's counters.
    pub fn session_stats(&self, id: SessionId) -> Option<SessionStats> {
        self.get(id).map(|s| SessionStats {
            queued: s.outbox.data_len(),
            queued_bytes: s.outbox.data_bytes(),
            ..s.stats
        })
    }

    /// The hub's counters.
    pub fn stats(&self) -> HubStats {
        self.stats
    }
}

/// One fan-out in progress: the message, its bounds, the running counts.
struct Fanout<'a> {
    msg: &'a Prepared,
    bounds: Bounds,
    delivery: Delivery,
    ready: &'a mut VecDeque<SessionId>,
}

impl Fanout<'_> {
    fn deliver<U>(&mut self, id: SessionId, session: &mut SessionMachine<U>, ctx: &mut Ctx<'_>) {
        if session.serial != id.serial {
            self.delivery.closed += 1;
            return;
        }
        ctx.index = id.index;
        count(&mut self.delivery, session.send(ctx, self.msg, self.bounds));
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
        Admit::Dropped => delivery.dropped += 1,
        Admit::Disconnect { discarded } => {
            delivery.dropped += 1 + discarded;
            delivery.disconnected += 1;
        }
        Admit::Closed => delivery.closed += 1,
    }
}
