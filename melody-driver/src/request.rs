//! The request hook: what it is shown of an upgrade request ([`RequestInfo`]) and what
//! it answers ([`Verdict`]), olahol/melody's `HandleRequestWithKeys` made asynchronous
//! (authentication, topic resolution, per-session limits).

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use melody_core::http::header::{HeaderName, HeaderValue};
use melody_core::http::{Extensions, HeaderMap, Method, StatusCode, Uri};
use melody_core::{Admission, Keys, Refusal, SessionKind};

/// A request that passed melody's own checks (for an upgrade: method, version, key,
/// origin, session cap; for an event stream: origin, session cap), shown to the
/// request hook. Owned: the hook may keep it across awaits.
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
///     assert_eq!(request.uri.path(), "/chat");
///     assert_eq!(request.kind, SessionKind::WebSocket);
///     match request.header("sec-websocket-version") {
///         Some("13") => Verdict::admit(),
///         _ => Verdict::refuse(400, "unexpected version"),
///     }
/// });
/// // What an HTTP integration does with a request it received:
/// assert!(block_on(melody.judge(&request, ConnectionInfo::default())).is_admit());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestInfo {
    /// The method (always `GET`).
    pub method: Method,
    /// The request target: path and query.
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The peer's address, if the transport knows it.
    pub remote_addr: Option<SocketAddr>,
    /// Our address, if the transport knows it.
    pub local_addr: Option<SocketAddr>,
    /// What the session will be: a WebSocket upgrade or an event stream.
    pub kind: SessionKind,
}

impl RequestInfo {
    /// The first value of header `name`, if it is present and visible ASCII.
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
    ///     match request.header("authorization") {
    ///         Some(token) if token.starts_with("Bearer ") => Verdict::admit(),
    ///         _ => Verdict::refuse(401, "a bearer token is required"),
    ///     }
    /// });
    /// let verdict = block_on(melody.judge(&request, ConnectionInfo::default()));
    /// assert_eq!(verdict.refusal().map(|r| r.status.as_u16()), Some(401));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a session admitted by the hook starts with.
#[derive(Default)]
pub(crate) struct Admitted {
    pub(crate) keys: Keys,
    pub(crate) state: Extensions,
    pub(crate) topics: Vec<String>,
    pub(crate) admission: Admission,
    /// Where the session's history topics resume from (see `Verdict::resume_from`).
    pub(crate) resume_from: Option<String>,
}

pub(crate) enum Decision {
    Admit(Box<Admitted>),
    Refuse(Refusal),
}

/// The request hook's answer: [`Verdict::admit`] (with keys, state, topics and limits
/// for the session) or [`Verdict::refuse`] (with an HTTP status, reason and headers).
///
/// The builder methods of one kind do nothing on the other: `.key(..)` on a refusal,
/// `.header(..)` on an admission.
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
/// melody.on_request(|request: RequestInfo| async move {
///     let Some(user) = request.uri.query().and_then(|q| q.strip_prefix("user=")) else {
///         return Verdict::refuse(401, "who are you?").header("www-authenticate", "Bearer");
///     };
///     Verdict::admit()
///         .key("user", user.to_owned())
///         .subscribe(format!("inbox/{user}"))
///         .message_buffer_size(64)
/// });
/// let request = http::Request::get("/chat?user=ada").body(())?;
/// let verdict = block_on(melody.judge(&request, ConnectionInfo::default()));
/// assert!(verdict.is_admit());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Verdict {
    pub(crate) decision: Decision,
}

