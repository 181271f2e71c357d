//! The transport of the connections `serve` accepts: a TCP stream that leaves tokio's
//! reactor while its connection is parked (see `Transport::leave_reactor`). Its
//! registration in the reactor is 256 bytes at 128-byte alignment, most of what a
//! parked connection would cost otherwise.

use std::io::{self, IoSlice, Read, Write};
use std::task::{Context, Poll};

use melody_driver::Transport;
use tokio::net::TcpStream;

use crate::TokioTransport;

/// An accepted TCP connection, in tokio's reactor or (parked) out of it.
#[derive(Debug)]
pub(crate) struct TcpTransport(Socket);

#[derive(Debug)]
enum Socket {
    Registered(TokioTransport<TcpStream>),
    /// Out of the reactor while its connection is parked.
    Away(std::net::TcpStream),
    /// Leaving or rejoining the reactor failed: the socket is closed.
    Lost,
}

impl TcpTransport {
    pub(crate) fn new(stream: TcpStream) -> Self {
        TcpTransport(Socket::Registered(TokioTransport(stream)))
    }

    /// The stream, in the reactor again if it was away (called from the connection's
    /// task, so within the runtime).
    fn registered(&mut self) -> io::Result<&mut TokioTransport<TcpStream>> {
        if matches!(self.0, Socket::Away(_)) {
            if let Socket::Away(away) = std::mem::replace(&mut self.0, Socket::Lost) {
                // `from_std` panics outside a runtime: refuse instead.
                tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
                self.0 = Socket::Registered(TokioTransport(TcpStream::from_std(away)?));
            }
        }
        match &mut self.0 {
            Socket::Registered(stream) => Ok(stream),
            Socket::Away(_) | Socket::Lost => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the socket was lost leaving or rejoining the reactor",
            )),
        }
    }
}

/// Polls `$call` on the registered stream, or fails with why it is not there.
macro_rules! on_stream {
    ($self:ident, $stream:ident => $call:expr) => {
        match $self.registered() {
            Ok($stream) => $call,
            Err(err) => Poll::Ready(Err(err)),
        }
    };
}

impl TcpTransport {
    /// Back from a park, the first read or write goes to the socket itself: tokio
    /// knows nothing of a stream it has just registered (its reactor reports the
    /// socket's state only at its next turn), and would answer `Pending` even with
    /// input waiting, the input that woke the connection. `None`: it would block (the
    /// stream is registered now, so the caller waits through the reactor).
    fn away_first(
        &mut self,
        mut io: impl FnMut(&std::net::TcpStream) -> io::Result<usize>,
    ) -> Option<io::Result<usize>> {
        let Socket::Away(away) = &self.0 else {
            return None;
        };
        let done = loop {
            match io(away) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break None,
                other => break Some(other),
            }
        };
        // Registered either way: at the latest for the next call. (A failure shows
        // there, once this call's outcome is taken.)
        let _ = self.registered();
        done
    }
}

impl Transport for TcpTransport {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if let Some(done) = self.away_first(|mut away| away.read(buf)) {
            return Poll::Ready(done);
        }
        on_stream!(self, stream => stream.poll_read(cx, buf))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(done) = self.away_first(|mut away| away.write_vectored(bufs)) {
            return Poll::Ready(done);
        }
        on_stream!(self, stream => stream.poll_write_vectored(cx, bufs))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(done) = self.away_first(|mut away| away.write(buf)) {
            return Poll::Ready(done);
        }
        on_stream!(self, stream => stream.poll_write(cx, buf))
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_close(cx))
    }

    #[cfg(unix)]
    fn leave_reactor(&mut self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        if !matches!(self.0, Socket::Registered(_)) {
            return None;
        }
        if let Socket::Registered(TokioTransport(stream)) =
            std::mem::replace(&mut self.0, Socket::Lost)
        {
            // Deregisters; the socket stays open and non-blocking. (On failure it is
            // closed: the parked connection then ends at its next wakeup, a ping at
            // the latest, when the read finds it lost.)
            if let Ok(away) = stream.into_std() {
                let fd = away.as_raw_fd();
                self.0 = Socket::Away(away);
                return Some(fd);
            }
        }
        None
    }
}
