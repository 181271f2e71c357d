//! The application's answer to an upgrade request held for a verdict (see
//! [`Hub::set_request_verdicts`](crate::Hub::set_request_verdicts)): admit it, with
//! per-session overrides, or refuse it with any HTTP error.

use tungstenite::http::header::{HeaderName, HeaderValue};
use tungstenite::http::{HeaderMap, StatusCode};

/// Admits a request held for a verdict: its 101 is written and the session opens.
/// Every field left `None` keeps the hub's [`Config`](crate::Config) value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Admission {
    /// This session's largest message and frame, in bytes (the config's
    /// `max_message_size` otherwise). A larger message gets close 1009.
    pub max_message_size: Option<usize>,
    /// This session's outbox bound in messages (the config's `message_buffer_size`
    /// otherwise).
    pub message_buffer_size: Option<usize>,
    /// This session's outbox bound in bytes: `Some(None)` lifts the config's
    /// `message_buffer_bytes` for it, `Some(Some(n))` sets it to `n`.
    pub message_buffer_bytes: Option<Option<usize>>,
}

impl Admission {
    /// An admission with the hub's settings.
    pub fn new() -> Self {
        Admission::default()
    }

    /// Sets this session's largest message (and frame), in bytes.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Sets this session's outbox bound in messages.
    pub fn message_buffer_size(mut self, messages: usize) -> Self {
        self.message_buffer_size = Some(messages);
        self
    }

    /// Sets (or, with `None`, lifts) this session's outbox bound in bytes.
    pub fn message_buffer_bytes(mut self, bytes: Option<usize>) -> Self {
        self.message_buffer_bytes = Some(bytes);
        self
    }
}

/// Refuses a request held for a verdict: an HTTP error response, then the connection
/// ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusal {
    /// The status: a client (4xx) or server (5xx) error; any other becomes 500.
    pub status: StatusCode,
    /// One line sent as the `text/plain` body, and reported in
    /// [`SessionError::Refused`](crate::SessionError::Refused).
    pub reason: String,
    /// Extra response headers (e.g. `WWW-Authenticate`). The framing headers
    /// (`Content-Length`, `Content-Type`, `Connection`, `Transfer-Encoding`) are ours and
    /// any given here are left out, so the response always frames correctly.
    pub headers: HeaderMap,
}

impl Refusal {
    /// A refusal with `status` (4xx or 5xx, else 500) and `reason`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        Refusal {
            status,
            reason: reason.into(),
            headers: HeaderMap::new(),
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The status actually sent: a 4xx or 5xx as given, anything else 500 (the field
    /// is public, so it is checked again here).
    pub(crate) fn effective_status(&self) -> StatusCode {
        if self.status.is_client_error() || self.status.is_server_error() {
            self.status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Headers of ours that a refusal may not set: they frame the response.
pub(crate) fn is_framing_header(name: &HeaderName) -> bool {
    use tungstenite::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
    [CONTENT_LENGTH, CONTENT_TYPE, CONNECTION, TRANSFER_ENCODING].contains(name)
}
