//! The names every adapter re-exports at its root, so that an application depends on
//! its adapter alone: an adapter's `lib.rs` says `pub use melody_driver::api::*;`
//! and adds its runtime, entry points and the `Melody`/`Session` aliases.
//!
//! Besides what handlers and broadcasts use, this includes what a custom upgrade
//! needs: the handshake types ([`Request`], [`RequestHead`], [`Accept`],
//! [`HandshakeRejection`]), the [`http`] crate they are built on, and the
//! [`Runtime`]/[`Transport`] traits with [`BoxFuture`] for generic code.

pub use crate::async_handling::{AsyncHandling, AsyncStats, Overflow};
pub use crate::error::Error;
pub use crate::filter::SessionRef;
pub use crate::melody::ShutdownReport;
pub use crate::request::{RequestInfo, Verdict};
pub use crate::runtime::{BoxFuture, Runtime, Transport};
pub use crate::slot::SessionKey;
pub use melody_core::history;
pub use melody_core::http;
pub use melody_core::sse::{Event, EventError};
pub use melody_core::{
    is_event_stream_request, Accept, Bytes, CloseCode, Compression, Config, ConfigError,
    ConnectionInfo, DeflateParams, Delivery, DropPolicy, HandshakeRejection, HubStats, Keys,
    MessageKind, OriginPolicy, Prepared, Publication, Refusal, Request, RequestHead, SessionError,
    SessionKind, SessionStats, StreamAccept,
};
