//! What a broadcast filter sees of each session.

use std::any::Any;
use std::net::SocketAddr;

use crate::runtime::Runtime;
use crate::session::Session;
use crate::slot::{SessionKey, Slot};
use melody_core::{Keys, Request, SessionView};

/// A read-only look at a session during a filtered broadcast. It reads the session
/// under its shard's lock, so it offers plain borrows instead of `Session`'s methods
/// (which lock).
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
/// session.set("admin", true);
/// session.subscribe("ops");
/// let delivery = melody.broadcast_filter("deploy at noon", |s| {
///     s.get::<bool>("admin") == Some(&true) && s.topics().any(|t| t == "ops")
/// });
/// assert_eq!(delivery.queued, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SessionRef<'a> {
    pub(crate) view: &'a SessionView<'a, Slot>,
    pub(crate) shard: u32,
}

impl<'a> SessionRef<'a> {
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
    /// let me = session.key();
    /// assert_eq!(melody.broadcast_filter("just you", |s| s.key() == me).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn key(&self) -> SessionKey {
        SessionKey {
            shard: self.shard,
            id: self.view.id(),
        }
    }

    /// Whether this is `session`.
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
    /// // Everyone but `session`, with a condition on the others.
    /// let delivery = melody.broadcast_filter("hi", |s| !s.is(&session) && s.keys().contains("name"));
    /// assert_eq!(delivery.queued, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is<R: Runtime>(&self, session: &Session<R>) -> bool {
        self.key() == session.key()
    }

    /// The value under `key`, if there is one of type `T`.
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
    /// assert_eq!(melody.broadcast_filter("room 7", |s| s.get::<u32>("room") == Some(&7)).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get<T: Any>(&self, key: &str) -> Option<&'a T> {
        self.view.user().keys.get::<T>(key)
    }

    /// The session's state of type `T` (see [`Session::insert_state`]).
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
    /// struct Plan { paid: bool }
    /// session.insert_state(Plan { paid: true });
    /// let delivery = melody.broadcast_filter("premium news", |s| s.state::<Plan>().is_some_and(|p| p.paid));
    /// assert_eq!(delivery.queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&'a T> {
        self.view.user().state.get::<T>()
    }

    /// All of the session's keys.
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
    /// assert_eq!(melody.broadcast_filter("named", |s| !s.keys().is_empty()).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keys(&self) -> &'a Keys {
        &self.view.user().keys
    }

    /// The upgrade request.
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
    /// let on_chat = |s: &SessionRef<'_>| s.request().is_some_and(|r| r.uri().path() == "/chat");
    /// assert_eq!(melody.broadcast_filter("chat only", on_chat).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request(&self) -> Option<&'a Request> {
        self.view
            .user()
            .info
            .as_ref()
            .map(|info| info.request.request())
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
    /// let local = |s: &SessionRef<'_>| s.remote_addr().is_some_and(|a| a.ip().is_loopback());
    /// // The in-memory session has no address, so it is left out.
    /// assert_eq!(melody.broadcast_filter("local only", local).queued, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        // A connected session's addresses live in its handles' `Info`.
        match &self.view.user().info {
            Some(info) => info.remote_addr(),
            None => self.view.remote_addr(),
        }
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
    /// session.subscribe("sport");
    /// assert_eq!(melody.broadcast_filter("sport", |s| s.topics().any(|t| t == "sport")).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topics(&self) -> impl Iterator<Item = &'a str> {
        self.view.topics()
    }
}
