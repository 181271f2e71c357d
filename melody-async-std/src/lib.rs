//! **async-std was discontinued in 2025** — its authors point to smol, and
//! [RUSTSEC-2025-0052](https://rustsec.org/advisories/RUSTSEC-2025-0052) marks it
//! unmaintained. This adapter is for applications already on async-std; new code
//! should use **melody-smol**, which has the same API (async-std is built on smol's
//! parts, so moving is mostly renaming).
//!
//! olahol/melody's API on async-std: WebSocket sessions with handlers, broadcast,
//! topics, keepalive and bounded outboxes, over [`melody_core`].
//!
//! ```no_run
//! use melody_async_std::Melody;
//!
//! #[async_std::main]
//! async fn main() -> std::io::Result<()> {
//!     let melody = Melody::new();
//!     let m = melody.clone();
//!     melody.on_message(move |_session, text| {
//!         m.broadcast(text);
//!     });
//!     let listener = async_std::net::TcpListener::bind("127.0.0.1:5000").await?;
//!     melody_async_std::serve(&melody, listener).await
//! }
//! ```
//!
//! The adapter is thin: [`AsyncStdRuntime`] is its one seam. The transports
//! ([`AsyncIoTcpTransport`] for the connections [`serve`] accepts, [`FuturesIoTransport`]
//! for any futures-io stream) and the accept loop come from `melody-driver`, shared
//! with melody-smol.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::io;

use async_io::Async;
use async_std::io::{Read, Write};
use async_std::net::TcpListener;
use melody_driver::accept_loop;

mod runtime;

pub use melody_driver::api::*;
pub use melody_driver::{AsyncIoTcpTransport, FuturesIoTransport};
pub use runtime::AsyncStdRuntime;

// `Melody` and `Session`, with their method index in their documentation.
melody_driver::adapter_aliases!(AsyncStdRuntime, "async-std");

/// Accepts connections on `listener` and serves each as a WebSocket session until
/// [`Melody::close`] or [`Melody::shutdown`] is called. Every connection must start
/// with an HTTP upgrade request (or, with `Config::http_page`, a plain GET of one of the
/// page's paths).
///
/// Errors from `accept` that concern one connection are skipped; running out of file
/// descriptors pauses accepting briefly and goes on. Only a failed listener returns.
///
/// Where to run it: awaited in `async_std::task::block_on` (or `#[async_std::main]`),
/// the accept loop runs on the calling thread, which then also polls async-std's
/// reactor and hands the sessions' I/O events over to the executor's threads. Spawned
/// with `async_std::task::spawn` and waited for by a plain `block_on` that does not
/// poll the reactor (`futures_lite::future::block_on`), it leaves the events to the
/// executor's threads, as the `server` example does. With one executor thread, that
/// example's echo took 4.5 to 4.7 µs of CPU per round trip run this way, and 4.6 to
/// 7.6 µs (7.2 or more in three runs of four) in `block_on`.
pub async fn serve(melody: &Melody, listener: TcpListener) -> io::Result<()> {
    // Accepted on async-io's reactor (async-std's own) as `Async` sockets: the
    // transport that leaves the reactor while its session is quiet takes those.
    let listener = Async::new(std::net::TcpListener::try_from(listener)?)?;
    accept_loop(melody, || next_connection(&listener)).await
}

/// The next connection on `listener`, with its addresses.
async fn next_connection(
    listener: &Async<std::net::TcpListener>,
) -> io::Result<(AsyncIoTcpTransport, ConnectionInfo)> {
    let (socket, remote) = listener.accept().await?;
    let info = ConnectionInfo {
        local_addr: socket.get_ref().local_addr().ok(),
        remote_addr: Some(remote),
    };
    // Small frames go out at once; the driver already batches writes.
    let _ = socket.get_ref().set_nodelay(true);
    Ok((AsyncIoTcpTransport::new(socket), info))
}

/// Serves one already accepted futures-io stream (TCP, TLS, a Unix socket…) whose
/// first bytes are the HTTP upgrade request. Returns at once; the session runs on
/// async-std's executor. The stream's `poll_close` should shut down its write side
/// only (async-std's own `TcpStream` merely flushes there: the peer then sees the end
/// of the connection only when the driver's close drain is over).
pub fn accept<S>(melody: &Melody, stream: S, info: ConnectionInfo)
where
    S: Read + Write + Send + Unpin + 'static,
{
    melody.spawn_connection(FuturesIoTransport::new(stream), info);
}
