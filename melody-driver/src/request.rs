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
use melody_core::{Admission, Keys, Refusal};

/// An upgrade request that passed melody's own checks (method, version, key, origin,
/// session cap), shown to the request hook. Owned: the hook may keep it across awaits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestInfo {
    /// The method (always `GET` for an upgrade).
    pub method: Method,
    /// The request target: path and query.
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The peer's address, if the transport knows it.
    pub remote_addr: Option<SocketAddr>,
    /// Our address, if the transport knows it.
    pub local_addr: Option<SocketAddr>,
}

impl RequestInfo {
    /// The first value of header `name`, if it is present and visible ASCII.
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
pub struct Verdict {
    pub(crate) decision: Decision,
}

impl Verdict {
    /// Admits the request: the client gets its 101 and the session connects.
    pub fn admit() -> Self {
        Verdict {
            decision: Decision::Admit(Box::default()),
        }
    }

    /// Refuses the request with `status` (a 4xx or 5xx; anything else is sent as 500)
    /// and `reason`, the one-line `text/plain` body.
    pub fn refuse(status: u16, reason: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Verdict {
            decision: Decision::Refuse(Refusal::new(status, reason)),
        }
    }

    /// Whether this verdict admits the request.
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
    pub fn key<T: Any + Send + Sync>(mut self, name: impl Into<String>, value: T) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.keys.set(name, value);
        }
        self
    }

    /// Sets the session's typed state of type `T`, as
    /// [`Session::insert_state`](crate::Session::insert_state) would.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.state.insert(value);
        }
        self
    }

    /// Subscribes the session to `topic` before its 101 is written: what is published
    /// to the topic from then on reaches it, after the 101.
    pub fn subscribe(mut self, topic: impl Into<String>) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.topics.push(topic.into());
        }
        self
    }

    /// This session's largest message (and frame), in bytes; a larger one gets close 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.admission.max_message_size = Some(bytes);
        }
        self
    }

    /// This session's outbox bound in messages.
    pub fn message_buffer_size(mut self, messages: usize) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.admission.message_buffer_size = Some(messages);
        }
        self
    }

    /// This session's outbox bound in bytes (`None`: unbounded in bytes).
    pub fn message_buffer_bytes(mut self, bytes: Option<usize>) -> Self {
        if let Some(admitted) = self.admitted() {
            admitted.admission.message_buffer_bytes = Some(bytes);
        }
        self
    }

    /// Adds a header to a refusal's response (e.g. `WWW-Authenticate: Bearer`). A name
    /// or value that is not valid HTTP is left out rather than sent malformed, and so
    /// are the framing headers (`Content-Length`, `Content-Type`, `Connection`,
    /// `Transfer-Encoding`), which melody writes itself.
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
