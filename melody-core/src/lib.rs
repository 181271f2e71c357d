//! The sans-IO core of melody: a deterministic state machine that owns many WebSocket
//! server sessions.
//!
//! **No sockets, no threads, no async runtime, no clock.** Bytes come in as slices, time
//! comes in as `now: Instant` arguments, and everything to do comes out of `poll_*`
//! methods. The same inputs give the same outputs, so it runs under a simulated clock in
//! tests, and inside any event loop: mio, io_uring, a game loop, a thread per core. The
//! melody adapters (`melody-tokio`, `melody-smol`, `melody-async-std`) are one such
//! loop each.
//!
//! One [`Hub`] holds the sessions, their bounded outboxes, their user data (by
//! default a melody-style [`Keys`] map), the topic index and the timers:
//!
//! | push in | pull out |
//! | --- | --- |
//! | [`Hub::open`], [`Hub::handle_input`], [`Hub::handle_eof`], [`Hub::handle_io_error`] | [`Hub::poll_transmit`] → buffers to write, then [`Hub::on_transmitted`] |
//! | [`Hub::send`], [`Hub::broadcast`] (all, others, a list, a filter, a topic) | [`Hub::poll_event`] → [`Event`]s in order, `Disconnect` last |
//! | [`Hub::close`], [`Hub::close_all`], [`Hub::subscribe`] | [`Hub::poll_ready`] → sessions with work |
//! | [`Hub::handle_timeout`] | [`Hub::poll_timeout`] → the next deadline |
//!
//! # Embedding it in your own event loop
//!
//! A loop needs four things: feed what the socket reads, write what `poll_transmit`
//! hands out, act on events, and call `handle_timeout` when `poll_timeout` says. In
//! outline, with `sockets` mapping ids to non-blocking sockets:
//!
//! ```text
//! loop {
//!     wait for readiness, at most until hub.poll_timeout()
//!     let now = Instant::now();
//!     accepted socket     → let id = hub.open(now, info, Keys::new())
//!     readable socket     → read into buf; hub.handle_input(id, now, &buf[..n])  (n == 0: hub.handle_eof)
//!     hub.handle_timeout(now)
//!     while let Some(id) = hub.poll_ready() {
//!         while let Some(event) = hub.poll_event(id) { your application: send, broadcast… }
//!         match hub.poll_transmit(id, now, &mut out) {
//!             Transmit::Write(_) => write `out` in order; hub.on_transmitted(id, now, written)
//!             Transmit::Finished => close the socket; hub.release(id)
//!             Transmit::Idle => {}
//!         }
//!     }
//! }
//! ```
//!
//! The same loop, run in memory: a client's handshake and one masked text frame go in,
//! the 101 response and a broadcast come out.
//!
//! ```
//! use std::time::Instant;
//! use melody_core::{Config, ConnectionInfo, Event, Hub, Keys, Prepared, Target, Transmit};
//!
//! let now = Instant::now();
//! let mut hub: Hub<Keys> = Hub::new(Config::default(), now).unwrap();
//! let id = hub.open(now, ConnectionInfo::default(), Keys::new());
//!
//! let request = "GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
//!                Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
//!                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
//! hub.handle_input(id, now, request.as_bytes()).unwrap();
//! // "hi", masked with a zero key as a client must mask.
//! hub.handle_input(id, now, &[0x81, 0x82, 0, 0, 0, 0, b'h', b'i']).unwrap();
//!
//! let mut wire = Vec::new();
//! while let Some(ready) = hub.poll_ready() {
//!     while let Some(event) = hub.poll_event(ready) {
//!         if let Event::Text(text) = event {
//!             let echo = Prepared::text(format!("someone said {text}"));
//!             let delivery = hub.broadcast(now, &echo, Target::All);
//!             assert_eq!(delivery.queued, 1);
//!         }
//!     }
//!     let mut out = Vec::new();
//!     if let Transmit::Write(_) = hub.poll_transmit(ready, now, &mut out) {
//!         let written: usize = out.iter().map(|b| b.len()).sum();
//!         out.iter().for_each(|b| wire.extend_from_slice(b));
//!         hub.on_transmitted(ready, now, written).unwrap();
//!     }
//! }
//! let wire = String::from_utf8_lossy(&wire);
//! assert!(wire.starts_with("HTTP/1.1 101 Switching Protocols"));
//! assert!(wire.ends_with("someone said hi"));
//! ```
//!
//! `examples/custom_loop.rs` is the full version on `mio`: a broadcast chat server.
//!
//! # Limits and losses
//!
//! `max_message_size` defaults to 64 KiB rather than olahol/melody's 512 bytes, the
//! limit its users trip over most (olahol/melody issue 69). Outboxes are bounded
//! ([`Config::message_buffer_size`], optionally [`Config::message_buffer_bytes`]); what
//! a full outbox does is the [`DropPolicy`]. No loss is silent: each send or broadcast
//! returns a [`Delivery`] with the counts, the session gets an [`Event::Dropped`], and
//! [`SessionStats`] and [`HubStats`] keep totals.
//!
//! Bad input from a peer never panics: it gets the RFC 6455 close code (1009 too big,
//! 1007 invalid UTF-8, 1002 protocol violation, 1008 policy) or, during the handshake,
//! an HTTP error with a one-line reason, and the owner gets an [`Event::Error`] with a
//! typed [`SessionError`].

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod error;
mod event;
mod handshake;
mod hub;
mod keys;
mod outbox;
mod prepared;
mod session;
mod session_view;
mod target;
mod timers;
mod topics;
mod view;

#[cfg(feature = "driver")]
pub mod driver;

pub use config::{Config, ConfigError, DropPolicy, OriginPolicy};
pub use error::{HandshakeRejection, SessionError, UnknownSession};
pub use event::Event;
pub use handshake::{Accept, Request};
pub use hub::{Hub, HubStats};
pub use keys::Keys;
pub use prepared::{MessageKind, Prepared};
pub use session::{ConnectionInfo, SessionId, SessionState, SessionStats, Transmit};
pub use session_view::SessionView;
pub use target::{Delivery, Target};

pub use bytes::Bytes;
pub use tungstenite::protocol::frame::coding::CloseCode;
pub use tungstenite::Utf8Bytes;
