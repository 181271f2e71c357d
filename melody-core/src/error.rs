//! Typed errors: what went wrong with a session, and the close code it earns.

use std::io;

use tungstenite::http::StatusCode;
use tungstenite::protocol::frame::coding::CloseCode;

/// Why a handshake was refused: the HTTP status sent to the client and a one-line reason
/// (also the body of the response).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("handshake refused with {status}: {reason}")]
pub struct HandshakeRejection {
    /// The HTTP status of the response (400, 403, 405, 426, 431 or 503).
    pub status: StatusCode,
    /// What was wrong, in one line.
    pub reason: &'static str,
}

impl HandshakeRejection {
    pub(crate) const fn new(status: StatusCode, reason: &'static str) -> Self {
        HandshakeRejection { status, reason }
    }
}

/// Something that went wrong with one session. Each variant names the close code the
/// peer was sent ([`SessionError::close_code`]), if any could be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The handshake was refused; the client got an HTTP error response.
    #[error(transparent)]
    Handshake(#[from] HandshakeRejection),
    /// The application refused the request (see
    /// [`Hub::refuse`](crate::Hub::refuse)); the client got this HTTP status and reason.
    #[error("request refused with {status}: {reason}")]
    Refused {
        /// The HTTP status sent.
        status: u16,
        /// The reason sent as the body.
        reason: String,
    },
    /// The handshake did not complete within `handshake_timeout` (a request still
    /// waiting for its verdict then was answered 503).
    #[error("the handshake did not complete within the handshake timeout")]
    HandshakeTimeout,
    /// The peer sent a message larger than `max_message_size` (close 1009).
    #[error("message of {size} bytes exceeds max_message_size ({max} bytes)")]
    MessageTooBig {
        /// The size the peer announced or reached.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A text message or close reason was not valid UTF-8 (close 1007).
    #[error("the peer sent invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// The peer broke RFC 6455 (close 1002); the text says how.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A permessage-deflate message could not be inflated: not a valid deflate stream
    /// (close 1007, as the message's data does not match its type).
    #[error("invalid compressed data: {0}")]
    Compression(String),
    /// A message was not complete within `message_completion_timeout` of its first
    /// frame (close 1008).
    #[error("message not complete within message_completion_timeout of its first frame")]
    MessageTimeout,
    /// A partial inbound message could not be held: the hub's memory budget
    /// ([`Config::memory_budget`](crate::Config::memory_budget)) is full (close 1013,
    /// try again later).
    #[error("the memory budget is full: a partial inbound message could not be held")]
    OverBudget,
    /// No pong arrived within `pong_wait`.
    #[error("no pong within pong_wait: the peer is gone or not answering pings")]
    PongTimeout,
    /// The peer took none of our pending bytes within `write_wait`.
    #[error("the peer took none of our bytes within write_wait")]
    WriteTimeout,
    /// The peer did not answer our close frame within `close_timeout`.
    #[error("the peer did not answer our close frame within close_timeout")]
    CloseTimeout,
    /// The outbox was full and the drop policy is `Disconnect` (close 1008).
    #[error("slow consumer: outbox full, disconnected by the drop policy")]
    SlowConsumer,
    /// The connection ended without a close handshake.
    #[error("the peer closed the connection without a close handshake")]
    PeerGone,
    /// The transport failed.
    #[error("transport error ({kind}): {message}")]
    Io {
        /// The kind of I/O error.
        kind: io::ErrorKind,
        /// Its description.
        message: String,
    },
}

impl SessionError {
    /// The close code sent to the peer for this error, or `None` when no close frame
    /// could be or was sent (handshake failures, timeouts, a vanished peer).
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            SessionError::MessageTooBig { .. } => Some(CloseCode::Size),
            SessionError::InvalidUtf8 | SessionError::Compression(_) => Some(CloseCode::Invalid),
            SessionError::Protocol(_) => Some(CloseCode::Protocol),
            SessionError::SlowConsumer | SessionError::MessageTimeout => Some(CloseCode::Policy),
            SessionError::OverBudget => Some(CloseCode::Again),
            _ => None,
        }
    }

    pub(crate) fn from_io(err: &io::Error) -> Self {
        SessionError::Io {
            kind: err.kind(),
            message: err.to_string(),
        }
    }

    /// Maps a tungstenite read error to ours. `None` for the orderly end of a close
    /// handshake, which is not an error.
    pub(crate) fn from_tungstenite(err: tungstenite::Error) -> Option<Self> {
        use tungstenite::error::{CapacityError, Error, ProtocolError};
        Some(match err {
            Error::ConnectionClosed | Error::AlreadyClosed => return None,
            Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                SessionError::MessageTooBig {
                    size,
                    max: max_size,
                }
            }
            Error::Capacity(other) => SessionError::Protocol(other.to_string()),
            Error::Utf8(_) => SessionError::InvalidUtf8,
            Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => SessionError::PeerGone,
            Error::Protocol(p) => SessionError::Protocol(p.to_string()),
            Error::Io(io) => SessionError::from_io(&io),
            other => SessionError::Protocol(other.to_string()),
        })
    }
}

/// An operation named a session that is not (or no longer) in the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such session: it was released, or the id is from another hub")]
pub struct UnknownSession;
