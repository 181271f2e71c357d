#![doc = include_str!("../docs/crate.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod batch;
mod budget;
mod config;
mod deflate;
mod error;
mod event;
mod event_queue;
mod frame_log;
#[cfg(test)]
mod frame_log_hub_tests;
mod handshake;
pub mod history;
mod http_page;
mod hub;
#[cfg(test)]
mod idle_context_tests;
mod inbound;
mod keys;
mod memory_stream;
mod origin;
mod outbox;
mod prepared;
mod publication;
mod session;
mod session_view;
mod shared_copies;
pub mod sse;
mod target;
#[cfg(test)]
mod test_support;
mod timers;
mod topics;
mod verdict;

pub use batch::Batch;
pub use config::{Config, ConfigError, DropPolicy, OriginPolicy, Setting};
pub use deflate::{Compression, DeflateParams};
pub use error::{HandshakeRejection, SessionError, UnknownSession};
pub use event::Event;
pub use handshake::{is_event_stream_request, Accept, Request, RequestHead, StreamAccept};
pub use http_page::HttpPage;
pub use hub::{Hub, HubStats};
pub use keys::Keys;
pub use outbox::SMALL_WRITE_AT_MOST;
pub use prepared::{MessageKind, Prepared};
pub use publication::Publication;
pub use session::{
    ConnectionInfo, SessionId, SessionKind, SessionOrigin, SessionState, SessionStats, Transmit,
};
pub use session_view::SessionView;
pub use target::{Delivery, Target};
pub use verdict::{Admission, Refusal};

pub use bytes::Bytes;
/// The `http` crate's types (`Request`, `StatusCode`, headers) that the handshake uses.
pub use tungstenite::http;
pub use tungstenite::protocol::frame::coding::CloseCode;
pub use tungstenite::Utf8Bytes;
