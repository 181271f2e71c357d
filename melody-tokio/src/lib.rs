//! olahol/melody's API on tokio: WebSocket sessions with handlers, broadcast, topics,
//! keepalive and bounded outboxes, over [`melody_driver`] and [`melody_core`].
//!
//! ```no_run
//! use melody_tokio::Melody;
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let melody = Melody::new();
//!     let m = melody.clone();
//!     melody.on_message(move |_session, text| {
//!         m.broadcast(text);
//!     });
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//!     melody_tokio::serve(&melody, listener).await
//! }
//! ```
//!
//! The adapter is thin: [`TokioRuntime`] and [`TokioTransport`] are the seams, and
//! everything else is shared: the connection and clock tasks, the handles and the accept
//! loop are `melody-driver`; the handshake, sessions, timers and outboxes are `melody-core`.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod runtime;
mod serve;
mod tcp_transport;
mod transport;

#[cfg(feature = "axum")]
pub mod axum;

pub use runtime::TokioRuntime;
pub use serve::{accept, serve};
pub use transport::TokioTransport;

pub use melody_driver::api::*;

// `Melody` and `Session`, with their method index in their documentation.
melody_driver::adapter_aliases!(TokioRuntime, "tokio");
