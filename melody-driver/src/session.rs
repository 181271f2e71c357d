//! The handle to one session that handlers and applications hold.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use melody_core::sse::Event;
use melody_core::{
    CloseCode, Delivery, Hub, Keys, Prepared, Publication, Request, SessionId, SessionKind,
    SessionState, SessionStats, SMALL_WRITE_AT_MOST,
};

use crate::runtime::Runtime;
use crate::shared::Shared;
use crate::slot::{Info, SessionKey, Slot};
use crate::turn_clock;

/// A connected session, WebSocket or event stream (olahol/melody's `*Session`). Cheap to clone; every
/// clone names the same session. Methods that change the session lock its shard
/// briefly; none blocks on the network.
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
/// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
/// # struct Quiet; // a peer that stays connected and says nothing
/// # impl Transport for Quiet {
/// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
/// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
/// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
/// #     }
/// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
/// # }
/// # let request = http::Request::get("/chat")
/// #     .header("host", "localhost")
/// #     .header("connection", "Upgrade")
/// #     .header("upgrade", "websocket")
/// #     .header("sec-websocket-version", "13")
/// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
/// #     .body(())?;
/// # let accept = melody.check_upgrade(&request)?;
/// # let connected = Arc::new(Mutex::new(None));
/// # let slot = connected.clone();
/// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
/// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
/// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
/// # let session = connected.lock().unwrap().take().expect("connected");
/// // `session` is what a handler receives, or one of `melody.sessions()`.
/// session.set("name", "ada".to_owned());
/// session.subscribe("lobby");
/// assert_eq!(session.write("hello, ada").queued, 1);
/// assert_eq!(melody.publish("lobby", "ada joined").queued, 1);
/// assert_eq!(melody.sessions(), vec![session.clone()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session<R: Runtime> {
    pub(crate) shared: Arc<Shared<R>>,
    pub(crate) info: Arc<Info>,
}

impl<R: Runtime> Clone for Session<R> {
    fn clone(&self) -> Self {
        Session {
            shared: self.shared.clone(),
            info: self.info.clone(),
        }
    }
}

impl<R: Runtime> PartialEq for Session<R> {
    fn eq(&self, other: &Self) -> bool {
        self.info.key == other.info.key && Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<R: Runtime> Eq for Session<R> {}

impl<R: Runtime> Hash for Session<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.info.key.hash(state);
    }
}

impl<R: Runtime> fmt::Debug for Session<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("key", &self.info.key)
            .field("uri", self.info.request.request().uri())
            .field("remote_addr", &self.info.remote_addr())
            .finish()
    }
}

impl<R: Runtime> Session<R> {
    /// The time a write is queued at: the running turn's, for a handler of this
    /// instance (see `turn_clock`), else the clock's.
    fn now(&self) -> std::time::Instant {
        let instance = Arc::as_ptr(&self.shared) as *const () as usize;
        turn_clock::current(instance).unwrap_or_else(|| self.shared.rt.now())
    }

    fn with<T>(&self, op: impl FnOnce(&mut Hub<Slot>, SessionId) -> T) -> T {
        let shared = &self.shared;
        let id = self.info.key.id;
        shared.shards[self.info.key.shard as usize].with(&shared.clock, |hub| op(hub, id))
    }

