//! The per-connection task: moves bytes between a transport and the hub, and runs the
//! session's handlers, in order, outside every lock.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use melody_core::{
    Batch, CloseCode, Event, Hub, MessageKind, Request, RequestHead, SessionId, SessionKind,
    Transmit,
};

use crate::clock;
use crate::dormant::{Dormant, Parked, Resume};
use crate::drain::Drain;
use crate::error::{panic_message, Error};
use crate::handlers::Handlers;
use crate::history;
use crate::in_flight::InFlight;
use crate::observe::{self, Facts, Observer};
use crate::read_back;
use crate::request::{Admitted, Decision, RequestInfo, Verdict, VerdictFuture};
use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::session::Session;
use crate::shared::{HandlersCache, Shared};
use crate::slot::{Info, Origin, SessionKey, Slot};
use crate::turn_clock;
use crate::unparker::Unparker;

/// Bytes read per `poll_read`; the buffer is per thread, not per connection, so idle
/// connections hold no read buffer of their own.
const READ_CHUNK: usize = 16 * 1024;
/// Reads per wakeup before handlers run: a flooding peer cannot starve its handlers.
const READS_PER_TURN: usize = 4;
/// Bytes read per poll before the task yields to the others on its thread. A burst from
/// one publisher is then fanned out a chunk at a time, and the subscribers' tasks drain
/// their outboxes in between instead of overflowing them (4000 messages to 100
/// subscribers: 80% dropped with a 64 KiB-per-turn loop, see BENCHMARKS.md).
const READ_BUDGET_PER_POLL: usize = READ_CHUNK;
/// Turns of the loop before yielding to the runtime, so one busy connection cannot
/// starve the others on its thread.
const TURNS_PER_POLL: usize = 32;
/// Most buffers passed to one vectored write.
const MAX_IOV: usize = 64;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// Drives one connection until its session is over and its transport closed. Created
/// by [`Melody::connection`](crate::Melody::connection); spawn it on the runtime.
#[must_use = "a connection does nothing unless polled"]
pub struct Connection<R: Runtime, T: Transport> {
    shared: Arc<Shared<R>>,
    shard: usize,
    id: SessionId,
    /// `None` only once the connection has parked (see `dormant.rs`).
    transport: Option<T>,
    /// Set if it may give up its task while quiet (spawned by the driver: nobody awaits
    /// it): what holds its parts while it is parked.
    dormant: Option<Arc<Dormant<R, T, Self>>>,
    /// Back from a park out of its reactor: the instance still watches its socket
    /// until the task's second poll (the first does what woke it: see `unwatch_late`).
    #[cfg(unix)]
    watched: Option<crate::idle_watch::Watched>,
    /// The task's first poll since it was resumed has been made.
    #[cfg(unix)]
    first_poll_done: bool,
    /// The last exchange found the session quiet and trimmed (`Hub::is_quiet`).
    quiet: bool,
    /// What the hub handed out to write; the hub takes written bytes off it.
    batch: Batch,
    /// Bytes written since the hub was last told (reported by the next exchange).
    unreported: usize,
    events: VecDeque<Event>,
    session: Option<Session<R>>,
    /// The handlers as last taken (see `Shared::take_handlers`).
    handlers: HandlersCache<R>,
    /// The request hook's future while the request waits for its verdict; dropped if
    /// the session ends first.
    verdict: Option<VerdictFuture>,
    read_done: bool,
    /// The transport said "nothing to read" in this poll and holds our waker: asking
    /// again before the next wakeup is a wasted syscall on readiness-less transports
    /// (futures-io over async-io re-reads and re-arms epoll every time).
    read_blocked: bool,
    /// Bytes read in this poll, against [`READ_BUDGET_PER_POLL`].
    read_this_poll: usize,
    finished: bool,
    disconnected: bool,
    done: bool,
    /// What `tracing` and `metrics` are told (empty without those features).
    observer: Observer,
    /// Async message handlers in flight (nothing allocated while there are none).
    in_flight: InFlight,
    /// After the session: input still read and discarded before the transport goes
    /// (boxed: every idle connection carries the field).
    drain: Option<Box<Drain>>,
    /// The peer and path of a request refused before it became a session, for reports.
    #[cfg(any(feature = "tracing", feature = "metrics"))]
    /// (boxed: only a request not yet a session has them).
    refused_facts: Option<Box<RefusedFacts>>,
}

/// The peer and path of a request that is not (yet) a session.
#[cfg(any(feature = "tracing", feature = "metrics"))]
#[derive(Default)]
struct RefusedFacts {
    peer: Option<std::net::SocketAddr>,
    path: Option<String>,
}

