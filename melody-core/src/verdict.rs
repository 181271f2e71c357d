//! The application's answer to an upgrade request held for a verdict (see
//! [`Hub::set_request_verdicts`](crate::Hub::set_request_verdicts)): admit it, with
//! per-session overrides, or refuse it with any HTTP error.

use tungstenite::http::header::{HeaderName, HeaderValue};
use tungstenite::http::{HeaderMap, StatusCode};

/// Admits a request held for a verdict: its 101 is written and the session opens.
/// Every field left `None` keeps the hub's [`Config`](crate::Config) value.
///
/// ```
/// # use std::time::Instant;
/// # use melody_core::*;
/// # let t0 = Instant::now();
/// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
/// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
/// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// hub.set_request_verdicts(true);
/// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
/// hub.handle_input(id, t0, UPGRADE)?;
/// // A trusted client: larger messages, a deeper outbox, no byte bound.
/// let admission = Admission::new()
///     .max_message_size(8 << 20)
///     .message_buffer_size(4096)
///     .message_buffer_bytes(None);
/// assert!(hub.admit(id, t0, admission)?);
/// assert_eq!(hub.state(id), Some(SessionState::Open));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// Whether this WebSocket session gets text messages as binary frames (the
    /// precision-soft integration's `BinaryWrites`); off otherwise. Binary messages
    /// stay binary; event-stream sessions ignore it. Applies to what is queued from
    /// the admission on.
    pub binary_writes: Option<bool>,
    /// Whether this WebSocket session sees the history position of each message of a
    /// history topic: the frame then holds the position, `\n`, then the data (see
    /// [`history`](crate::history)); off otherwise. Event streams always get it as `id:`.
    pub positions: Option<bool>,
}

impl Admission {
    /// An admission with the hub's settings.
    ///
    /// ```
    /// use melody_core::Admission;
    ///
    /// let admission = Admission::new();
    /// assert_eq!(admission.max_message_size, None, "the config's value applies");
    /// ```
    pub fn new() -> Self {
        Admission::default()
    }

    /// Sets this session's largest message (and frame), in bytes.
    ///
    /// ```
    /// use melody_core::Admission;
    ///
    /// assert_eq!(Admission::new().max_message_size(1 << 20).max_message_size, Some(1 << 20));
    /// ```
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes);
        self
    }

    /// Sets this session's outbox bound in messages.
    ///
    /// ```
    /// use melody_core::Admission;
    ///
    /// assert_eq!(Admission::new().message_buffer_size(16).message_buffer_size, Some(16));
    /// ```
    pub fn message_buffer_size(mut self, messages: usize) -> Self {
        self.message_buffer_size = Some(messages);
        self
    }

    /// Sends this session's text messages as binary frames (`true`) or as text.
    ///
    /// ```
    /// use melody_core::Admission;
    ///
    /// assert_eq!(Admission::new().binary_writes(true).binary_writes, Some(true));
    /// ```
    pub fn binary_writes(mut self, on: bool) -> Self {
        self.binary_writes = Some(on);
        self
    }

    /// Prefixes each message of a history topic with its position (`true`): see
    /// [`Admission::positions`](Admission#structfield.positions).
    ///
    /// ```
    /// use melody_core::Admission;
    ///
    /// assert_eq!(Admission::new().positions(true).positions, Some(true));
    /// ```
    pub fn positions(mut self, on: bool) -> Self {
        self.positions = Some(on);
        self
    }

    /// Sets (or, with `None`, lifts) this session's outbox bound in bytes.
    ///
    /// ```
    /// use melody_core::Admission;
    ///
    /// let lifted = Admission::new().message_buffer_bytes(None);
    /// assert_eq!(lifted.message_buffer_bytes, Some(None), "no byte bound for this session");
    /// let tight = Admission::new().message_buffer_bytes(Some(64 * 1024));
    /// assert_eq!(tight.message_buffer_bytes, Some(Some(64 * 1024)));
    /// ```
    pub fn message_buffer_bytes(mut self, bytes: Option<usize>) -> Self {
        self.message_buffer_bytes = Some(bytes);
        self
    }
}

/// Refuses a request held for a verdict: an HTTP error response, then the connection
/// ends.
///
/// ```
/// # use std::time::Instant;
/// # use melody_core::*;
/// # let t0 = Instant::now();
/// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
/// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
/// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// hub.set_request_verdicts(true);
/// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
/// hub.handle_input(id, t0, UPGRADE)?;
/// let refusal = Refusal::new(http::StatusCode::FORBIDDEN, "banned");
/// assert!(hub.refuse(id, t0, refusal)?);
/// assert_eq!(hub.stats().rejected, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    ///
    /// ```
    /// use melody_core::{http::StatusCode, Refusal};
    ///
    /// let refusal = Refusal::new(StatusCode::TOO_MANY_REQUESTS, "slow down");
    /// assert_eq!(refusal.status, StatusCode::TOO_MANY_REQUESTS);
    /// let not_an_error = Refusal::new(StatusCode::OK, "fine?");
    /// assert_eq!(not_an_error.status, StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
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
    ///
    /// ```
    /// use melody_core::http::{header, HeaderValue, StatusCode};
    /// use melody_core::Refusal;
    ///
    /// let refusal = Refusal::new(StatusCode::UNAUTHORIZED, "a token is required")
    ///     .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    /// assert_eq!(refusal.headers[header::WWW_AUTHENTICATE], "Bearer");
    /// ```
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The headers sent with the refusal: [`Refusal::headers`] without the framing
    /// ones, which the response writer sets itself. For an HTTP framework sending the
    /// refusal.
    ///
    /// ```
    /// use melody_core::http::{header, HeaderValue, StatusCode};
    /// use melody_core::Refusal;
    ///
    /// let refusal = Refusal::new(StatusCode::UNAUTHORIZED, "a token is required")
    ///     .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    ///     .header(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    /// let sent: Vec<_> = refusal.extra_headers().map(|(name, _)| name.clone()).collect();
    /// assert_eq!(sent, [header::WWW_AUTHENTICATE], "the framing header is left out");
    /// ```
    pub fn extra_headers(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers
            .iter()
            .filter(|(name, _)| !is_framing_header(name))
    }

    /// The status actually sent: a 4xx or 5xx as given, anything else 500.
    ///
    /// ```
    /// use melody_core::http::StatusCode;
    /// use melody_core::Refusal;
    ///
    /// let mut refusal = Refusal::new(StatusCode::FORBIDDEN, "no");
    /// assert_eq!(refusal.status_sent(), StatusCode::FORBIDDEN);
    /// refusal.status = StatusCode::FOUND; // the field is public; a redirect is not sent
    /// assert_eq!(refusal.status_sent(), StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
    pub fn status_sent(&self) -> StatusCode {
        self.effective_status()
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
