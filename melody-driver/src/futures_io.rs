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
pub struct FuturesIoTransport<S>(pub S);

impl<S> Transport for FuturesIoTransport<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
