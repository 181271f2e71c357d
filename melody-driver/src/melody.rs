//! `Melody`: the handle applications hold — handlers, broadcast, topics, shutdown.

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use melody_core::sse::Event;
use melody_core::{
    Accept, Bytes, CloseCode, Config, ConfigError, ConnectionInfo, Delivery, HandshakeRejection,
    Hub, HubStats, Keys, Prepared, Publication, Request, SessionId,
};

use crate::async_handling::{AsyncHandling, AsyncStats, Overflow};
use crate::backplane::{self, Backplane};
use crate::connection::Connection;
use crate::error::Error;
use crate::fanout::{self, Recipients};
use crate::filter::SessionRef;
use crate::request::{RequestHook, RequestInfo, Verdict, VerdictFuture};
use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::session::Session;
use crate::shard::Shard;
use crate::shared::Shared;
use crate::slot::Slot;
use crate::wait::{Closed, IdleOrDeadline};

/// What [`Melody::close_every_session`] found, summed over shards.
#[derive(Default)]
struct ClosedSessions {
    /// Sessions connected (open or already closing) before the call.
    connected: usize,
    /// Sessions this call started closing.
    started_closing: usize,
}

/// A WebSocket session manager in the style of olahol/melody: register handlers,
/// serve connections through an adapter, broadcast. Cheap to clone; clones share
/// everything.
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
/// let melody = Melody::with_runtime(Rt, Config::default())?;
/// let echo = melody.clone();
/// melody.on_message(move |_session, text| {
///     echo.broadcast(text);
/// });
/// assert_eq!(melody.broadcast("hello"), Delivery::default(), "nobody to send to yet");
/// # Ok::<(), ConfigError>(())
/// ```
pub struct Melody<R: Runtime> {
    pub(crate) shared: Arc<Shared<R>>,
}

impl<R: Runtime> Clone for Melody<R> {
    fn clone(&self) -> Self {
        Melody {
            shared: self.shared.clone(),
        }
    }
}

impl<R: Runtime> fmt::Debug for Melody<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Melody")
            .field("sessions", &self.len())
            .field("shards", &self.shared.shards.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// What [`Melody::shutdown_with`] (and [`Melody::shutdown`]) did.
///
/// Every session connected when the shutdown began is ended by it, either by its
/// close handshake before the deadline or by the cut at the deadline, so
/// `closed - cut_off` is how many finished their close in time.
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
/// let report = block_on(melody.shutdown(std::time::Duration::from_secs(5)));
/// assert_eq!(report, ShutdownReport::default(), "no session to close");
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sessions connected when the shutdown began, each ended by it: the open ones,
    /// which it sent its close, and those already closing after an earlier
    /// [`Melody::close`]/[`Melody::close_with`], which keep that earlier close's code.
    /// Connections still in their handshake are dropped and not counted.
    pub closed: usize,
    /// Connections still not over at the deadline, cut off without finishing their
    /// close: the sessions among `closed` whose peer did not answer in time, and any
    /// connection that arrived during the shutdown (closed at once) and did not either.
    pub cut_off: usize,
    /// Messages accepted for cut-off sessions but never written.
    pub undelivered: usize,
}

impl<R: Runtime + Default> Melody<R> {
    /// An instance with the default [`Config`].
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
    /// let melody: Melody<Rt> = Melody::new();
    /// assert_eq!(melody.config().max_sessions, None);
    /// ```
    pub fn new() -> Self {
        match Self::with_config(Config::default()) {
            Ok(m) => m,
            // The default config is valid; `validate` is tested on it.
            Err(_) => unreachable_default(),
        }
    }

    /// An instance with `config`, refused if the config is invalid.
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
    /// use std::time::Duration;
    ///
    /// let melody: Melody<Rt> = Melody::with_config(Config::default().max_sessions(Some(10_000)))?;
    /// assert_eq!(melody.config().max_sessions, Some(10_000));
    ///
    /// let invalid = Config::default().ping_period(Duration::from_secs(90));
    /// assert!(Melody::<Rt>::with_config(invalid).is_err(), "pings must come before the pong wait");
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn with_config(config: Config) -> Result<Self, ConfigError> {
        Self::with_runtime(R::default(), config)
    }
}

#[cold]
fn unreachable_default() -> ! {
    unreachable!("the default config is valid")
}