impl<R: Runtime, T: Transport> Connection<R, T> {
    /// The task for session `id`, just opened in `shard`: counted as a running
    /// connection until it is released.
    pub(crate) fn new(shared: Arc<Shared<R>>, shard: usize, id: SessionId, transport: T) -> Self {
        shared.lifecycle.connection_started();
        clock::ensure_started(&shared);
        Self::at_start(shared, shard, id, transport)
    }

    /// The task's state before its first turn (counted by the caller).
    fn at_start(shared: Arc<Shared<R>>, shard: usize, id: SessionId, transport: T) -> Self {
        Connection {
            shared,
            shard,
            id,
            transport: Some(transport),
            dormant: None,
            #[cfg(unix)]
            watched: None,
            #[cfg(unix)]
            first_poll_done: false,
            quiet: false,
            batch: Batch::new(),
            unreported: 0,
            events: VecDeque::new(),
            session: None,
            handlers: HandlersCache::default(),
            verdict: None,
            read_done: false,
            read_blocked: false,
            read_this_poll: 0,
            finished: false,
            disconnected: false,
            done: false,
            observer: Observer::default(),
            in_flight: InFlight::default(),
            drain: None,
            #[cfg(any(feature = "tracing", feature = "metrics"))]
            refused_facts: None,
        }
    }

