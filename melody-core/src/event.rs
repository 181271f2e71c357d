//! What a session reports to its owner, in order.

use bytes::Bytes;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Utf8Bytes;

use crate::error::SessionError;
use crate::prepared::MessageKind;

/// One thing that happened to a session, taken with [`Hub::poll_event`](crate::Hub::poll_event).
///
/// Per session, events come in the order things happened: `Request` first when verdicts
/// are on, `Connect` once the handshake succeeds, `Disconnect` last and exactly once,
/// for every id `open` returned.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The upgrade request passed the hub's own checks and waits for the application's
    /// verdict: [`Hub::admit`](crate::Hub::admit) or [`Hub::refuse`](crate::Hub::refuse)
    /// (only with [`Hub::set_request_verdicts`](crate::Hub::set_request_verdicts) on).
    /// [`Hub::request`](crate::Hub::request) shows the request meanwhile.
    Request,
    /// The handshake succeeded; the session can send and receive.
    Connect,
    /// A text message arrived (fragments already reassembled, UTF-8 checked).
    Text(Utf8Bytes),
    /// A binary message arrived.
    Binary(Bytes),
    /// A pong arrived, with its payload.
    Pong(Bytes),
    /// The peer sent a close frame: its code (1005 when it sent none) and reason.
    Close {
        /// The peer's close code.
        code: CloseCode,
        /// The peer's reason, possibly empty.
        reason: Utf8Bytes,
    },
    /// A data message was fully written to the transport (only with `Config::sent_events`).
    Sent {
        /// Text or binary.
        kind: MessageKind,
        /// The message's payload.
        payload: Bytes,
    },
    /// Messages for this session were dropped by its outbox since the last such event.
    Dropped {
        /// How many messages were dropped since the previous `Dropped` event.
        count: u64,
    },
    /// A subscription from a history position found a gap: messages published after
    /// the position may be missing (every retained one is replayed next). See
    /// [`history`](crate::history).
    HistoryGap {
        /// The topic subscribed to.
        topic: String,
        /// Why messages may be missing.
        reason: crate::history::GapReason,
    },
    /// Something went wrong; a `Disconnect` follows.
    Error(SessionError),
    /// The session is over; its id is inert from now on and can be
    /// [`release`](crate::Hub::release)d.
    Disconnect {
        /// Data messages that were accepted but never written (already counted as drops).
        undelivered: usize,
    },
}