impl<R: Runtime + Default> Default for Melody<R> {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! handler {
    ($(#[$doc:meta])* $name:ident, $field:ident, ($($arg:ty),*)) => {
        $(#[$doc])*
        pub fn $name(&self, handler: impl Fn(&Session<R> $(, $arg)*) + Send + Sync + 'static) {
            self.shared.update_handlers(|h| h.$field = Some(Arc::new(handler)));
        }
    };
}

impl<R: Runtime> Melody<R> {
    /// An instance on runtime `rt`, with as many shards as the machine has cores.
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_driver::{api::*, Melody};
    ///
    /// /// A runtime that runs nothing: enough to register handlers and broadcast.
    /// #[derive(Clone)]
    /// struct Rt;
    /// impl Runtime for Rt {
    ///     fn spawn(&self, _task: BoxFuture) {}
    ///     fn sleep_until(&self, _deadline: Instant) -> BoxFuture { Box::pin(async {}) }
    ///     fn now(&self) -> Instant { Instant::now() }
    /// }
    ///
    /// let melody = Melody::with_runtime(Rt, Config::default())?;
    /// assert!(melody.is_empty());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn with_runtime(rt: R, config: Config) -> Result<Self, ConfigError> {
        let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_shards(rt, config, shards)
    }

    /// An instance with `shards` hubs: sessions spread over them, and a broadcast
    /// locks one shard at a time.
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
    /// let melody = Melody::with_shards(Rt, Config::default(), 4)?;
    /// assert!(format!("{melody:?}").contains("shards: 4"));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn with_shards(rt: R, config: Config, shards: usize) -> Result<Self, ConfigError> {
        Ok(Melody {
            shared: Arc::new(Shared::new(rt, config, shards)?),
        })
    }

    /// The configuration.
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
    /// assert_eq!(melody.config().max_message_size, 64 * 1024);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The runtime.
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
    /// let now = melody.runtime().now();
    /// assert!(now <= Instant::now());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn runtime(&self) -> &R {
        &self.shared.rt
    }

    handler!(/// Called when a session has connected (olahol/melody's `HandleConnect`).
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
        /// melody.on_connect(|session| {
        ///     session.subscribe("lobby");
        ///     session.write("welcome");
        /// });
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_connect, connect, ());
    handler!(/// Called once when a session is over, last (olahol/melody's `HandleDisconnect`).
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
        /// let others = melody.clone();
        /// melody.on_disconnect(move |session| {
        ///     let name = session.get::<String>("name").unwrap_or_default();
        ///     others.publish("lobby", &format!("{name} left"));
        /// });
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_disconnect, disconnect, ());
    handler!(/// Called for each text message (olahol/melody's `HandleMessage`).
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
        /// let everyone = melody.clone();
        /// melody.on_message(move |session, text| {
        ///     everyone.broadcast_others(text, session);
        /// });
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_message, message, (&str));
    handler!(/// Called for each binary message (olahol/melody's `HandleMessageBinary`).
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
        /// melody.on_message_binary(|session, data| {
        ///     session.write_binary(data);
        /// });
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_message_binary, message_binary, (&[u8]));
    handler!(/// Called for each pong (olahol/melody's `HandlePong`).
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
        /// melody.on_pong(|session| session.set("last-pong", Instant::now()));
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_pong, pong, ());
    handler!(/// Called on errors: bad input, timeouts, transport failures, a panicking handler
        /// (olahol/melody's `HandleError`). Not called for a normal close.
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
        /// melody.on_error(|session, err| {
        ///     eprintln!("session {:?}: {err}", session.key());
        /// });
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_error, error, (&Error));
    handler!(/// Called with how many messages for the session its full outbox dropped since
        /// the last call (olahol/melody reports `ErrMessageBufferFull` to `HandleError`
        /// instead). The same drops are counted in the [`Delivery`] of the `write` or
        /// broadcast that made them and in [`Session::stats`].
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
        /// melody.on_dropped(|session, dropped| {
        ///     eprintln!("{dropped} messages dropped for {:?}", session.remote_addr());
        /// });
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_dropped, dropped, (u64));
    handler!(/// Called with the code and reason of the peer's close frame (olahol/melody's
        /// `HandleClose`).
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
        /// melody.on_close(|_session, code, reason| {
        ///     println!("the peer closed with {code} {reason:?}");
        /// });
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_close, close, (u16, &str));
    handler!(/// Called when a text message has been fully written (olahol/melody's
        /// `HandleSentMessage`). Costs an event per message while set.
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
        /// melody.on_sent(|_session, text| println!("delivered: {text}"));
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_sent, sent, (&str));
    handler!(/// Called when a binary message has been fully written (olahol/melody's
        /// `HandleSentMessageBinary`).
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
        /// melody.on_sent_binary(|_session, data| println!("delivered {} bytes", data.len()));
        /// # Ok::<(), ConfigError>(())
        /// ```
        on_sent_binary, sent_binary, (&[u8]));