    /// Lets the connection give its task up while its session is quiet (see
    /// [`Melody::parked_connections`](crate::Melody::parked_connections)): this future
    /// then completes when it parks, and the connection goes on in tasks the instance
    /// spawns on its runtime at each wakeup. For a connection that is spawned and never
    /// awaited, as `serve` and the HTTP integrations do; awaited, the future would end
    /// long before the session.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_driver::{api::*, Melody};
    /// # #[derive(Clone, Default)] struct Rt;
    /// # impl Runtime for Rt {
    /// #     fn spawn(&self, _task: BoxFuture) {}
    /// #     fn sleep_until(&self, _deadline: Instant) -> BoxFuture { Box::pin(async {}) }
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// # }
    /// # let melody = Melody::with_runtime(Rt, Config::default())?;
    /// # use std::{io, task::{Context, Poll}};
    /// # struct Socket;
    /// # impl Transport for Socket {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// // `Socket` stands for an accepted connection; spawned, never awaited.
    /// let task = melody.connection(Socket, ConnectionInfo::default()).parkable();
    /// melody.runtime().spawn(Box::pin(task));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn parkable(mut self) -> Self {
        self.dormant = Some(Dormant::new());
        self
    }

    /// A parked connection back in a (new) task, as it was when it parked (still
    /// counted: parking did not release it), with the `dormant` it parks in again.
    pub(crate) fn resume(parked: Parked<R, T>, dormant: Option<Arc<Dormant<R, T, Self>>>) -> Self {
        let Parked {
            session,
            transport,
            observer,
            #[cfg(unix)]
            watched,
        } = parked;
        let SessionKey { shard, id } = session.info.key;
        let shared = session.shared.clone();
        let mut connection = Self::at_start(shared, shard as usize, id, transport);
        connection.session = Some(session);
        connection.observer = observer;
        connection.dormant = dormant;
        #[cfg(unix)]
        {
            connection.watched = watched;
        }
        connection
    }

    /// Whether the task has nothing to do and nothing in hand: the session is quiet,
    /// connected and not ending, the transport has nothing to read and holds the
    /// task's waker, no handler or verdict is pending, nothing waits to be written.
    fn may_park(&self) -> bool {
        self.dormant.is_some()
            && self.quiet
            && self.session.is_some()
            && self.read_blocked
            && !self.read_done
            && !self.finished
            && self.verdict.is_none()
            && self.in_flight.len() == 0
            && self.events.is_empty()
            && self.batch.is_empty()
            && self.unreported == 0
            && self.drain.is_none()
    }

    /// Gives the task up: the transport's and the hub slot's wakers become a
    /// [`Dormant`] holding what the connection needs to come back. Returns `false`
    /// (the task goes on) when input or a wakeup came meanwhile.
    fn park(&mut self, now: Instant) -> bool {
        let Some(dormant) = self.dormant.clone() else {
            return false;
        };
        dormant.start_parking();
        let waker = Waker::from(dormant.clone());
        let unparker = self.shared.unparker.clone();
        // Counted first: a wakeup may come as soon as a waker is handed over.
        unparker.parking();
        // The transport first: input from now on wakes the dormant waker. Anything
        // read instead goes to the hub as usual, and the task goes on.
        self.read_blocked = false;
        let mut cx = Context::from_waker(&waker);
        let (read, _) = self.read(&mut cx, now, false);
        if read || !self.read_blocked {
            return self.stay(&unparker);
        }
        // Then the slot: unless a delivery took the task's waker since the exchange
        // (and woke the task, which must then run).
        let swapped = self.with_hub(|hub, id| match hub.user_mut(id) {
            Some(slot) if slot.waker.is_set() => {
                slot.waker.register(&waker);
                true
            }
            _ => false,
        });
        let (session, transport) = match (swapped, self.session.take(), self.transport.take()) {
            (true, Some(session), Some(transport)) => (session, transport),
            (_, session, transport) => {
                self.session = session;
                self.transport = transport;
                return self.stay(&unparker);
            }
        };
        #[cfg(unix)]
        let (transport, watched) = match self.watch_outside_reactor(transport, &waker) {
            Ok(parts) => parts,
            Err(transport) => {
                // Out of its reactor but not watched: input would wake nobody. The
                // task goes on; the transport registers again at its next poll.
                self.session = Some(session);
                self.transport = Some(transport);
                return self.stay(&unparker);
            }
        };
        let parked = Parked {
            session,
            transport,
            observer: std::mem::take(&mut self.observer),
            #[cfg(unix)]
            watched,
        };
        match dormant.settle(parked) {
            Ok(()) => {
                // The parts live on in the dormant waker: this task ends without
                // releasing the session.
                self.done = true;
                unparker.ensure_started(&self.shared.rt);
                true
            }
            Err(parked) => {
                // Woken while handing over: carry on with the task (its socket's
                // watch ends after its next poll).
                #[cfg(unix)]
                {
                    self.watched = parked.watched;
                    self.first_poll_done = false;
                }
                self.session = Some(parked.session);
                self.transport = Some(parked.transport);
                self.observer = parked.observer;
                self.stay(&unparker)
            }
        }
    }

    /// Lets the transport leave its runtime's reactor, if it can, with its socket
    /// watched by the instance instead (see `idle_watch.rs`). `Err`: it left, but its
    /// socket could not be watched.
    #[cfg(unix)]
    fn watch_outside_reactor(
        &mut self,
        mut transport: T,
        waker: &Waker,
    ) -> Result<(T, Option<crate::idle_watch::Watched>), T> {
        // A watch left from the last park ends first, whatever comes next. Kept for
        // this park, it lost wakeups: its edge-triggered event could have come and
        // gone while the task still ran (a wakeup the record ignores), so input read
        // by nobody waited for the next ping. A new watch reports input already
        // there as soon as it is made.
        if let Some(watched) = self.watched.take() {
            self.shared.idle_watch.unwatch(watched);
        }
        let Some(fd) = transport.leave_reactor() else {
            // Not out of the reactor (or its socket lost): nothing to watch.
            return Ok((transport, None));
        };
        match self.shared.idle_watch.watch(fd, waker) {
            Some(watched) => Ok((transport, Some(watched))),
            None => Err(transport),
        }
    }

    /// Ends the watch of a connection back from a park out of its reactor, at the start
    /// of its second poll: its first wrote what woke it (a broadcast waking many parked
    /// connections has each write before any spends system calls on this), and its
    /// transport registers again from then on. Until then the watch may wake its
    /// parked record for nothing, which costs one look at an empty record.
    #[cfg(unix)]
    fn unwatch_late(&mut self) {
        if self.watched.is_none() {
            return;
        }
        if self.first_poll_done {
            if let Some(watched) = self.watched.take() {
                self.shared.idle_watch.unwatch(watched);
            }
        } else {
            self.first_poll_done = true;
        }
    }

    /// Parking called off: the task goes on, and its next turn registers its own
    /// wakers again (the transport may hold the dormant one now).
    fn stay(&mut self, unparker: &Unparker) -> bool {
        unparker.not_parked();
        self.read_blocked = false;
        false
    }

    /// After the write side is shut down: drains the peer's input (see `drain.rs`)
    /// unless it has ended already, or the session was an event stream, whose peer
    /// sends nothing after its request.
    fn start_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let config = &self.shared.config;
        let stream = self
            .session
            .as_ref()
            .is_some_and(|s| s.info.kind == melody_core::SessionKind::EventStream);
        if self.read_done
            || stream
            || config.close_drain_bytes == 0
            || config.close_drain_timeout.is_zero()
        {
            return Poll::Ready(());
        }
        let deadline = self.shared.rt.now() + config.close_drain_timeout;
        let drain = Drain::new(
            config.close_drain_bytes,
            self.shared.rt.sleep_until(deadline),
        );
        self.drain = Some(Box::new(drain));
        self.poll_drain(cx)
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(drain) = self.drain.as_mut() else {
            return Poll::Ready(());
        };
        let Some(transport) = self.transport.as_mut() else {
            return Poll::Ready(());
        };
        let drained = READ_BUF.with(|buf| drain.poll(cx, transport, &mut buf.borrow_mut()));
        if drained.is_ready() {
            self.drain = None;
        }
        drained
    }

    fn with_hub<X>(&self, op: impl FnOnce(&mut Hub<Slot>, SessionId) -> X) -> X {
        let id = self.id;
        self.shared.shards[self.shard].with(&self.shared.clock, |hub| op(hub, id))
    }

    /// Reads what the transport has, feeding it to the hub. Returns whether it read,
    /// and, if `exchange` asked for the turn's exchange to be done with the input (one
    /// locked call instead of two), whether that found work.
    fn read(&mut self, cx: &mut Context<'_>, now: Instant, exchange: bool) -> (bool, Option<bool>) {
        let mut progress = false;
        let mut exchanged: Option<bool> = None;
        for _ in 0..READS_PER_TURN {
            if self.in_flight.pauses_reading()
                || self.read_done
                || self.finished
                || self.read_blocked
                || self.read_this_poll >= READ_BUDGET_PER_POLL
            {
                break;
            }
            let polled = READ_BUF.with(|buf| {
                let mut buf = buf.borrow_mut();
                let polled = match self.transport.as_mut() {
                    Some(transport) => transport.poll_read(cx, &mut buf),
                    None => Poll::Ready(Ok(0)),
                };
                match polled {
                    Poll::Ready(Ok(0)) => Some(Err(None)),
                    Poll::Ready(Ok(n)) => {
                        observe::bytes_in(n);
                        self.read_this_poll += n;
                        let input = &buf[..n];
                        if exchange {
                            let found = self.exchange_fed(cx, now, input);
                            exchanged = Some(found || exchanged.unwrap_or(false));
                        } else {
                            self.with_hub(|hub, id| hub.handle_input(id, now, input).is_ok());
                        }
                        Some(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Some(Err(Some(e))),
                    Poll::Pending => None,
                }
            });
            match polled {
                None => {
                    self.read_blocked = true;
                    break;
                }
                Some(Ok(())) => progress = true,
                Some(Err(err)) => {
                    self.read_done = true;
                    progress = true;
                    // Bytes written since the last exchange are delivered: told first,
                    // or a peer that read its last message and left at once would see
                    // it counted as undelivered.
                    let written = std::mem::take(&mut self.unreported);
                    let batch = &mut self.batch;
                    let shards = &self.shared.shards[self.shard];
                    let _ = shards.with(&self.shared.clock, |hub| {
                        if written > 0 {
                            let _ = hub.handle_transmitted(self.id, now, written, batch);
                        }
                        match &err {
                            None => hub.handle_eof(self.id, now),
                            Some(e) => hub.handle_io_error(self.id, now, e),
                        }
                    });
                }
            }
        }
        (progress, exchanged)
    }

    /// The one locked call per turn: reports the bytes written since the last call,
    /// takes the session's events and, once the batch is written, the next one; if
    /// there was nothing, registers the task's waker (parks) in the same call. Returns
    /// whether it found work.
    fn exchange(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        self.exchange_fed(cx, now, &[])
    }

    /// [`Connection::exchange`], feeding `input` (bytes just read) to the hub first.
    fn exchange_fed(&mut self, cx: &mut Context<'_>, now: Instant, input: &[u8]) -> bool {
        let shard = self.shard as u32;
        let written = std::mem::take(&mut self.unreported);
        let (events, batch, id) = (&mut self.events, &mut self.batch, self.id);
        let rt = &self.shared.rt;
        let mut connected_info = None;
        let mut request_info = None;
        let mut trimmed = false;
        let mut quiet = false;
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        let refused_facts = &mut self.refused_facts;
        #[cfg(feature = "metrics")]
        let mut sampled = None;
        let (found, finished) = self.shared.shards[self.shard].with(&self.shared.clock, |hub| {
            // Input first, as when it was fed in a call of its own before this one.
            if !input.is_empty() {
                // The task is running and takes what its input brings in this very
                // call: waking it for that would only poll it once more, which only
                // some runtimes want (`Runtime::polls_again_after_input`). It
                // registers again below if it is to wait (an exchange that finds
                // nothing), and every other way it ends a poll wakes itself or waits
                // on wakers of its own.
                if !rt.polls_again_after_input() {
                    if let Some(slot) = hub.user_mut(id) {
                        let _ = slot.waker.take();
                    }
                }
                let _ = hub.handle_input(id, now, input);
            }
            if written > 0 {
                let _ = hub.handle_transmitted(id, now, written, batch);
            }
            let before = events.len();
            while let Some(event) = hub.poll_event(id) {
                match event {
                    Event::Connect => connected_info = hub_info(hub, id, shard),
                    Event::Request => request_info = request_info_of(hub, id),
                    #[cfg(any(feature = "tracing", feature = "metrics"))]
                    Event::Error(_) if connected_info.is_none() => {
                        let facts = refused_facts.get_or_insert_with(Box::default);
                        facts.peer = hub.session(id).and_then(|v| v.remote_addr());
                        if let Some(request) = hub.request(id) {
                            facts.path = Some(request.uri().path().to_owned());
                        }
                    }
                    _ => {}
                }
                events.push_back(event);
            }
            let transmit = hub.poll_transmit(id, now, batch);
            let finished = transmit == Transmit::Finished;
            let found =
                events.len() > before || matches!(transmit, Transmit::Write(1..)) || finished;
            #[cfg(feature = "metrics")]
            if found || written > 0 {
                sampled = hub.session_stats(id);
            }
            if !found {
                trimmed = batch.is_empty() && hub.trim(id);
                quiet = trimmed && hub.is_quiet(id);
                if let Some(slot) = hub.user_mut(id) {
                    slot.waker.register(cx.waker());
                }
            }
            (found, finished)
        });
        #[cfg(feature = "metrics")]
        if let Some(stats) = sampled {
            self.observer.sample(stats);
        }
        self.quiet = quiet;
        if trimmed {
            // Parking idle (no data since the last ping): hold no buffers either (but
            // the events an async handler's bound holds back).
            self.batch = Batch::new();
            if self.events.is_empty() {
                self.events = VecDeque::new();
            }
        }
        if let Some(info) = connected_info {
            #[cfg(any(feature = "tracing", feature = "metrics"))]
            {
                // A session now: its handle's info tells the peer and path.
                self.refused_facts = None;
            }
            self.session = Some(Session {
                shared: self.shared.clone(),
                info,
            });
        }
        if finished {
            // The hub emptied the batch: what it held was counted as undelivered.
            self.finished = true;
            // A verdict still pending has nobody left to answer (timeout, peer gone).
            self.verdict = None;
        } else if let Some(info) = request_info {
            #[cfg(any(feature = "tracing", feature = "metrics"))]
            {
                self.refused_facts = Some(Box::new(RefusedFacts {
                    peer: info.remote_addr,
                    path: Some(info.uri.path().to_owned()),
                }));
            }
            self.start_verdict(info);
        }
        found
    }

    /// Calls the request hook for a request awaiting its verdict, outside every lock.
    fn start_verdict(&mut self, info: RequestInfo) {
        let handlers = self.shared.handlers();
        let Some(hook) = handlers.request.clone() else {
            // The hook is never unset once set; a request held without one is admitted
            // as if no hook had ever been registered.
            self.apply_verdict(Verdict::admit());
            return;
        };
        let event_stream = info.kind == SessionKind::EventStream;
        let headers_resume = read_back::resumes(None, event_stream, &info.headers);
        match catch_unwind(AssertUnwindSafe(|| hook(info))) {
            Ok(future) => self.verdict = Some(self.after_read_back(future, headers_resume)),
            Err(_) => self.hook_panicked(),
        }
    }

    /// The hook's future, followed (when the verdict resumes history topics) by the
    /// wait for the backplane's read-back of their shared logs (see `read_back.rs`).
    /// The hub's handshake deadline counts from the connection, a little before the
    /// request arrived: ending the wait at three quarters of the timeout from now
    /// leaves the resume (with what the copy holds) its chance to run before it.
    fn after_read_back(&self, hook: VerdictFuture, headers_resume: bool) -> VerdictFuture {
        if !self.shared.backplane.get().is_some_and(|b| b.keeps_history) {
            return hook;
        }
        let shared = self.shared.clone();
        let deadline = shared.rt.now() + shared.config.handshake_timeout * 3 / 4;
        Box::pin(async move {
            let verdict = hook.await;
            if let Decision::Admit(admitted) = &verdict.decision {
                if headers_resume || admitted.resume_from.is_some() {
                    let topics = admitted.topics.clone();
                    read_back::await_read_back(shared, topics, deadline).await;
                }
            }
            verdict
        })
    }

    /// Polls the request hook's future; applies its verdict once ready. Returns whether
    /// it did.
    fn poll_verdict(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(future) = self.verdict.as_mut() else {
            return false;
        };
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => false,
            Ok(Poll::Ready(verdict)) => {
                self.verdict = None;
                self.apply_verdict(verdict);
                true
            }
            Err(_) => {
                self.verdict = None;
                self.hook_panicked();
                true
            }
        }
    }

    /// A panicking hook refuses its request with 500; there is no session to report it
    /// to, so it is counted (`Melody::hook_panics`).
    fn hook_panicked(&mut self) {
        self.shared
            .hook_panics
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.apply_verdict(Verdict::refuse(500, "internal error"));
    }

    /// Applies a verdict under one shard lock: keys, state and topics are in place
    /// before the 101 is queued, so `on_connect` and the first publish see them. A
    /// verdict for a session that ended meanwhile does nothing.
    fn apply_verdict(&mut self, verdict: Verdict) {
        let now = self.shared.rt.now();
        // History topics resume under the history lock, taken before the shard's.
        let mut history = match &verdict.decision {
            Decision::Admit(admitted) if self.shared.history.keeps_any(admitted.topics.iter()) => {
                Some(self.shared.history.lock())
            }
            _ => None,
        };
        let kept = |topic: &str| self.shared.history.keeps(topic);
        let subscribed = self.with_hub(|hub, id| match verdict.decision {
            Decision::Admit(admitted) => {
                let Admitted {
                    keys,
                    state,
                    topics,
                    admission,
                    resume_from,
                } = *admitted;
                if let Some(slot) = hub.user_mut(id) {
                    slot.keys = keys;
                    slot.state.extend(state);
                }
                let (resumed, live): (Vec<String>, Vec<String>) =
                    topics.into_iter().partition(|topic| kept(topic));
                let mut subscribed: Vec<String> = live
                    .into_iter()
                    .filter(|topic| hub.subscribe(id, topic))
                    .collect();
                let _ = hub.admit(id, now, admission);
                // After the admission, so that a gap is reported after `Connect`; the
                // replay goes out behind the 101 all the same.
                if let Some(store) = history.as_deref_mut() {
                    for topic in resumed {
                        let from = resume_from.as_deref();
                        if history::resume_in(store, hub, id, now, &topic, from).subscribed {
                            subscribed.push(topic);
                        }
                    }
                }
                subscribed
            }
            Decision::Refuse(refusal) => {
                let _ = hub.refuse(id, now, refusal);
                Vec::new()
            }
        });
        drop(history);
        if let Some(backplane) = self.shared.backplane.get() {
            for topic in &subscribed {
                backplane.note_subscribed(topic);
            }
        }
    }

    /// Runs the handlers for the events taken, in order, until one must wait for the
    /// async handlers in flight. Returns whether it handled any.
    fn dispatch(&mut self, now: Instant) -> bool {
        if self.events.is_empty() {
            return false;
        }
        // Their writes take the turn's clock reading (see `turn_clock`).
        let _clock = turn_clock::enter(Arc::as_ptr(&self.shared) as *const () as usize, now);
        let (version, handlers) = self.shared.take_handlers(&mut self.handlers);
        // Without async handlers (registered or still in flight), none of their steps.
        let gated = handlers.has_async() || self.in_flight.len() > 0;
        let mut handled = false;
        while let Some(event) = self.events.pop_front() {
            if let (true, Some(session)) = (gated, &self.session) {
                if self
                    .in_flight
                    .must_wait(&handlers, session, &mut self.observer, &event)
                {
                    self.events.push_front(event);
                    break;
                }
            }
            handled = true;
            if matches!(event, Event::Disconnect { .. }) {
                self.disconnected = true;
            }
            self.observe(&event);
            // Lent to the handlers, not cloned: a clone is two reference counts.
            let Some(session) = &self.session else {
                // Before `Connect` (a refused handshake): nobody to tell.
                continue;
            };
            let _scope = self.observer.scope();
            let in_flight = &mut self.in_flight;
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
                run(&handlers, session, &event);
                if gated {
                    in_flight.offer(&handlers, session, &event);
                }
            })) {
                let message = panic_message(&panic);
                self.observer.handler_panicked(&message);
                if let Some(on_error) = &handlers.error {
                    let err = Error::HandlerPanicked(message);
                    let _ = catch_unwind(AssertUnwindSafe(|| on_error(session, &err)));
                }
                session.close_with(CloseCode::Error, "internal error");
            }
        }
        self.handlers.keep(version, handlers);
        handled
    }

    /// Polls the async message handlers whose futures were woken. Returns whether one
    /// finished.
    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> bool {
        if self.in_flight.len() == 0 {
            return false;
        }
        let handlers = self.shared.handlers();
        let session = self.session.as_ref();
        self.in_flight
            .poll(cx, &handlers, session, &mut self.observer)
    }

    /// Tells `tracing` and `metrics` about an event (nothing without those features).
    fn observe(&mut self, event: &Event) {
        let info = self.session.as_ref().map(|s| &s.info);
        // Only a connect and an error report the peer and path: a message does not
        // look them up.
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        let (peer, path) = match info {
            _ if !matches!(event, Event::Connect | Event::Error(_)) => (None, None),
            Some(info) => (info.remote_addr(), Some(info.request.path())),
            None => self
                .refused_facts
                .as_deref()
                .map_or((None, None), |f| (f.peer, f.path.as_deref())),
        };
        #[cfg(not(any(feature = "tracing", feature = "metrics")))]
        let (peer, path) = (None, None);
        let facts = Facts {
            key: info.map(|i| &i.key),
            peer,
            path,
            kind: info.map_or(melody_core::SessionKind::WebSocket, |i| i.kind),
            policy: self.shared.config.drop_policy,
        };
        self.observer.event(event, &facts);
    }

    /// Writes as much of the batch as the transport takes in one vectored write; the
    /// next exchange reports it.
    fn write(&mut self, cx: &mut Context<'_>) -> bool {
        if self.batch.is_empty() || self.unreported > 0 {
            return false;
        }
        let Some(transport) = self.transport.as_mut() else {
            return false;
        };
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let count = self.batch.io_slices(&mut slices);
        let written = match &slices[..count] {
            [single] => transport.poll_write(cx, single),
            several => transport.poll_write_vectored(cx, several),
        };
        match written {
            Poll::Ready(Ok(0)) | Poll::Pending => false,
            Poll::Ready(Ok(n)) => {
                observe::bytes_out(n);
                self.unreported = n;
                true
            }
            Poll::Ready(Err(e)) => {
                // The session ends; the next exchange answers `Finished` and empties
                // the batch.
                let now = self.shared.rt.now();
                let _ = self.with_hub(|hub, id| hub.handle_io_error(id, now, &e));
                true
            }
        }
    }

    fn release(&mut self) {
        #[cfg(unix)]
        if let Some(watched) = self.watched.take() {
            self.shared.idle_watch.unwatch(watched);
        }
        if self.done {
            return;
        }
        self.done = true;
        let info = self.session.as_ref().map(|s| s.info.clone());
        // Written since the last exchange (a runtime dropping the task early): counted
        // as sent, not as undelivered.
        let written = std::mem::take(&mut self.unreported);
        let now = self.shared.rt.now();
        let (batch, id) = (&mut self.batch, self.id);
        let shard = &self.shared.shards[self.shard];
        let _ = shard.with(&self.shared.clock, |hub| {
            if written > 0 {
                let _ = hub.handle_transmitted(id, now, written, batch);
            }
            // Handles outlive the session: keep its last counters for them, under the
            // lock that releases it, so `Session::stats` sees one or the other.
            if let (Some(info), Some(stats)) = (info, hub.session_stats(id)) {
                let _ = info.last_stats.set(Box::new(stats));
            }
            hub.release(id)
        });
        self.shared.lifecycle.connection_done();
    }
}

