#![doc = include_str!("../docs/crate.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod batch;
mod config;
mod error;
mod event;
mod handshake;
mod hub;
mod keys;
mod memory_stream;
mod origin;
mod outbox;
mod prepared;
mod session;
mod session_view;
mod target;
mod timers;
mod topics;
mod verdict;

pub use batch::Batch;
pub use config::{Config, ConfigError, DropPolicy, OriginPolicy, Setting};
pub use error::{HandshakeRejection, SessionError, UnknownSession};
pub use event::Event;
pub use handshake::{Accept, Request, RequestHead};
pub use hub::{Hub, HubStats};
pub use keys::Keys;
pub use prepared::{MessageKind, Prepared};
pub use session::{ConnectionInfo, SessionId, SessionState, SessionStats, Transmit};
pub use session_view::SessionView;
pub use target::{Delivery, Target};
pub use verdict::{Admission, Refusal};

pub use bytes::Bytes;
/// The `http` crate's types (`Request`, `StatusCode`, headers) that the handshake uses.
pub use tungstenite::http;
pub use tungstenite::protocol::frame::coding::CloseCode;
pub use tungstenite::Utf8Bytes;
