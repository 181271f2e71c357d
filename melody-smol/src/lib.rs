//! olahol/melody's API on [smol](https://docs.rs/smol): WebSocket sessions with
//! handlers, broadcast, topics, keepalive and bounded outboxes, over [`melody_core`].
//!
//! ```no_run
//! use melody_smol::Melody;
//!
//! fn main() -> std::io::Result<()> {
//!     smol::block_on(async {
//!         let melody = Melody::new();
//!         let m = melody.clone();
//!         melody.on_message(move |_session, text| {
//!             m.broadcast(text);
//!         });
//!         let listener = smol::net::TcpListener::bind("127.0.0.1:5000").await?;
//!         melody_smol::serve(&melody, listener).await
//!     })
//! }
//! ```
//!
//! The adapter is thin: [`SmolRuntime`] is its one seam. The transport
//! ([`FuturesIoTransport`], for any futures-io stream) and the accept loop come from
//! `melody-driver` and are shared with melody-async-std, and everything else — the
//! handshake, sessions, timers, outboxes — is `melody-core`. The connections [`serve`]
//! accepts are [`AsyncIoTcpTransport`]s, also the driver's, which leave the reactor
//! while their sessions are quiet.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod runtime;
mod serve;

pub use runtime::SmolRuntime;
pub use serve::{accept, serve};

pub use melody_driver::api::*;
pub use melody_driver::{AsyncIoTcpTransport, FuturesIoTransport};

// `Melody` and `Session`, with their method index in their documentation.
melody_driver::adapter_aliases!(SmolRuntime, "smol");