/// Builds the session's handle data at `Connect` and stores it in its slot.
fn hub_info(hub: &mut Hub<Slot>, id: SessionId, shard: u32) -> Option<Arc<Info>> {
    let view = hub.session(id)?;
    let kind = view.kind();
    let (compression, deflate) = (view.compression(), view.deflate());
    // Handles read these from `Info` without locking; the session keeps no copy.
    let origin = hub.take_origin(id).unwrap_or_default();
    let request = origin
        .request
        .unwrap_or_else(|| RequestHead::parsed(Request::default()));
    let info = Arc::new(Info::new(
        SessionKey { shard, id },
        Origin {
            request,
            connection: origin.connection,
            protocol: origin.protocol,
            compression,
            deflate,
            kind,
        },
    ));
    if let Some(slot) = hub.user_mut(id) {
        slot.info = Some(info.clone());
    }
    Some(info)
}

/// What the request hook is shown of a request awaiting its verdict.
fn request_info_of(hub: &Hub<Slot>, id: SessionId) -> Option<RequestInfo> {
    let request = hub.request(id)?;
    let view = hub.session(id)?;
    Some(RequestInfo {
        method: request.method().clone(),
        uri: request.uri().clone(),
        headers: request.headers().clone(),
        remote_addr: view.remote_addr(),
        local_addr: view.local_addr(),
        kind: view.kind(),
    })
}

