//! `Melody`: the handle applications hold — handlers, broadcast, topics, shutdown.

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use melody_core::{
    Accept, CloseCode, Config, ConfigError, ConnectionInfo, Delivery, HandshakeRejection, Hub,
    HubStats, Keys, Prepared, Request, SessionId,
};

use crate::backplane::{self, Backplane};
use crate::connection::Connection;
use crate::error::Error;
use crate::fanout::{self, Recipients};
use crate::filter::SessionRef;
use crate::request::{RequestHook, RequestInfo, Verdict, VerdictFuture};
use crate::runtime::{Runtime, Transport};
use crate::session::Session;
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
    pub fn new() -> Self {
        match Self::with_config(Config::default()) {
            Ok(m) => m,
            // The default config is valid; `validate` is tested on it.
            Err(_) => unreachable_default(),
        }
    }

    /// An instance with `config`, refused if the config is invalid.
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
    pub fn with_runtime(rt: R, config: Config) -> Result<Self, ConfigError> {
        let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_shards(rt, config, shards)
    }

    /// An instance with `shards` hubs: sessions spread over them, and a broadcast
    /// locks one shard at a time.
    pub fn with_shards(rt: R, config: Config, shards: usize) -> Result<Self, ConfigError> {
        Ok(Melody {
            shared: Arc::new(Shared::new(rt, config, shards)?),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.shared.rt
    }

    handler!(/// Called when a session has connected (olahol/melody's `HandleConnect`).
        on_connect, connect, ());
    handler!(/// Called once when a session is over, last (olahol/melody's `HandleDisconnect`).
        on_disconnect, disconnect, ());
    handler!(/// Called for each text message (olahol/melody's `HandleMessage`).
        on_message, message, (&str));
    handler!(/// Called for each binary message (olahol/melody's `HandleMessageBinary`).
        on_message_binary, message_binary, (&[u8]));
    handler!(/// Called for each pong (olahol/melody's `HandlePong`).
        on_pong, pong, ());
    handler!(/// Called on errors: bad input, timeouts, transport failures, a panicking handler
        /// (olahol/melody's `HandleError`). Not called for a normal close.
        on_error, error, (&Error));
    handler!(/// Called with how many messages for the session its full outbox dropped since
        /// the last call (olahol/melody reports `ErrMessageBufferFull` to `HandleError`
        /// instead). The same drops are counted in the [`Delivery`] of the `write` or
        /// broadcast that made them and in [`Session::stats`].
        on_dropped, dropped, (u64));
    handler!(/// Called with the code and reason of the peer's close frame (olahol/melody's
        /// `HandleClose`).
        on_close, close, (u16, &str));
    handler!(/// Called when a text message has been fully written (olahol/melody's
        /// `HandleSentMessage`). Costs an event per message while set.
        on_sent, sent, (&str));
    handler!(/// Called when a binary message has been fully written (olahol/melody's
        /// `HandleSentMessageBinary`).
        on_sent_binary, sent_binary, (&[u8]));

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
    /// `accept`, [`Melody::connection`]); an upgrade an HTTP framework already answered
    /// (`handle_request_with_keys` and the like) decides its keys there instead.
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
    pub fn hook_panics(&self) -> u64 {
        self.shared.hook_panics.load(Ordering::Relaxed)
    }

    // ---- connections --------------------------------------------------------------

    /// The task serving one accepted connection, from its first byte (the HTTP upgrade)
    /// to its close. Spawn it; or use [`Melody::spawn_connection`].
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
    fn refuse_if_closed(&self, hub: &mut Hub<Slot>, id: SessionId, now: Instant) {
        if self.shared.is_closed() {
            hub.close(id, now, CloseCode::Away, "server closing");
        }
    }

    /// Spawns [`Melody::connection`] on the runtime. After `close`/`shutdown`, the
    /// transport is dropped instead.
    pub fn spawn_connection<T: Transport>(&self, transport: T, info: ConnectionInfo) {
        if self.is_closed() {
            return;
        }
        let task = self.connection(transport, info);
        self.shared.rt.spawn(Box::pin(task));
    }

    /// For HTTP integrations: checks an upgrade request (version, key, origin policy,
    /// session cap) before answering it. The caller sends 101 with the returned
    /// [`Accept`] values, or the rejection's status and reason.
    pub fn check_upgrade(&self, request: &Request) -> Result<Accept, HandshakeRejection> {
        let shard = &self.shared.shards[0];
        if self.is_closed() {
            shard.with(&self.shared.clock, Hub::count_rejection);
            return Err(HandshakeRejection {
                status: melody_core::http::StatusCode::SERVICE_UNAVAILABLE,
                reason: "server closing",
            });
        }
        shard.with(&self.shared.clock, |hub| hub.check_upgrade(request))
    }

    /// For HTTP integrations: the task serving a connection that the framework already
    /// upgraded (olahol/melody's `HandleRequestWithKeys`). `keys` are the session's
    /// initial keys; bytes read past the request, if any, must come first out of
    /// `transport`. After `close`/`shutdown` the session is closed with 1001 at once.
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
    pub fn attach_backplane<B: Backplane<R>>(&self, backplane: B) -> Result<(), B> {
        let (attached, link) = backplane::link(&self.shared, backplane.queue_capacity());
        if self.shared.backplane.set(attached).is_err() {
            return Err(backplane);
        }
        self.shared.rt.spawn(backplane.run(link));
        Ok(())
    }

    /// Whether a backplane is attached.
    pub fn has_backplane(&self) -> bool {
        self.shared.backplane.get().is_some()
    }

    // ---- broadcast ----------------------------------------------------------------

    fn fan(&self, msg: &Prepared, to: Recipients<'_, R>) -> Delivery {
        fanout::fan(&self.shared, msg, to)
    }

    /// Sends a text message to every session (olahol/melody's `Broadcast`).
    pub fn broadcast(&self, text: &str) -> Delivery {
        self.fan(&Prepared::text(text), Recipients::All)
    }

    /// Sends a binary message to every session (`BroadcastBinary`).
    pub fn broadcast_binary(&self, data: &[u8]) -> Delivery {
        self.fan(&Prepared::binary(data), Recipients::All)
    }

    /// Sends an encoded message to every session.
    pub fn broadcast_prepared(&self, msg: &Prepared) -> Delivery {
        self.fan(msg, Recipients::All)
    }

    /// Sends to every session but `except` (`BroadcastOthers`).
    pub fn broadcast_others(&self, text: &str, except: &Session<R>) -> Delivery {
        self.fan(&Prepared::text(text), Recipients::Others(except))
    }

    /// Binary twin of [`Melody::broadcast_others`] (`BroadcastBinaryOthers`).
    pub fn broadcast_binary_others(&self, data: &[u8], except: &Session<R>) -> Delivery {
        self.fan(&Prepared::binary(data), Recipients::Others(except))
    }

    /// Sends to the listed sessions (`BroadcastMultiple`).
    pub fn broadcast_multiple(&self, text: &str, sessions: &[Session<R>]) -> Delivery {
        self.fan(&Prepared::text(text), Recipients::List(sessions))
    }

    /// Binary twin of [`Melody::broadcast_multiple`].
    pub fn broadcast_binary_multiple(&self, data: &[u8], sessions: &[Session<R>]) -> Delivery {
        self.fan(&Prepared::binary(data), Recipients::List(sessions))
    }

    /// Sends to the sessions for which `keep` holds (`BroadcastFilter`). The filter runs
    /// under each shard's lock: read the [`SessionRef`], do not call melody from it.
    pub fn broadcast_filter(
        &self,
        text: &str,
        keep: impl Fn(&SessionRef<'_>) -> bool + Sync,
    ) -> Delivery {
        self.fan(&Prepared::text(text), Recipients::Filter(&keep))
    }

    /// Binary twin of [`Melody::broadcast_filter`] (`BroadcastBinaryFilter`).
    pub fn broadcast_binary_filter(
        &self,
        data: &[u8],
        keep: impl Fn(&SessionRef<'_>) -> bool + Sync,
    ) -> Delivery {
        self.fan(&Prepared::binary(data), Recipients::Filter(&keep))
    }

    /// Sends a text message to the subscribers of `topic`.
    pub fn publish(&self, topic: &str, text: &str) -> Delivery {
        self.fan(&Prepared::text(text), Recipients::Topic(topic))
    }

    /// Sends a binary message to the subscribers of `topic`.
    pub fn publish_binary(&self, topic: &str, data: &[u8]) -> Delivery {
        self.fan(&Prepared::binary(data), Recipients::Topic(topic))
    }

    /// Sends an encoded message to the subscribers of `topic`.
    pub fn publish_prepared(&self, topic: &str, msg: &Prepared) -> Delivery {
        self.fan(msg, Recipients::Topic(topic))
    }

    /// Sends to the subscribers of `topic` but `except` (typically the publisher).
    pub fn publish_others(&self, topic: &str, text: &str, except: &Session<R>) -> Delivery {
        self.fan(
            &Prepared::text(text),
            Recipients::TopicOthers(topic, except),
        )
    }

    /// Binary twin of [`Melody::publish_others`].
    pub fn publish_binary_others(&self, topic: &str, data: &[u8], except: &Session<R>) -> Delivery {
        self.fan(
            &Prepared::binary(data),
            Recipients::TopicOthers(topic, except),
        )
    }

    /// How many sessions are subscribed to `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        fanout::subscriber_count(&self.shared, topic)
    }

    // ---- inspection and closing --------------------------------------------------------

    /// The open sessions (olahol/melody's `Sessions`).
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
    pub fn len(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connection tasks still running, from the upgrade's first byte until the
    /// transport is closed and the slot released: handshaking and closing connections
    /// count, unlike in [`Melody::len`]. With no client left it returns to 0; a count
    /// that stays above is a leaked task. (The clock task, one per instance, is apart.)
    pub fn connection_tasks(&self) -> usize {
        self.shared.lifecycle.connections()
    }

    /// Timer-wheel entries of every shard, stale ones included (see
    /// [`Hub::timer_entries`](melody_core::Hub::timer_entries)): with no connection left, it
    /// returns to 0 once the longest configured period has passed.
    pub fn timer_entries(&self) -> usize {
        self.shared
            .shards
            .iter()
            .map(|shard| shard.read(|hub| hub.timer_entries()))
            .sum()
    }

    /// Whether `close` or `shutdown` was called (olahol/melody's `IsClosed`).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Resolves once `close` or `shutdown` is called: for accept loops to stop.
    pub fn closed(&self) -> Closed {
        Closed {
            lifecycle: self.shared.lifecycle.clone(),
        }
    }

    /// Stops serving and closes every session with 1001 "going away" after its queued
    /// messages (olahol/melody's `Close`). Returns how many sessions were closed.
    pub fn close(&self) -> usize {
        self.close_with(CloseCode::Away, "server closing")
    }

    /// Stops serving and closes every session with `code` and `reason`
    /// (olahol/melody's `CloseWithMsg`). Returns how many sessions started closing:
    /// sessions already closing after an earlier call are not counted again.
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
    pub fn stats(&self) -> HubStats {
        let mut total = HubStats::default();
        for shard in self.shared.shards.iter() {
            let s = shard.read(|hub| hub.stats());
            total.opened += s.opened;
            total.connected += s.connected;
            total.rejected += s.rejected;
            total.finished += s.finished;
            total.dropped += s.dropped;
        }
        total
    }
}