    /// Sets an async handler for each text message: for work that awaits (a database,
    /// an HTTP call) without holding up the session's writes and keepalive, or other
    /// sessions. The handler gets its own [`Session`] handle and the text, owned (the
    /// future outlives the event: one copy of the text per message); its future is
    /// polled by the session's connection task, no task is spawned per message.
    ///
    /// By default messages are handled in order per session, one at a time, up to 16
    /// accepted, then reading pauses: see [`Melody::set_async_handling`] for
    /// concurrency, the bound and the [`Overflow`] policies. A panic (when called or
    /// polled) is reported like a sync handler's: `on_error` with
    /// [`Error::HandlerPanicked`], close 1011. When the session ends, the futures in
    /// flight run to completion (their writes are refused then), and `on_disconnect`
    /// runs once after the last one; only the runtime dropping the connection task
    /// drops them ([`AsyncStats::abandoned`]).
    ///
    /// An `on_message` handler, if set too, runs first, synchronously. Replaces any
    /// earlier async text handler.
    ///
    /// ```
    /// # use melody_driver::{Melody, Runtime};
    /// # async fn lookup(_name: &str) -> Option<u32> { Some(7) }
    /// # fn demo<R: Runtime>(m: &Melody<R>) {
    /// m.on_message_async(|session, text| async move {
    ///     let reply = match lookup(&text).await {
    ///         Some(score) => format!("{text}: {score}"),
    ///         None => format!("{text}: unknown"),
    ///     };
    ///     let _ = session.write(&reply);
    /// });
    /// # }
    /// ```
    pub fn on_message_async<F, Fut>(&self, handler: F)
    where
        F: Fn(Session<R>, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(move |s: Session<R>, text: String| -> BoxFuture {
            Box::pin(handler(s, text))
        });
        self.shared
            .update_handlers(|h| h.message_async = Some(handler));
    }

    /// Binary twin of [`Melody::on_message_async`]: the data is a [`Bytes`] sharing the
    /// received buffer (no copy).
    ///
    /// ```
    /// # use melody_driver::{Melody, Runtime};
    /// # fn demo<R: Runtime>(m: &Melody<R>) {
    /// m.on_message_binary_async(|session, data| async move {
    ///     // … await something with `data` …
    ///     let _ = session.write_binary(&data);
    /// });
    /// # }
    /// ```
    pub fn on_message_binary_async<F, Fut>(&self, handler: F)
    where
        F: Fn(Session<R>, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler =
            Arc::new(move |s: Session<R>, data: Bytes| -> BoxFuture { Box::pin(handler(s, data)) });
        self.shared
            .update_handlers(|h| h.message_binary_async = Some(handler));
    }

    /// Sets how async message handlers run per session: in order or concurrently, how
    /// many messages may be in flight, and what happens past that bound
    /// ([`Overflow::Wait`], [`Overflow::Drop`] or [`Overflow::Close`]). Applies to
    /// messages read after the call.
    ///
    /// ```
    /// # use melody_driver::{Melody, Runtime};
    /// use melody_driver::api::{AsyncHandling, Overflow};
    /// # fn demo<R: Runtime>(m: &Melody<R>) {
    /// // Up to 4 handlers at once per session; a 5th message is dropped and counted.
    /// m.set_async_handling(AsyncHandling::concurrent(4).overflow(Overflow::Drop));
    /// m.on_overflow(|session, policy| eprintln!("{:?}: {policy:?}", session.key()));
    /// # }
    /// ```
    pub fn set_async_handling(&self, handling: AsyncHandling) {
        self.shared.update_handlers(|h| h.async_handling = handling);
    }

    /// The async message handling in force (see [`Melody::set_async_handling`]).
    pub fn async_handling(&self) -> AsyncHandling {
        self.shared.handlers().async_handling
    }

    /// Counters of the async message handlers of every session: started, finished,
    /// panicked, and the overflows (see [`AsyncStats`]).
    pub fn async_stats(&self) -> AsyncStats {
        self.shared.handlers().async_counters.snapshot()
    }

    handler!(/// Called each time a message for an async handler finds its session at the
        /// bound on messages in flight, with the policy applied: [`Overflow::Wait`] once
        /// per pause of reading, [`Overflow::Drop`] and [`Overflow::Close`] once per
        /// dropped message. The same are counted in [`Melody::async_stats`].
        on_overflow, overflow, (Overflow));

    /// Sets the request hook (olahol/melody's `HandleRequestWithKeys`, made
    /// asynchronous): every upgrade request that passes melody's own checks (method,
    /// version, key, origin, session cap) waits for the [`Verdict`] its future returns.
    /// [`Verdict::admit`] writes the 101 and connects the session with the keys, state,
    /// topics and limits it carries (all in place before `on_connect`);
    /// [`Verdict::refuse`] answers with its HTTP error and ends the connection (no
    /// session, so no handler runs; counted in [`HubStats::rejected`]).
    ///
    /// The hook may await (a token check, a lookup); `Config::handshake_timeout` bounds
    /// the wait: past it the client gets 503 and the future is dropped, as it is when
    /// the peer leaves meanwhile. A hook that panics (when called or polled) refuses
    /// with 500 "internal error" and is counted in [`Melody::hook_panics`]. Replaces
    /// any earlier hook; requests complete after the call wait for it.
    ///
    /// It judges the requests melody answers itself (an adapter's `serve` and
    /// `accept`, [`Melody::connection`]) and, through [`Melody::judge`], those an HTTP
    /// integration answers (melody-tokio's axum handlers); [`Melody::upgraded_connection`]
    /// alone, for a framework that decided the session's keys itself, does not.
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
    /// melody.on_request(|request: RequestInfo| async move {
    ///     match request.header("authorization") {
    ///         Some("Bearer open-sesame") => Verdict::admit().key("user", "ada".to_owned()).subscribe("news"),
    ///         _ => Verdict::refuse(401, "unknown token").header("www-authenticate", "Bearer"),
    ///     }
    /// });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn on_request<F, Fut>(&self, hook: F)
    where
        F: Fn(RequestInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        let hook: RequestHook = Arc::new(move |info| -> VerdictFuture { Box::pin(hook(info)) });
        self.shared.update_handlers(|h| h.request = Some(hook));
    }