fn run<R: Runtime>(h: &Handlers<R>, s: &Session<R>, event: &Event) {
    match event {
        Event::Connect => {
            if let Some(f) = &h.connect {
                f(s)
            }
        }
        Event::Text(text) => {
            if let Some(f) = &h.message {
                f(s, text.as_str())
            }
        }
        Event::Binary(data) => {
            if let Some(f) = &h.message_binary {
                f(s, data)
            }
        }
        Event::Pong(_) => {
            if let Some(f) = &h.pong {
                f(s)
            }
        }
        Event::Close { code, reason } => {
            if let Some(f) = &h.close {
                f(s, u16::from(*code), reason.as_str())
            }
        }
        Event::Sent { kind, payload } => match kind {
            MessageKind::Text => {
                if let (Some(f), Ok(text)) = (&h.sent, std::str::from_utf8(payload)) {
                    f(s, text)
                }
            }
            MessageKind::Binary => {
                if let Some(f) = &h.sent_binary {
                    f(s, payload)
                }
            }
        },
        Event::Dropped { count } => {
            if let Some(f) = &h.dropped {
                f(s, *count)
            }
        }
        Event::Error(err) => {
            if let Some(f) = &h.error {
                f(s, &Error::Session(err.clone()))
            }
        }
        Event::Disconnect { .. } => {
            if let Some(f) = &h.disconnect {
                f(s)
            }
        }
        Event::HistoryGap { topic, reason } => {
            if let Some(f) = &h.history_gap {
                f(s, topic, *reason)
            }
        }
        // A kind of event this driver does not know yet has no handler to run.
        _ => {}
    }
}

