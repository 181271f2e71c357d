//! The transport seam for any `futures-io` stream (feature `futures-io`): what the smol
//! and async-std adapters share, and what any futures-io runtime can use.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::Transport;

/// Wraps a `futures-io` stream (an `async_io::Async<TcpStream>`, smol's or
/// async-std's `TcpStream`, a TLS stream) as a driver [`Transport`].
#[derive(Debug)]
pub struct FuturesIoTransport<S> {
    stream: S,
}

impl<S> FuturesIoTransport<S> {
    /// Wraps `stream`.
    ///
    /// ```
    /// use melody_driver::FuturesIoTransport;
    ///
    /// fn wrap<S: futures_io::AsyncRead + futures_io::AsyncWrite>(stream: S) -> FuturesIoTransport<S> {
    ///     FuturesIoTransport::new(stream)
    /// }
    /// ```
    pub fn new(stream: S) -> Self {
        FuturesIoTransport { stream }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The wrapped stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives the wrapped stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

// A read-readiness flag (a waker of our own for reads, so that a wakeup from the hub
// would not cost a `recvfrom` on async-io) was tried: 37% fewer system calls per
// keepalive ping, but 12% (smol) and 25% (async-std) more CPU per echo round trip;
// see BENCHMARKS.md, "Keepalive on async-io".
impl<S> Transport for FuturesIoTransport<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
