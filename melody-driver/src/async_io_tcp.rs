//! A TCP connection on async-io's reactor (smol's and async-std's), which leaves the
//! reactor while its connection is parked (feature `async-io`).

use std::io::{self, IoSlice};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::Transport;

/// An accepted TCP connection on async-io's reactor, as the driver's transport: what
/// the smol and async-std adapters' `serve` use. It holds the `Async` socket itself
/// (not a stream made to be shared between tasks, with waker lists of its own), its
/// `poll_close` shuts the write side down, and it leaves the reactor while its
/// connection is parked ([`Transport::leave_reactor`], on Unix), registering again at
/// its next poll.
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
#[derive(Debug)]
pub struct AsyncIoTcpTransport(Socket);

#[derive(Debug)]
enum Socket {
    Registered(Async<TcpStream>),
    /// Out of the reactor while its connection is parked.
    Away(TcpStream),
    /// Leaving or rejoining the reactor failed: the socket is closed.
    Lost,
}

impl AsyncIoTcpTransport {
    /// Wraps a connected socket.
    pub fn new(socket: Async<TcpStream>) -> Self {
        AsyncIoTcpTransport(Socket::Registered(socket))
    }

    /// The socket, in the reactor again if it was away.
    fn registered(&mut self) -> io::Result<&mut Async<TcpStream>> {
        if matches!(self.0, Socket::Away(_)) {
            if let Socket::Away(away) = std::mem::replace(&mut self.0, Socket::Lost) {
                // Still non-blocking from its time in the reactor: no flag to set.
                self.0 = Socket::Registered(Async::new_nonblocking(away)?);
            }
        }
        match &mut self.0 {
            Socket::Registered(socket) => Ok(socket),
            Socket::Away(_) | Socket::Lost => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the socket was lost leaving or rejoining the reactor",
            )),
        }
    }
}

/// Polls `$call` on the registered socket, or fails with why it is not there.
macro_rules! on_socket {
    ($self:ident, $socket:ident => $call:expr) => {
        match $self.registered() {
            Ok($socket) => $call,
            Err(err) => Poll::Ready(Err(err)),
        }
    };
}

impl Transport for AsyncIoTcpTransport {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        on_socket!(self, socket => Pin::new(socket).poll_read(cx, buf))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_socket!(self, socket => Pin::new(socket).poll_write_vectored(cx, bufs))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        on_socket!(self, socket => Pin::new(socket).poll_write(cx, buf))
    }

    /// Ends our side with a FIN (the `Async` socket's own close only flushes).
    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_socket!(self, socket => Poll::Ready(socket.get_ref().shutdown(Shutdown::Write)))
    }

    #[cfg(unix)]
    fn leave_reactor(&mut self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        if !matches!(self.0, Socket::Registered(_)) {
            return None;
        }
        if let Socket::Registered(socket) = std::mem::replace(&mut self.0, Socket::Lost) {
            // Deregisters; the socket stays open and non-blocking. (On failure it is
            // closed: the parked connection then ends at its next wakeup, a ping at
            // the latest, when the read finds it lost.)
            if let Ok(away) = socket.into_inner() {
                let fd = away.as_raw_fd();
                self.0 = Socket::Away(away);
                return Some(fd);
            }
        }
        None
    }
}