impl<R: Runtime, T: Transport> Future for Connection<R, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.drain.is_some() {
            return this.poll_drain(cx);
        }
        if this.done {
            return Poll::Ready(());
        }
        #[cfg(unix)]
        this.unwatch_late();
        this.read_blocked = false;
        this.read_this_poll = 0;
        // One clock read serves every turn until handlers run: they may take long, the
        // rest of a turn does not.
        let mut now = this.shared.rt.now();
        let mut handlers_ran = false;
        for _ in 0..TURNS_PER_POLL {
            if std::mem::take(&mut handlers_ran) {
                now = this.shared.rt.now();
            }
            let (mut progress, exchanged) = this.read(cx, now, true);
            // The request hook's future is the application's code too.
            handlers_ran |= this.verdict.is_some();
            progress |= this.poll_verdict(cx);
            // Parks the task when it finds nothing: nothing below touches the hub
            // then, so no wakeup can be lost between the look and the park.
            // A finished session is news to every exchange; while its `Disconnect`
            // waits for async handlers, only they make progress.
            let found = match exchanged {
                Some(found) => found,
                None => this.exchange(cx, now),
            };
            progress |= found && !(this.finished && this.in_flight.len() > 0);
            let handled = this.dispatch(now) | this.poll_in_flight(cx);
            handlers_ran |= handled;
            progress |= handled;
            progress |= this.write(cx);
            if this.finished && this.disconnected && this.events.is_empty() {
                let closed = match this.transport.as_mut() {
                    Some(transport) => transport.poll_close(cx),
                    None => Poll::Ready(Ok(())),
                };
                return match closed {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(_) => {
                        // The session is over for everyone else now; the transport
                        // lingers only to drain.
                        this.release();
                        this.start_drain(cx)
                    }
                };
            }
            if !progress {
                if this.read_this_poll >= READ_BUDGET_PER_POLL && !this.read_done {
                    // More may be waiting to be read, and no read waker is registered:
                    // come back after the others had their turn.
                    break;
                }
                if this.may_park() {
                    if this.park(now) {
                        return Poll::Ready(());
                    }
                    // Called off by input or a wakeup: the next turn takes it and
                    // registers the task's own wakers again.
                    continue;
                }
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<R: Runtime, T: Transport> Drop for Connection<R, T> {
    fn drop(&mut self) {
        // Dropped by its runtime before the end: free the slot so counts stay right.
        if !self.done {
            self.release();
        }
    }
}

impl<R: Runtime, T: Transport> Unpin for Connection<R, T> {}

impl<R: Runtime, T: Transport> Resume<R, T> for Connection<R, T> {
    fn resume(parked: Parked<R, T>, dormant: Option<Arc<Dormant<R, T, Self>>>) -> BoxFuture {
        Box::pin(Connection::resume(parked, dormant))
    }
}
