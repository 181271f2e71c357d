//! The async driver of melody, written once for every runtime, on top of the sans-IO
//! [`melody_core`].
//!
//! An adapter implements two seams — [`Runtime`] (spawn, sleep until, now) and
//! [`Transport`] (poll read, poll vectored write, poll close) — and gets the whole
//! melody API: [`Melody`] with its handlers and broadcasts, [`Session`] handles, one
//! task per busy connection (a quiet one gives its task up until its next wakeup, see
//! [`Melody::parked_connections`]), and one clock task per instance. A TCP connection
//! through [`TcpTransport`] (an adapter supplies its runtime's registered stream, a
//! [`RegisteredTcp`]) also gives its socket's registration up while parked, on Unix:
//! the instance watches such sockets with one poller thread of its own
//! ([`Melody::parked_outside_reactor`]).
//!
//! Sessions live in hub shards behind locks, each with a waker slot. A broadcast takes
//! each shard's lock once, queues the message by reference in every outbox, and wakes
//! (after unlocking) only the parked sessions whose outbox was empty. A woken
//! connection writes everything queued with one vectored write. Handlers run on the
//! session's connection task, outside every lock, in order; they may broadcast or
//! write, re-entrantly.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod aliases;
pub mod api;
mod async_handling;
#[cfg(feature = "async-io")]
mod async_io_tcp;
mod backplane;
mod clock;
mod connection;
mod dormant;
#[cfg(test)]
mod dormant_tests;
mod drain;
mod error;
mod fanout;
mod filter;
#[cfg(feature = "futures-io")]
mod futures_io;
mod handlers;
mod history;
mod history_api;
#[cfg(unix)]
mod idle_watch;
mod in_flight;
mod integration;
mod link;
mod melody;
mod observe;
mod read_back;
mod request;
mod runtime;
mod serve;
mod session;
mod shard;
mod shared;
mod slot;
mod sync;
mod tcp;
mod turn_clock;
mod unparker;
mod wait;

pub use async_handling::{AsyncHandling, AsyncStats, Overflow};
#[cfg(feature = "async-io")]
pub use async_io_tcp::AsyncIoTcpTransport;
pub use backplane::{Backplane, BackplaneLink};
pub use connection::Connection;
pub use error::Error;
pub use filter::SessionRef;
#[cfg(feature = "futures-io")]
pub use futures_io::FuturesIoTransport;
pub use link::{Audience, Delivered, ForwardCounters, Outgoing, DEFAULT_BACKPLANE_QUEUE};
pub use melody::{Melody, ShutdownReport};
pub use request::{RequestInfo, Verdict};
pub use runtime::{BoxFuture, Runtime, Transport};
pub use serve::{accept_loop, ACCEPT_BACKOFF};
pub use session::Session;
pub use slot::SessionKey;
pub use tcp::{RegisteredTcp, TcpTransport};
pub use wait::Closed;