    /// The session's identity.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// use std::collections::HashMap;
    ///
    /// let mut names = HashMap::new();
    /// names.insert(session.key(), "ada");
    /// assert_eq!(names.get(&session.key()), Some(&"ada"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> SessionKey {
        self.info.key
    }

    /// Queues a text message (olahol/melody's `Write`). The [`Delivery`] says whether it
    /// was queued, dropped by a full outbox, or refused because the session is closing.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// let delivery = session.write("hello");
    /// assert_eq!(delivery.queued, 1);
    /// session.close();
    /// assert_eq!(session.write("too late").closed, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self, text: &str) -> Delivery {
        if text.len() > SMALL_WRITE_AT_MOST {
            return self.write_owned(Prepared::text(text));
        }
        let now = self.now();
        self.with(|hub, id| hub.send_text(id, now, text))
    }

    /// Queues a binary message (olahol/melody's `WriteBinary`).
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// assert_eq!(session.write_binary(&[0xca, 0xfe]).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_binary(&self, data: &[u8]) -> Delivery {
        if data.len() > SMALL_WRITE_AT_MOST {
            return self.write_owned(Prepared::binary(data));
        }
        let now = self.now();
        self.with(|hub, id| hub.send_binary(id, now, data))
    }

    /// Queues a message made for this write alone, encoded before the shard's lock is
    /// taken: the hub takes it as it is, never shared (a shared frame takes an
    /// allocation and a reference count on its first clone). A small one is framed in
    /// the outbox instead (`Hub::send_text`), with no frame of its own at all.
    fn write_owned(&self, msg: Prepared) -> Delivery {
        let now = self.now();
        let msg = Publication::from(msg);
        self.with(|hub, id| hub.send_publication(id, now, &msg))
    }

    /// Queues an already encoded message.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// let greeting = Prepared::text("welcome"); // encoded once, written to many
    /// assert_eq!(session.write_prepared(&greeting).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_prepared(&self, msg: &Prepared) -> Delivery {
        let now = self.now();
        self.with(|hub, id| hub.send(id, now, msg))
    }

    /// Queues a server-sent event: an event-stream session gets it whole, a WebSocket
    /// session its data as one text frame (see [`Melody::publish_event`](crate::Melody::publish_event)).
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// let event = Event::new("21.5").name("temperature")?;
    /// // A WebSocket session gets the data, "21.5", as a text message.
    /// assert_eq!(session.write_event(event).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_event(&self, event: Event) -> Delivery {
        let now = self.now();
        let msg = Publication::event(event);
        self.with(|hub, id| hub.send_publication(id, now, &msg))
    }

    /// Whether this session is a WebSocket or an event stream. An event stream never
    /// receives messages (`on_message` never runs for it) and takes text only: a
    /// binary message written or broadcast to it is skipped and counted in
    /// [`Delivery::skipped`].
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// if session.kind() == SessionKind::WebSocket {
    ///     session.write_binary(&[1, 2, 3]);
    /// }
    /// assert_eq!(session.kind(), SessionKind::WebSocket);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kind(&self) -> SessionKind {
        self.info.kind
    }

    /// Closes with 1000 (normal closure) after the queued messages.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// assert!(session.close());
    /// assert!(!session.close(), "already closing");
    /// assert!(session.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) -> bool {
        self.close_with(CloseCode::Normal, "")
    }

    /// Closes with `code` and `reason` after the queued messages (olahol/melody's
    /// `CloseWithMsg`). `false` if it was already closing or closed.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// assert!(session.close_with(CloseCode::Policy, "no spamming"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close_with(&self, code: impl Into<CloseCode>, reason: &str) -> bool {
        let now = self.now();
        let code = code.into();
        self.with(|hub, id| hub.close(id, now, code, reason))
    }

    /// Whether the session is closing or closed.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// assert!(!session.is_closed());
    /// session.close();
    /// assert!(session.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .read(|hub| !matches!(hub.state(id), Some(SessionState::Open)))
    }

    /// Stores `value` under `key` (olahol/melody's `Set`).
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.set("room", 7u32);
    /// assert_eq!(session.get::<u32>("room"), Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set<T: Any + Send + Sync>(&self, key: impl Into<String>, value: T) {
        let key = key.into();
        self.with_keys(move |keys| keys.set(key, value));
    }

    /// A clone of the value under `key`, if there is one of type `T` (olahol/melody's
    /// `Get`, typed).
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.set("name", "ada".to_owned());
    /// assert_eq!(session.get::<String>("name").as_deref(), Some("ada"));
    /// assert_eq!(session.get::<u32>("name"), None, "the type must match");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        self.with_keys(|keys| keys.get::<T>(key).cloned())
    }

    /// A clone of the value under `key` (olahol/melody's `MustGet`).
    ///
    /// # Panics
    ///
    /// If there is no value of type `T` under `key`; the message names the key and the
    /// type. Use [`Session::get`] where the value may be missing.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.set("room", 7u32);
    /// let room: u32 = session.must_get("room");
    /// assert_eq!(room, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn must_get<T: Any + Clone>(&self, key: &str) -> T {
        match self.get::<T>(key) {
            Some(value) => value,
            None => missing_key::<T>(key),
        }
    }

    /// Removes the value under `key` (olahol/melody's `UnSet`); whether there was one.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.set("token", "t0p-secret".to_owned());
    /// assert!(session.unset("token"));
    /// assert!(!session.unset("token"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unset(&self, key: &str) -> bool {
        self.with_keys(|keys| keys.unset(key).is_some())
    }

    /// Stores `value` as the session's state of type `T`, one value per type (like
    /// `http::Extensions`), returning the one it replaces. Typed state cannot be
    /// misread: the type is the key.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// #[derive(Clone)]
    /// struct User { name: String }
    /// session.insert_state(User { name: "ada".into() });
    /// assert_eq!(session.state::<User>().map(|u| u.name), Some("ada".into()));
    /// assert_eq!(session.with_state(|u: Option<&User>| u.map(|u| u.name.len())), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_state<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.with_slot(|slot| slot.state.insert(value)).flatten()
    }

    /// A clone of the session's state of type `T`, if it has one.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// #[derive(Clone, Debug, PartialEq)]
    /// struct Score(u32);
    /// assert_eq!(session.state::<Score>(), None);
    /// session.insert_state(Score(10));
    /// assert_eq!(session.state::<Score>(), Some(Score(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.with_slot(|slot| slot.state.get::<T>().cloned())
            .flatten()
    }

    /// Runs `op` on a borrow of the session's state of type `T` (no clone), under its
    /// shard's lock: keep it short, and do not call other melody methods from inside it.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// #[derive(Clone)]
    /// struct History(Vec<String>);
    /// session.insert_state(History(vec!["hi".into(), "bye".into()]));
    /// let lines = session.with_state(|h: Option<&History>| h.map_or(0, |h| h.0.len()));
    /// assert_eq!(lines, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_state<T: Send + Sync + 'static, X>(&self, op: impl FnOnce(Option<&T>) -> X) -> X {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .read(|hub| op(hub.user(id).and_then(|slot| slot.state.get::<T>())))
    }

    /// Removes the session's state of type `T`, returning it.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.insert_state(42u64);
    /// assert_eq!(session.remove_state::<u64>(), Some(42));
    /// assert_eq!(session.state::<u64>(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.with_slot(|slot| slot.state.remove::<T>()).flatten()
    }

    /// Runs `op` on the session's slot under its shard's lock; `None` once released.
    fn with_slot<X>(&self, op: impl FnOnce(&mut Slot) -> X) -> Option<X> {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .with(&self.shared.clock, |hub| hub.user_mut(id).map(op))
    }

    /// Runs `op` on the session's keys, under its shard's lock: keep it short, and do
    /// not call other melody methods from inside it.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.set("visits", 1u32);
    /// // Read and update under one lock.
    /// let visits = session.with_keys(|keys| {
    ///     let visits = keys.get_mut::<u32>("visits").expect("set above");
    ///     *visits += 1;
    ///     *visits
    /// });
    /// assert_eq!(visits, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_keys<T>(&self, op: impl FnOnce(&mut Keys) -> T) -> T {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize].with(&self.shared.clock, |hub| {
            match hub.user_mut(id) {
                Some(slot) => op(&mut slot.keys),
                // Released: a scratch map keeps the call total.
                None => op(&mut Keys::new()),
            }
        })
    }

    /// The upgrade request: URI, headers (olahol/melody's `Request`), without the fields
    /// its handshake consumed (`Connection`, `Upgrade`, `Sec-WebSocket-Key`,
    /// `Sec-WebSocket-Version`, `Sec-WebSocket-Extensions`: see
    /// [`RequestHead`](melody_core::RequestHead)).
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// assert_eq!(session.request().uri().path(), "/chat");
    /// let host = session.request().headers().get("host").and_then(|h| h.to_str().ok());
    /// assert_eq!(host, Some("localhost"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request(&self) -> &Request {
        self.info.request.request()
    }

    /// The peer's address.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// // `None` when the transport does not know it, as for this in-memory one.
    /// let peer = session.remote_addr().map_or("unknown".to_owned(), |a| a.to_string());
    /// assert_eq!(peer, "unknown");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.info.remote_addr()
    }

    /// Our address.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// assert_eq!(session.local_addr(), None, "an in-memory transport has no address");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.info.local_addr()
    }

    /// How the session compresses what it sends: the configured
    /// [`Compression`](melody_core::Compression) when the client agreed to
    /// permessage-deflate, `Off` otherwise (and for event streams).
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
    /// # let melody = Melody::with_runtime(Rt, Config::default().compression(Compression::Shared))?;
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// // This client offered no permessage-deflate.
    /// assert_eq!(session.compression(), Compression::Off);
    /// assert_eq!(session.deflate(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compression(&self) -> melody_core::Compression {
        self.info.compression
    }

    /// The permessage-deflate parameters the session agreed to, if any (see
    /// [`Session::compression`]).
    pub fn deflate(&self) -> Option<melody_core::DeflateParams> {
        self.info.deflate
    }

    /// The subprotocol agreed in the handshake.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// // The client offered no subprotocol (see `Config::subprotocols`).
    /// assert_eq!(session.protocol(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn protocol(&self) -> Option<&str> {
        self.info.protocol.as_deref()
    }

    /// Subscribes to a topic; `false` if already subscribed or closed.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// assert!(session.subscribe("news"));
    /// assert!(!session.subscribe("news"), "already subscribed");
    /// assert_eq!(melody.publish("news", "extra!").queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, topic: &str) -> bool {
        if self.shared.history.keeps(topic) {
            // An event stream resumes from its `Last-Event-ID` (see `subscribe_from`).
            return self.subscribe_from(topic, None).subscribed;
        }
        let added = self.with(|hub, id| hub.subscribe(id, topic));
        if added {
            if let Some(backplane) = self.shared.backplane.get() {
                backplane.note_subscribed(topic);
            }
        }
        added
    }

    /// Unsubscribes from a topic; `false` if not subscribed.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.subscribe("news");
    /// assert!(session.unsubscribe("news"));
    /// assert_eq!(melody.subscriber_count("news"), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unsubscribe(&self, topic: &str) -> bool {
        self.with(|hub, id| hub.unsubscribe(id, topic))
    }

    /// The topics the session is subscribed to.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.subscribe("news");
    /// session.subscribe("weather");
    /// let mut topics = session.topics();
    /// topics.sort();
    /// assert_eq!(topics, ["news", "weather"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topics(&self) -> Vec<String> {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .read(|hub| hub.topics(id).map(str::to_owned).collect())
    }

    /// The session's counters (messages received, sent, dropped, queued). Once the
    /// session is over, its last counters.
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
    /// # use std::{future::Future, io, sync::{Arc, Mutex}, task::{Context, Poll}};
    /// # struct Quiet; // a peer that stays connected and says nothing
    /// # impl Transport for Quiet {
    /// #     fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> { Poll::Pending }
    /// #     fn poll_write_vectored(&mut self, _: &mut Context<'_>, b: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
    /// #         Poll::Ready(Ok(b.iter().map(|b| b.len()).sum()))
    /// #     }
    /// #     fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> { Poll::Ready(Ok(())) }
    /// # }
    /// # let request = http::Request::get("/chat")
    /// #     .header("host", "localhost")
    /// #     .header("connection", "Upgrade")
    /// #     .header("upgrade", "websocket")
    /// #     .header("sec-websocket-version", "13")
    /// #     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    /// #     .body(())?;
    /// # let accept = melody.check_upgrade(&request)?;
    /// # let connected = Arc::new(Mutex::new(None));
    /// # let slot = connected.clone();
    /// # melody.on_connect(move |s| *slot.lock().unwrap() = Some(s.clone()));
    /// # let mut task = Box::pin(melody.upgraded_connection(Quiet, request, accept, Keys::new(), ConnectionInfo::default()));
    /// # let _ = task.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop()));
    /// # let session = connected.lock().unwrap().take().expect("connected");
    /// session.write("one");
    /// session.write("two");
    /// let stats = session.stats();
    /// assert_eq!(stats.dropped, 0);
    /// assert_eq!(stats.received, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> SessionStats {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .read(|hub| hub.session_stats(id))
            .or_else(|| self.info.last_stats.get().map(|stats| **stats))
            .unwrap_or_default()
    }
}

#[cold]
#[track_caller]
fn missing_key<T>(key: &str) -> ! {
    panic!(
        "Session::must_get: no value of type {} under key {key:?}",
        std::any::type_name::<T>()
    )
}
