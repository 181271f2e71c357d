//! The transport seam for any `futures-io` stream (feature `futures-io`): what the smol
//! and async-std adapters share, and what any futures-io runtime can use.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;
use futures_io::{AsyncRead, AsyncWrite};

use crate::runtime::Transport;

/// Wraps a `futures-io` stream (an `async_io::Async<TcpStream>`, smol's or
/// async-std's `TcpStream`, a TLS stream) as a driver [`Transport`].
///
/// A connection task is woken by its socket and by the hub (data queued, a ping due)
/// alike, and a futures-io stream has no way to tell "not readable" but to try a read:
/// on async-io that is a system call answering "would block", plus one to re-arm the
/// poller. So after a read returned `Pending`, the transport reads again only once the
/// stream itself has woken the task: a wakeup from the hub costs no read.
#[derive(Debug)]
pub struct FuturesIoTransport<S> {
    stream: S,
    /// Created at the first read that would block.
    readiness: Option<Arc<ReadReadiness>>,
    /// The last read returned `Pending`, and `readiness` decides the next one.
    read_parked: bool,
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
        FuturesIoTransport {
            stream,
            readiness: None,
            read_parked: false,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The wrapped stream, mutably (reading from it directly bypasses the wakeup
    /// bookkeeping: the next transport read then happens at the next poll).
    pub fn get_mut(&mut self) -> &mut S {
        self.read_parked = false;
        &mut self.stream
    }

    /// Gives the wrapped stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

/// Whether the stream woke the task since its read last returned `Pending`, and the
/// task to wake. The stream holds a waker made of this, not the task's own.
#[derive(Debug, Default)]
struct ReadReadiness {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadReadiness {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<S> Transport for FuturesIoTransport<S>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let readiness = self.readiness.get_or_insert_with(Default::default);
        // Registered first: a wake from here on reaches the task polling now.
        readiness.task.register(cx.waker());
        if self.read_parked && !readiness.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        readiness.woken.store(false, Ordering::Release);
        let waker = Waker::from(Arc::clone(readiness));
        let polled = Pin::new(&mut self.stream).poll_read(&mut Context::from_waker(&waker), buf);
        // A wake between the stream's registration and here set `woken`: the next
        // poll reads.
        self.read_parked = polled.is_pending();
        polled
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