impl Verdict {
    /// Admits the request: the client gets its 101 (or, for an event stream, its 200)
    /// and the session connects.
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
    /// assert!(Verdict::admit().is_admit());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn admit() -> Self {
        Verdict {
            decision: Decision::Admit(Box::default()),
        }
    }

    /// Refuses the request with `status` (a 4xx or 5xx; anything else is sent as 500)
    /// and `reason`, the one-line `text/plain` body.
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
    /// melody.on_request(|_request| async { Verdict::refuse(503, "maintenance, back soon") });
    ///
    /// let refusal = Verdict::refuse(200, "not an error").refusal().cloned().unwrap();
    /// assert_eq!(refusal.status_sent().as_u16(), 500, "a refusal is always an error");
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn refuse(status: u16, reason: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Verdict {
            decision: Decision::Refuse(Refusal::new(status, reason)),
        }
    }

    /// The refusal of a refusing verdict: its status, reason and headers, for an HTTP
    /// framework to send ([`Refusal::extra_headers`] leaves out the framing ones).
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// let verdict = Verdict::refuse(403, "forbidden").header("x-reason", "banned");
    /// let refusal = verdict.refusal().expect("a refusal");
    /// assert_eq!(refusal.status.as_u16(), 403);
    /// assert_eq!(refusal.reason, "forbidden");
    /// assert_eq!(refusal.extra_headers().count(), 1);
    /// assert!(Verdict::admit().refusal().is_none());
    /// ```
    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.decision {
            Decision::Refuse(refusal) => Some(refusal),
            Decision::Admit(_) => None,
        }
    }

    /// Whether this verdict admits the request.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// assert!(Verdict::admit().is_admit());
    /// assert!(!Verdict::refuse(401, "no").is_admit());
    /// ```
    pub fn is_admit(&self) -> bool {
        matches!(self.decision, Decision::Admit(_))
    }

    fn admitted(&mut self) -> Option<&mut Admitted> {
        match &mut self.decision {
            Decision::Admit(admitted) => Some(admitted),
            Decision::Refuse(_) => None,
        }
    }

    /// Sets a key of the session, as [`Session::set`](crate::Session::set) would, before
    /// `on_connect` runs (olahol/melody's keys of `HandleRequestWithKeys`).
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// let verdict = Verdict::admit().key("user", "ada".to_owned()).key("level", 3u8);
    /// assert!(format!("{verdict:?}").contains("keys: 2"));
    /// ```
    pub fn key<T: Any + Send + Sync>(mut self, name: impl Into<String>, value: T) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.keys.set(name, value);
        }
        self
    }

    /// Adds `keys` to the session's keys (a name the verdict already set takes the
    /// value from `keys`): for an HTTP integration that has keys of its own for the
    /// session (olahol/melody's `HandleRequestWithKeys`) and still applies the hook's
    /// verdict.
    ///
    /// ```
    /// use melody_driver::api::{Keys, Verdict};
    ///
    /// // Keys an HTTP framework gathered itself (say, from its session cookie).
    /// let mut from_cookie = Keys::new();
    /// from_cookie.set("user", "ada".to_owned());
    /// let verdict = Verdict::admit().key("plan", "free").keys(from_cookie);
    /// assert!(format!("{verdict:?}").contains("keys: 2"));
    /// ```
    pub fn keys(mut self, keys: Keys) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.keys.extend(keys);
        }
        self
    }

    /// Sets the session's typed state of type `T`, as
    /// [`Session::insert_state`](crate::Session::insert_state) would.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// #[derive(Clone)]
    /// struct Account { id: u64 }
    /// let verdict = Verdict::admit().state(Account { id: 7 });
    /// assert!(verdict.is_admit());
    /// ```
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.state.insert(value);
        }
        self
    }

    /// Subscribes the session to `topic` before its 101 is written: what is published
    /// to the topic from then on reaches it, after the 101.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// let verdict = Verdict::admit().subscribe("news").subscribe("inbox/ada");
    /// assert!(format!("{verdict:?}").contains(r#"topics: ["news", "inbox/ada"]"#));
    /// ```
    pub fn subscribe(mut self, topic: impl Into<String>) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.topics.push(topic.into());
        }
        self
    }

    /// This session's largest message (and frame), in bytes; a larger one gets close 1009.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// // Trusted uploaders may send larger messages than the config allows others.
    /// let verdict = Verdict::admit().max_message_size(16 << 20);
    /// assert!(format!("{verdict:?}").contains("max_message_size: Some(16777216)"));
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.admission.max_message_size = Some(bytes);
        }
        self
    }

    /// This session's outbox bound in messages.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// let verdict = Verdict::admit().message_buffer_size(1024);
    /// assert!(format!("{verdict:?}").contains("message_buffer_size: Some(1024)"));
    /// ```
    pub fn message_buffer_size(mut self, messages: usize) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.admission.message_buffer_size = Some(messages);
        }
        self
    }

    /// This session's outbox bound in bytes (`None`: unbounded in bytes).
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// let bounded = Verdict::admit().message_buffer_bytes(Some(1 << 20));
    /// let unbounded = Verdict::admit().message_buffer_bytes(None);
    /// assert!(format!("{bounded:?}").contains("message_buffer_bytes: Some(Some(1048576))"));
    /// assert!(format!("{unbounded:?}").contains("message_buffer_bytes: Some(None)"));
    /// ```
    pub fn message_buffer_bytes(mut self, bytes: Option<usize>) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.admission.message_buffer_bytes = Some(bytes);
        }
        self
    }

    /// Sends this WebSocket session's text messages as binary frames (the
    /// precision-soft integration's `BinaryWrites`); binary messages stay binary.
    /// Event-stream sessions, which carry text only, ignore it.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// // A client that asked for binary frames, say with `?binary=1`.
    /// let verdict = Verdict::admit().binary_writes(true);
    /// assert!(format!("{verdict:?}").contains("binary_writes: Some(true)"));
    /// ```
    pub fn binary_writes(mut self, on: bool) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.admission.binary_writes = Some(on);
        }
        self
    }

    /// Resumes the session's history topics (those subscribed with
    /// [`Verdict::subscribe`] that keep a history) from `position`, the opaque string
    /// a client got with its last message (e.g. from a `last_event_id` query
    /// parameter): every retained message after it is queued behind the 101, then
    /// live ones (see [`Session::subscribe_from`](crate::Session::subscribe_from)). An
    /// event stream that sent `Last-Event-ID` resumes from it without this. With a
    /// backplane that keeps history, the resume first waits (within the handshake
    /// timeout) until this instance's copy holds the shared log
    /// ([`Melody::read_back_history`](crate::Melody::read_back_history)), so it
    /// recovers as well on an instance that never listened to the topic.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// let verdict = Verdict::admit().subscribe("device/7").resume_from("1f.42");
    /// assert!(format!("{verdict:?}").contains(r#"resume_from: Some("1f.42")"#));
    /// ```
    pub fn resume_from(mut self, position: impl Into<String>) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.resume_from = Some(position.into());
        }
        self
    }

    /// Lets this WebSocket session see history positions: each message of a history
    /// topic arrives as its position, a line feed, then the data (see
    /// [`melody_core::history`]). Sessions that do not ask get the plain data.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// let verdict = Verdict::admit().positions(true);
    /// assert!(format!("{verdict:?}").contains("positions: Some(true)"));
    /// ```
    pub fn positions(mut self, on: bool) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.admission.positions = Some(on);
        }
        self
    }

    /// Adds a header to a refusal's response (e.g. `WWW-Authenticate: Bearer`). A name
    /// or value that is not valid HTTP is left out rather than sent malformed, and so
    /// are the framing headers (`Content-Length`, `Content-Type`, `Connection`,
    /// `Transfer-Encoding`), which melody writes itself.
    ///
    /// ```
    /// use melody_driver::api::Verdict;
    ///
    /// let verdict = Verdict::refuse(401, "a token is required")
    ///     .header("www-authenticate", r#"Bearer realm="chat""#)
    ///     .header("content-length", "0"); // framing headers are melody's: left out
    /// let refusal = verdict.refusal().expect("a refusal");
    /// let names: Vec<_> = refusal.extra_headers().map(|(name, _)| name.as_str()).collect();
    /// assert_eq!(names, ["www-authenticate"]);
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Decision::Refuse(refusal) = &mut self.decision {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                refusal.headers.append(name, value);
            }
        }
        self
    }
}

impl std::fmt::Debug for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.decision {
            Decision::Admit(admitted) => f
                .debug_struct("Verdict::Admit")
                .field("keys", &admitted.keys.len())
                .field("topics", &admitted.topics)
                .field("admission", &admitted.admission)
                .field("resume_from", &admitted.resume_from)
                .finish(),
            Decision::Refuse(refusal) => f
                .debug_struct("Verdict::Refuse")
                .field("status", &refusal.status)
                .field("reason", &refusal.reason)
                .finish(),
        }
    }
}

/// The future a request hook returns, boxed.
pub(crate) type VerdictFuture = Pin<Box<dyn Future<Output = Verdict> + Send + 'static>>;

/// The request hook, type-erased.
pub(crate) type RequestHook = Arc<dyn Fn(RequestInfo) -> VerdictFuture + Send + Sync>;