    /// How many times the request hook panicked since the instance was made (each such
    /// request was refused with 500; no session existed to report it to).
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
    /// melody.on_request(|_request| async { Verdict::admit() });
    /// assert_eq!(melody.hook_panics(), 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn hook_panics(&self) -> u64 {
        self.shared.hook_panics.load(Ordering::Relaxed)
    }

    // ---- connections --------------------------------------------------------------

    /// The task serving one accepted connection, from its first byte (the HTTP upgrade)
    /// to its close. Spawn it; or use [`Melody::spawn_connection`].
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
    /// // `Eof` is a transport whose peer hangs up before sending its request.
    /// let task = melody.connection(Eof, ConnectionInfo::default());
    /// block_on(task); // an adapter spawns it instead
    /// assert_eq!(melody.stats().opened, 1);
    /// assert_eq!(melody.stats().connected, 0, "no handshake, no session");
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn connection<T: Transport>(&self, transport: T, info: ConnectionInfo) -> Connection<R, T> {
        let shard = self.shared.pick_shard();
        let now = self.shared.rt.now();
        let id = self.shared.shards[shard].with(&self.shared.clock, |hub| {
            let id = hub.open(now, info, Slot::default());
            self.refuse_if_closed(hub, id, now);
            id
        });
        Connection::new(self.shared.clone(), shard, id, transport)
    }

    /// Closes a session opened after (or while) `close`/`shutdown` ran, which
    /// `close_all` may have missed: checked under the shard lock after opening, so
    /// either `close_all` saw the session or this sees the flag.
    pub(crate) fn refuse_if_closed(&self, hub: &mut Hub<Slot>, id: SessionId, now: Instant) {
        if self.shared.is_closed() {
            hub.close(id, now, CloseCode::Away, "server closing");
        }
    }

    /// Spawns [`Melody::connection`] on the runtime. After `close`/`shutdown`, the
    /// transport is dropped instead.
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
    /// // `Eof` stands for an accepted socket.
    /// melody.spawn_connection(Eof, ConnectionInfo::default());
    /// assert_eq!(melody.stats().opened, 1);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn spawn_connection<T: Transport>(&self, transport: T, info: ConnectionInfo) {
        if self.is_closed() {
            return;
        }
        // Spawned here, awaited by nobody: it may give up its task while quiet.
        let task = self.connection(transport, info).parkable();
        self.shared.rt.spawn(Box::pin(task));
    }

    /// For HTTP integrations: checks an upgrade request (version, key, origin policy,
    /// session cap) before answering it. The caller sends 101 with the returned
    /// [`Accept`] values, or the rejection's status and reason.
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
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// // `request` is a WebSocket upgrade an HTTP framework received.
    /// let accept = melody.check_upgrade(&request)?;
    /// assert_eq!(accept.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ///
    /// melody.close();
    /// let refused = melody.check_upgrade(&request).unwrap_err();
    /// assert_eq!(refused.status, http::StatusCode::SERVICE_UNAVAILABLE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_upgrade(&self, request: &Request) -> Result<Accept, HandshakeRejection> {
        self.check_request(|hub| hub.check_upgrade(request))
    }

    /// Runs one of the hub's request checks, or refuses with 503 (counted) once the
    /// instance is closing.
    pub(crate) fn check_request<A>(
        &self,
        check: impl FnOnce(&mut Hub<Slot>) -> Result<A, HandshakeRejection>,
    ) -> Result<A, HandshakeRejection> {
        let shard = &self.shared.shards[0];
        if self.is_closed() {
            shard.with(&self.shared.clock, Hub::count_rejection);
            return Err(HandshakeRejection {
                status: melody_core::http::StatusCode::SERVICE_UNAVAILABLE,
                reason: "server closing",
            });
        }
        shard.with(&self.shared.clock, check)
    }

    /// For HTTP integrations: the task serving a connection that the framework already
    /// upgraded (olahol/melody's `HandleRequestWithKeys`). `keys` are the session's
    /// initial keys; bytes read past the request, if any, must come first out of
    /// `transport`. After `close`/`shutdown` the session is closed with 1001 at once.
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
    /// let accept = melody.check_upgrade(&request)?;
    /// // The framework answered 101 with `accept`; `Eof` stands for the upgraded stream.
    /// let mut keys = Keys::new();
    /// keys.set("user", "ada".to_owned());
    /// let task = melody.upgraded_connection(Eof, request, accept, keys, ConnectionInfo::default());
    /// block_on(task);
    /// assert_eq!(melody.stats().connected, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn upgraded_connection<T: Transport>(
        &self,
        transport: T,
        request: Request,
        accept: Accept,
        keys: Keys,
        info: ConnectionInfo,
    ) -> Connection<R, T> {
        let shard = self.shared.pick_shard();
        let now = self.shared.rt.now();
        let slot = Slot {
            keys,
            ..Slot::default()
        };
        let id = self.shared.shards[shard].with(&self.shared.clock, |hub| {
            let id = hub.open_upgraded(now, request, accept, Vec::new(), info, slot);
            self.refuse_if_closed(hub, id, now);
            id
        });
        Connection::new(self.shared.clone(), shard, id, transport)
    }

    // ---- backplane ----------------------------------------------------------------

    /// Makes this instance one node of several: from now on every `broadcast*` (but
    /// `broadcast_filter` and `broadcast_multiple`) and `publish*` is delivered here and
    /// also handed to `backplane`, without waiting for it; what the backplane receives
    /// from other nodes is delivered here only. Spawns the backplane's task on the
    /// runtime. Attach before serving, so that it hears of every subscribed topic.
    /// Gives `backplane` back if one is already attached.
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
    /// use melody_driver::{Backplane, BackplaneLink};
    ///
    /// /// A backplane that forwards nothing: a real one (melody-redis) runs a task
    /// /// relaying the link's outgoing messages and delivering what other nodes send.
    /// struct Alone;
    /// impl<R: Runtime> Backplane<R> for Alone {
    ///     fn run(self, _link: BackplaneLink<R>) -> BoxFuture { Box::pin(async {}) }
    /// }
    ///
    /// assert!(melody.attach_backplane(Alone).is_ok());
    /// assert!(melody.attach_backplane(Alone).is_err(), "one backplane per instance");
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn attach_backplane<B: Backplane<R>>(&self, backplane: B) -> Result<(), B> {
        let (attached, link) = backplane::link(
            &self.shared,
            backplane.queue_capacity(),
            backplane.keeps_history(),
        );
        if self.shared.backplane.set(attached).is_err() {
            return Err(backplane);
        }
        self.shared.rt.spawn(backplane.run(link));
        Ok(())
    }

    /// Whether a backplane is attached.
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
    /// assert!(!melody.has_backplane());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn has_backplane(&self) -> bool {
        self.shared.backplane.get().is_some()
    }

    // ---- broadcast ----------------------------------------------------------------

    fn fan(&self, msg: impl Into<Publication>, to: Recipients<'_, R>) -> Delivery {
        fanout::fan(&self.shared, &msg.into(), to)
    }

    /// Sends a text message to every session (olahol/melody's `Broadcast`).
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
    /// let delivery = melody.broadcast("hello, everyone");
    /// assert_eq!(delivery.queued, 0, "no session is open yet");
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast(&self, text: &str) -> Delivery {
        self.fan(Prepared::text(text), Recipients::All)
    }

    /// Sends a binary message to every session (`BroadcastBinary`).
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
    /// let delivery = melody.broadcast_binary(&[1, 2, 3]);
    /// assert_eq!(delivery, Delivery::default());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast_binary(&self, data: &[u8]) -> Delivery {
        self.fan(Prepared::binary(data), Recipients::All)
    }

    /// Sends an encoded message to every session.
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
    /// // Encoded once, sent many times.
    /// let tick = Prepared::text("tick");
    /// for _ in 0..3 {
    ///     melody.broadcast_prepared(&tick);
    /// }
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast_prepared(&self, msg: &Prepared) -> Delivery {
        self.fan(msg.clone(), Recipients::All)
    }

    /// Sends to every session but `except` (`BroadcastOthers`).
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
    /// let everyone = melody.clone();
    /// melody.on_message(move |sender, text| {
    ///     everyone.broadcast_others(text, sender);
    /// });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast_others(&self, text: &str, except: &Session<R>) -> Delivery {
        self.fan(Prepared::text(text), Recipients::Others(except))
    }

    /// Binary twin of [`Melody::broadcast_others`] (`BroadcastBinaryOthers`).
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
    /// let everyone = melody.clone();
    /// melody.on_message_binary(move |sender, data| {
    ///     everyone.broadcast_binary_others(data, sender);
    /// });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast_binary_others(&self, data: &[u8], except: &Session<R>) -> Delivery {
        self.fan(Prepared::binary(data), Recipients::Others(except))
    }

    /// Sends to the listed sessions (`BroadcastMultiple`).
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
    /// let admins: Vec<_> = melody.sessions().into_iter().filter(|s| s.get::<bool>("admin") == Some(true)).collect();
    /// let delivery = melody.broadcast_multiple("maintenance at noon", &admins);
    /// assert_eq!(delivery.queued, admins.len());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast_multiple(&self, text: &str, sessions: &[Session<R>]) -> Delivery {
        self.fan(Prepared::text(text), Recipients::List(sessions))
    }

    /// Binary twin of [`Melody::broadcast_multiple`].
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
    /// let delivery = melody.broadcast_binary_multiple(&[0xff], &melody.sessions());
    /// assert_eq!(delivery.queued, melody.len());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast_binary_multiple(&self, data: &[u8], sessions: &[Session<R>]) -> Delivery {
        self.fan(Prepared::binary(data), Recipients::List(sessions))
    }

    /// Sends to the sessions for which `keep` holds (`BroadcastFilter`). The filter runs
    /// under each shard's lock: read the [`SessionRef`], do not call melody from it.
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
    /// let delivery = melody.broadcast_filter("for admins", |s| s.get::<bool>("admin") == Some(&true));
    /// assert_eq!(delivery.queued, 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast_filter(
        &self,
        text: &str,
        keep: impl Fn(&SessionRef<'_>) -> bool + Sync,
    ) -> Delivery {
        self.fan(Prepared::text(text), Recipients::Filter(&keep))
    }

    /// Binary twin of [`Melody::broadcast_filter`] (`BroadcastBinaryFilter`).
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
    /// let delivery = melody.broadcast_binary_filter(&[7], |s| s.topics().any(|t| t == "raw"));
    /// assert_eq!(delivery.queued, 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn broadcast_binary_filter(
        &self,
        data: &[u8],
        keep: impl Fn(&SessionRef<'_>) -> bool + Sync,
    ) -> Delivery {
        self.fan(Prepared::binary(data), Recipients::Filter(&keep))
    }

    /// Sends a text message to the subscribers of `topic`.
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
    /// melody.on_connect(|session| {
    ///     session.subscribe("news");
    /// });
    /// let delivery = melody.publish("news", "extra, extra");
    /// assert_eq!(delivery.queued, melody.subscriber_count("news"));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn publish(&self, topic: &str, text: &str) -> Delivery {
        self.fan(Prepared::text(text), Recipients::Topic(topic))
    }

    /// Sends a binary message to the subscribers of `topic`.
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
    /// let delivery = melody.publish_binary("telemetry", &[0x01, 0x02]);
    /// assert_eq!(delivery.queued, 0, "no subscriber yet");
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn publish_binary(&self, topic: &str, data: &[u8]) -> Delivery {
        self.fan(Prepared::binary(data), Recipients::Topic(topic))
    }

    /// Sends an encoded message to the subscribers of `topic`.
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
    /// let quote = Prepared::text(r#"{"EURUSD":1.08}"#);
    /// melody.publish_prepared("quotes", &quote);
    /// melody.publish_prepared("quotes/eur", &quote);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn publish_prepared(&self, topic: &str, msg: &Prepared) -> Delivery {
        self.fan(msg.clone(), Recipients::Topic(topic))
    }

    /// Sends a server-sent event to the subscribers of `topic`: event-stream sessions
    /// get the whole event (name, id, data), WebSocket sessions its data as one text
    /// frame (binary for a session that writes binary). Each form is encoded once for
    /// all recipients; with a backplane, the event reaches other instances whole.
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
    /// let event = Event::new(r#"{"temp":21.5}"#).name("reading")?.id("1042")?;
    /// let delivery = melody.publish_event("device/7", event);
    /// println!("{} queued, {} dropped", delivery.queued, delivery.dropped);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_event(&self, topic: &str, event: Event) -> Delivery {
        self.fan(Publication::event(event), Recipients::Topic(topic))
    }

    /// Sends a server-sent event to every session (see [`Melody::publish_event`]).
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
    /// let event = Event::new("restarting in 5 minutes").name("notice")?;
    /// let delivery = melody.broadcast_event(event);
    /// assert_eq!(delivery.queued, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn broadcast_event(&self, event: Event) -> Delivery {
        self.fan(Publication::event(event), Recipients::All)
    }

    /// Sends to the subscribers of `topic` but `except` (typically the publisher).
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
    /// let rooms = melody.clone();
    /// melody.on_message(move |sender, text| {
    ///     if let Some(room) = sender.get::<String>("room") {
    ///         rooms.publish_others(&room, text, sender);
    ///     }
    /// });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn publish_others(&self, topic: &str, text: &str, except: &Session<R>) -> Delivery {
        self.fan(Prepared::text(text), Recipients::TopicOthers(topic, except))
    }

    /// Binary twin of [`Melody::publish_others`].
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
    /// let rooms = melody.clone();
    /// melody.on_message_binary(move |sender, data| {
    ///     rooms.publish_binary_others("game", data, sender);
    /// });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn publish_binary_others(&self, topic: &str, data: &[u8], except: &Session<R>) -> Delivery {
        self.fan(
            Prepared::binary(data),
            Recipients::TopicOthers(topic, except),
        )
    }

    /// How many sessions are subscribed to `topic`.
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
    /// assert_eq!(melody.subscriber_count("news"), 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn subscriber_count(&self, topic: &str) -> usize {
        fanout::subscriber_count(&self.shared, topic)
    }

    // ---- inspection and closing --------------------------------------------------------

    /// The open sessions (olahol/melody's `Sessions`).
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
    /// for session in melody.sessions() {
    ///     session.write("ping from the server");
    /// }
    /// assert!(melody.sessions().is_empty());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn sessions(&self) -> Vec<Session<R>> {
        let mut all = Vec::with_capacity(self.len());
        for shard in self.shared.shards.iter() {
            shard.read(|hub| {
                for id in hub.sessions() {
                    if let Some(info) = hub.user(id).and_then(|slot| slot.info.clone()) {
                        all.push(Session {
                            shared: self.shared.clone(),
                            info,
                        });
                    }
                }
            });
        }
        all
    }

    /// How many sessions are open (olahol/melody's `Len`).
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
    /// assert_eq!(melody.len(), 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Whether no session is open.
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
    /// assert!(melody.is_empty());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connection tasks still running, from the upgrade's first byte until the
    /// transport is closed and the slot released: handshaking and closing connections
    /// count, unlike in [`Melody::len`]. With no client left it returns to 0; a count
    /// that stays above is a leaked task. (The clock task, one per instance, is apart.)
    /// Parked connections ([`Melody::parked_connections`]) count: they are tasks again
    /// at their next wakeup.
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
    /// block_on(melody.connection(Eof, ConnectionInfo::default()));
    /// assert_eq!(melody.connection_tasks(), 0, "the task ended with its transport");
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn connection_tasks(&self) -> usize {
        self.shared.lifecycle.connections()
    }

    /// Connections that gave up their task while quiet: counted in
    /// [`Melody::connection_tasks`], each held by one small allocation (its transport,
    /// its session handle) until a wakeup (input, a message for it, a ping due, a
    /// close) spawns its task again.
    ///
    /// A connection [`Melody::spawn_connection`] (or an adapter's `serve`) started
    /// parks when it has nothing to do and its session is quiet: no data message went
    /// either way since it opened or since its last ping
    /// ([`Hub::is_quiet`](melody_core::Hub::is_quiet)). Most of a large server's
    /// connections are; a task per connection is most of what one costs
    /// (BENCHMARKS.md, idle memory). A future from [`Melody::connection`] or the
    /// upgrade entry points parks only once made
    /// [`parkable`](crate::Connection::parkable) (spawned, never awaited, as the axum
    /// integration's are): whoever awaits it expects it to end with the session.
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
    /// let melody = Melody::with_runtime(Rt, Config::default())?;
    /// assert_eq!(melody.parked_connections(), 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn parked_connections(&self) -> usize {
        self.shared.unparker.parked()
    }

    /// Parked connections ([`Melody::parked_connections`]) whose sockets left their
    /// runtime's reactor (see [`Transport::leave_reactor`](crate::Transport::leave_reactor)):
    /// the instance watches them for input itself, with one poller and one thread made
    /// at the first such park, and a parked connection then holds no registration of
    /// the runtime's. The TCP connections the tokio, smol and async-std adapters'
    /// `serve` accept do this, through [`TcpTransport`](crate::TcpTransport) (on Unix;
    /// 0 elsewhere).
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
    /// let melody = Melody::with_runtime(Rt, Config::default())?;
    /// assert_eq!(melody.parked_outside_reactor(), 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn parked_outside_reactor(&self) -> usize {
        #[cfg(unix)]
        return self.shared.idle_watch.len();
        #[cfg(not(unix))]
        0
    }

    /// Timer-wheel entries of every shard, stale ones included (see
    /// [`Hub::timer_entries`](melody_core::Hub::timer_entries)): with no connection left, it
    /// returns to 0 once the longest configured period has passed.
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
    /// assert_eq!(melody.timer_entries(), 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn timer_entries(&self) -> usize {
        self.shared
            .shards
            .iter()
            .map(|shard| shard.read(|hub| hub.timer_entries()))
            .sum()
    }

    /// Whether `close` or `shutdown` was called (olahol/melody's `IsClosed`).
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
    /// assert!(!melody.is_closed());
    /// melody.close();
    /// assert!(melody.is_closed());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Resolves once `close` or `shutdown` is called: for accept loops to stop.
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
    /// let stopped = melody.closed(); // e.g. raced against `accept()` in a loop
    /// melody.close();
    /// block_on(stopped);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn closed(&self) -> Closed {
        Closed {
            lifecycle: self.shared.lifecycle.clone(),
        }
    }

    /// Stops serving and closes every session with 1001 "going away" after its queued
    /// messages (olahol/melody's `Close`). Returns how many sessions were closed.
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
    /// assert_eq!(melody.close(), 0, "no session was open");
    /// assert!(melody.is_closed());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn close(&self) -> usize {
        self.close_with(CloseCode::Away, "server closing")
    }

    /// Stops serving and closes every session with `code` and `reason`
    /// (olahol/melody's `CloseWithMsg`). Returns how many sessions started closing:
    /// sessions already closing after an earlier call are not counted again.
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
    /// let closed = melody.close_with(CloseCode::Restart, "back in a minute");
    /// assert_eq!(closed, 0);
    /// assert!(melody.is_closed());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn close_with(&self, code: impl Into<CloseCode>, reason: &str) -> usize {
        self.close_every_session(code.into(), reason)
            .started_closing
    }

    /// Stops serving, then per shard under one lock: counts the connected sessions and
    /// closes them all. One lock, so that no session ends between count and close.
    fn close_every_session(&self, code: CloseCode, reason: &str) -> ClosedSessions {
        self.shared.lifecycle.close();
        let now = self.shared.rt.now();
        let mut total = ClosedSessions::default();
        for shard in self.shared.shards.iter() {
            let (connected, started_closing) = shard.with(&self.shared.clock, |hub| {
                (hub.len(), hub.close_all(now, code, reason))
            });
            total.connected += connected;
            total.started_closing += started_closing;
        }
        total
    }

    /// Graceful shutdown with 1001 "server shutting down":
    /// `shutdown_with(grace, CloseCode::Away, "server shutting down")`.
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
    /// use std::time::Duration;
    ///
    /// // In an adapter: `melody.shutdown(Duration::from_secs(5)).await` on ctrl-c.
    /// let report = block_on(melody.shutdown(Duration::from_secs(5)));
    /// assert_eq!(report.closed, 0);
    /// assert!(melody.is_closed());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        self.shutdown_with(grace, CloseCode::Away, "server shutting down")
            .await
    }

    /// Graceful shutdown: stops serving, closes every session with `code` and `reason`
    /// after what it has queued, and waits until all connections are over or `grace`
    /// has passed; then cuts off the rest. Nothing reported as queued to a session
    /// that keeps reading is lost before the deadline.
    ///
    /// Sessions already closing after an earlier [`close`](Melody::close) or
    /// [`close_with`](Melody::close_with) keep that close's code and reason, and are
    /// waited for and counted like the others: see [`ShutdownReport`].
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
    /// use std::time::Duration;
    ///
    /// let report = block_on(melody.shutdown_with(Duration::from_secs(5), CloseCode::Restart, "upgrading"));
    /// assert_eq!(report.cut_off, 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub async fn shutdown_with(
        &self,
        grace: Duration,
        code: impl Into<CloseCode>,
        reason: &str,
    ) -> ShutdownReport {
        let closed = self.close_every_session(code.into(), reason).connected;
        let deadline = self.shared.rt.now() + grace;
        let sleep = self.shared.rt.sleep_until(deadline);
        let idle = IdleOrDeadline {
            lifecycle: self.shared.lifecycle.clone(),
            deadline: sleep,
        }
        .await;
        let mut report = ShutdownReport {
            closed,
            ..ShutdownReport::default()
        };
        if idle {
            return report;
        }
        let now = self.shared.rt.now();
        let cut = std::io::Error::new(std::io::ErrorKind::TimedOut, "shutdown deadline passed");
        for shard in self.shared.shards.iter() {
            let (count, undelivered) = shard.with(&self.shared.clock, |hub| {
                let ids: Vec<SessionId> = hub.all_connections().collect();
                let mut undelivered = 0;
                for &id in &ids {
                    undelivered += hub.session_stats(id).map_or(0, |s| s.queued);
                    let _ = hub.handle_io_error(id, now, &cut);
                }
                (ids.len(), undelivered)
            });
            report.cut_off += count;
            report.undelivered += undelivered;
        }
        // Cut-off tasks end at their next poll; give them a moment to close transports.
        let settle = self
            .shared
            .rt
            .sleep_until(self.shared.rt.now() + Duration::from_millis(200));
        let _ = IdleOrDeadline {
            lifecycle: self.shared.lifecycle.clone(),
            deadline: settle,
        }
        .await;
        report
    }

    /// How often any shard's lock was taken since the instance was made (feature
    /// `lock-stats`): divided by deliveries, the driver's locking cost per message.
    #[cfg(feature = "lock-stats")]
    pub fn shard_lock_acquisitions(&self) -> u64 {
        self.shared.shards.iter().map(|s| s.acquisitions()).sum()
    }

    /// Counters summed over shards.
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
    /// let stats = melody.stats();
    /// assert_eq!(stats.opened, 0);
    /// assert_eq!(stats.dropped, 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn stats(&self) -> HubStats {
        let mut total = HubStats::default();
        let each = Shard::read_all(&self.shared.shards, |hubs| {
            hubs.iter().map(|hub| hub.stats()).collect::<Vec<_>>()
        });
        for s in each {
            total.opened += s.opened;
            total.connected += s.connected;
            total.rejected += s.rejected;
            total.finished += s.finished;
            total.dropped += s.dropped;
            total.skipped += s.skipped;
            total.history.merge(s.history);
            total.over_budget += s.over_budget;
            total.memory_held += s.memory_held;
            total.message_timeouts += s.message_timeouts;
            total.inbound_over_budget += s.inbound_over_budget;
        }
        total.history.merge(self.shared.history.stats());
        total
    }
}
