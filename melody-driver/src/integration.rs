//! What an HTTP framework calls: judge a request with the request hook, then open the
//! session it answered (an upgraded WebSocket or an event stream whose body it serves).
//! `serve` and `accept` hold the request in the core instead; both paths end in the
//! same keys, state, topics and per-session settings.

use std::future::poll_fn;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Instant;

use melody_core::{
    is_event_stream_request, Accept, ConnectionInfo, HandshakeRejection, Hub, Request, SessionId,
    SessionKind, StreamAccept,
};

use crate::connection::Connection;
use crate::melody::Melody;
use crate::read_back;
use crate::request::{Admitted, Decision, RequestInfo, Verdict};
use crate::runtime::{Runtime, Transport};
use crate::slot::Slot;

impl<R: Runtime> Melody<R> {
    /// For HTTP integrations: the request hook's [`Verdict`] on a request the framework
    /// received, judged as `serve` judges its own: admit when no hook is set; past
    /// `handshake_timeout` a refusal with 503; a hook that panics refuses with 500 and
    /// counts in [`Melody::hook_panics`]. A refusal counts in
    /// [`HubStats::rejected`](crate::api::HubStats::rejected). Call it after
    /// [`Melody::check_upgrade`] or [`Melody::check_event_stream`] accepted the
    /// request; send the refusal's response (see [`Verdict::refusal`]) or answer the
    /// request and open the session with [`Melody::judged_upgrade`] or
    /// [`Melody::event_stream_connection`]. An admitted verdict that resumes history
    /// topics ([`Verdict::resume_from`], an event stream's `Last-Event-ID`) with a
    /// backplane that keeps history returns once this instance's copies hold the
    /// shared logs (see [`Melody::read_back_history`]), by the same deadline.
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
    /// # fn block_on<F: std::future::Future>(future: F) -> F::Output {
    /// #     let mut future = std::pin::pin!(future);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) { return out; }
    /// #     }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// melody.on_request(|request: RequestInfo| async move {
    ///     match request.header("origin") {
    ///         Some("https://evil.example") => Verdict::refuse(403, "not from there"),
    ///         _ => Verdict::admit(),
    ///     }
    /// });
    /// // In an HTTP framework's handler, once `check_upgrade` passed:
    /// let verdict = block_on(melody.judge(&request, ConnectionInfo::default()));
    /// match verdict.refusal() {
    ///     Some(refusal) => println!("answer {} {}", refusal.status_sent(), refusal.reason),
    ///     None => println!("answer 101, then call judged_upgrade"),
    /// }
    /// assert!(verdict.is_admit());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn judge(&self, request: &Request, info: ConnectionInfo) -> Verdict {
        let deadline = self.shared.rt.now() + self.shared.config.handshake_timeout;
        let verdict = self.run_hook(request, info, deadline).await;
        if !verdict.is_admit() {
            self.shared.shards[0].with(&self.shared.clock, Hub::count_rejection);
        }
        if let Decision::Admit(admitted) = &verdict.decision {
            let event_stream = is_event_stream_request(request);
            let from = admitted.resume_from.as_deref();
            if read_back::resumes(from, event_stream, request.headers()) {
                let topics = admitted.topics.clone();
                read_back::await_read_back(self.shared.clone(), topics, deadline).await;
            }
        }
        verdict
    }

    async fn run_hook(
        &self,
        request: &Request,
        info: ConnectionInfo,
        deadline: Instant,
    ) -> Verdict {
        let Some(hook) = self.shared.handlers().request.clone() else {
            return Verdict::admit();
        };
        let kind = if is_event_stream_request(request) {
            SessionKind::EventStream
        } else {
            SessionKind::WebSocket
        };
        let shown = RequestInfo {
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            remote_addr: info.remote_addr,
            local_addr: info.local_addr,
            kind,
        };
        let panicked = || {
            self.shared.hook_panics.fetch_add(1, Ordering::Relaxed);
            Verdict::refuse(500, "internal error")
        };
        let mut future = match catch_unwind(AssertUnwindSafe(|| hook(shown))) {
            Ok(future) => future,
            Err(_) => return panicked(),
        };
        let mut timeout = self.shared.rt.sleep_until(deadline);
        poll_fn(|cx| {
            match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                Ok(Poll::Ready(verdict)) => return Poll::Ready(verdict),
                Ok(Poll::Pending) => {}
                Err(_) => return Poll::Ready(panicked()),
            }
            match timeout.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Verdict::refuse(503, "request verdict timed out")),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// For HTTP integrations: checks an event-stream request (origin policy, session
    /// cap) before answering it. The framework answers `200` with
    /// [`StreamAccept::response_headers`] and a streaming body fed by the transport
    /// of [`Melody::event_stream_connection`].
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
    /// # let request = http::Request::get("/events")
    /// #     .header("host", "localhost")
    /// #     .header("accept", "text/event-stream")
    /// #     .body(())?;
    /// assert!(is_event_stream_request(&request));
    /// let accept = melody.check_event_stream(&request)?;
    /// let headers = accept.response_headers();
    /// assert!(headers.contains(&("content-type", "text/event-stream".to_owned())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_event_stream(
        &self,
        request: &Request,
    ) -> Result<StreamAccept, HandshakeRejection> {
        self.check_request(|hub| hub.check_event_stream(request))
    }

    /// For HTTP integrations: the task serving a WebSocket the framework upgraded after
    /// [`Melody::judge`] admitted its request: the verdict's keys, state, topics and
    /// settings are in place before `on_connect`. A refusing verdict (which should
    /// have been answered instead) closes the session at once with 1008.
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
    /// # /// A peer that hangs up at once.
    /// # struct Eof;
    /// # impl Transport for Eof {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Ready(Ok(0)) }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # fn block_on<F: std::future::Future>(future: F) -> F::Output {
    /// #     let mut future = std::pin::pin!(future);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) { return out; }
    /// #     }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// melody.on_request(|_request| async { Verdict::admit().key("user", "ada".to_owned()) });
    /// melody.on_connect(|session| {
    ///     session.write(&format!("hello, {}", session.must_get::<String>("user")));
    /// });
    /// let accept = melody.check_upgrade(&request)?;
    /// let verdict = block_on(melody.judge(&request, ConnectionInfo::default()));
    /// // The framework answered 101 with `accept`; `Eof` stands for the upgraded stream.
    /// let task = melody.judged_upgrade(Eof, request, accept, verdict, ConnectionInfo::default());
    /// block_on(task); // an adapter spawns it
    /// assert_eq!(melody.stats().connected, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn judged_upgrade<T: Transport>(
        &self,
        transport: T,
        request: Request,
        accept: Accept,
        verdict: Verdict,
        info: ConnectionInfo,
    ) -> Connection<R, T> {
        let now = self.shared.rt.now();
        self.open_judged(transport, verdict, |hub, slot| {
            hub.open_upgraded(now, request, accept, Vec::new(), info, slot)
        })
    }

    /// For HTTP integrations: the task serving an event stream whose `200` the
    /// framework sent (after [`Melody::check_event_stream`] and [`Melody::judge`]).
    /// The session writes the bare event stream (the framework chunks it) into
    /// `transport`, whose reads should stay pending until the client is gone and then
    /// end (`Ok(0)`): that ends the session. When the session ends, it closes the
    /// transport: end the response body then.
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
    /// # /// A peer that hangs up at once.
    /// # struct Eof;
    /// # impl Transport for Eof {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Ready(Ok(0)) }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # fn block_on<F: std::future::Future>(future: F) -> F::Output {
    /// #     let mut future = std::pin::pin!(future);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) { return out; }
    /// #     }
    /// # }
    /// # let request = http::Request::get("/events")
    /// #     .header("host", "localhost")
    /// #     .header("accept", "text/event-stream")
    /// #     .body(())?;
    /// melody.on_connect(|session| {
    ///     session.subscribe("news");
    /// });
    /// let accept = melody.check_event_stream(&request)?;
    /// let verdict = block_on(melody.judge(&request, ConnectionInfo::default()));
    /// // The framework answered 200 with `accept.response_headers()`; its body is fed by
    /// // what the session writes to the transport (`Eof`: a client that left at once).
    /// let _ = accept;
    /// let task = melody.event_stream_connection(Eof, request, verdict, ConnectionInfo::default());
    /// block_on(task);
    /// assert_eq!(melody.stats().connected, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn event_stream_connection<T: Transport>(
        &self,
        transport: T,
        request: Request,
        verdict: Verdict,
        info: ConnectionInfo,
    ) -> Connection<R, T> {
        let now = self.shared.rt.now();
        self.open_judged(transport, verdict, |hub, slot| {
            hub.open_event_stream(now, request, info, slot)
        })
    }

    /// Opens a session with `open`, then gives it its verdict's keys, state, topics and
    /// settings, under one shard lock.
    fn open_judged<T: Transport>(
        &self,
        transport: T,
        verdict: Verdict,
        open: impl FnOnce(&mut Hub<Slot>, Slot) -> SessionId,
    ) -> Connection<R, T> {
        let shard = self.shared.pick_shard();
        let now = self.shared.rt.now();
        let (admitted, refused) = match verdict.decision {
            Decision::Admit(admitted) => (*admitted, None),
            Decision::Refuse(refusal) => (Admitted::default(), Some(refusal.reason)),
        };
        let Admitted {
            keys,
            state,
            topics,
            admission,
            resume_from,
        } = admitted;
        // History topics resume under the history lock, taken before the shard's.
        let mut history = self
            .shared
            .history
            .keeps_any(topics.iter())
            .then(|| self.shared.history.lock());
        let slot = Slot {
            keys,
            state,
            ..Slot::default()
        };
        let (id, subscribed) = self.shared.shards[shard].with(&self.shared.clock, |hub| {
            let id = open(hub, slot);
            let _ = hub.apply_admission(id, &admission);
            let subscribed: Vec<String> = topics
                .into_iter()
                .filter(|topic| match history.as_deref_mut() {
                    Some(store) if self.shared.history.keeps(topic) => {
                        let from = resume_from.as_deref();
                        crate::history::resume_in(store, hub, id, now, topic, from).subscribed
                    }
                    _ => hub.subscribe(id, topic),
                })
                .collect();
            if let Some(reason) = &refused {
                hub.close(id, now, melody_core::CloseCode::Policy, reason);
            }
            self.refuse_if_closed(hub, id, now);
            (id, subscribed)
        });
        if let Some(backplane) = self.shared.backplane.get() {
            for topic in &subscribed {
                backplane.note_subscribed(topic);
            }
        }
        Connection::new(self.shared.clone(), shard, id, transport)
    }
}
