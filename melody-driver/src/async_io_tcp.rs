//! TCP on async-io's reactor (smol's and async-std's) for [`TcpTransport`]
//! (feature `async-io`).

use std::io::{self, IoSlice};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::Transport;
use crate::tcp::{RegisteredTcp, TcpTransport};

/// A TCP connection on async-io's reactor, as the driver's transport: what the smol
/// and async-std adapters' `serve` use. It holds the `Async` socket itself (not a
/// stream made to be shared between tasks, with waker lists of its own), shuts the
/// write side down on close, and leaves the reactor while its connection is parked.
///
/// ```no_run
/// use async_io::Async;
/// use melody_driver::AsyncIoTcpTransport;
///
/// async fn next(listener: &Async<std::net::TcpListener>) -> std::io::Result<AsyncIoTcpTransport> {
///     let (socket, _peer) = listener.accept().await?;
///     Ok(AsyncIoTcpTransport::new(socket))
/// }
/// ```
pub type AsyncIoTcpTransport = TcpTransport<Async<TcpStream>>;

impl RegisteredTcp for Async<TcpStream> {
    fn register(socket: TcpStream) -> io::Result<Self> {
        // Still non-blocking from its time in the reactor: no flag to set.
        Async::new_nonblocking(socket)
    }

    fn deregister(self) -> io::Result<TcpStream> {
        self.into_inner()
    }
}

/// An `Async` TCP socket as a transport; its close is a FIN (the `Async` socket's own
/// close only flushes, and a plain socket buffers nothing).
impl Transport for Async<TcpStream> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(self).poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self).poll_write_vectored(cx, bufs)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(self).poll_write(cx, buf)
    }

    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_ref().shutdown(Shutdown::Write))
    }
}
