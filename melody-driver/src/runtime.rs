//! The two seams an adapter implements: a runtime (spawn, sleep, now) and a transport.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A boxed future that can move between threads.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What the driver needs from an async runtime.
///
/// ```
/// # use std::time::Instant;
/// # use melody_driver::{BoxFuture, Runtime};
/// /// A runtime seam whose clock stands still: a shape for test executors.
/// #[derive(Clone)]
/// struct Frozen(Instant);
/// impl Runtime for Frozen {
///     fn spawn(&self, task: BoxFuture) { drop(task) }
///     fn sleep_until(&self, _deadline: Instant) -> BoxFuture { Box::pin(async {}) }
///     fn now(&self) -> Instant { self.0 }
/// }
/// ```
pub trait Runtime: Clone + Send + Sync + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture);
    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture;
    /// The runtime's clock (a test runtime may pause or advance it).
    fn now(&self) -> Instant;
    /// Whether a connection task that took input in a poll should be polled once more
    /// soon after (its own input wakes it), rather than only when the transport is
    /// readable again. Where readiness reaches tasks on the executor's own thread
    /// (tokio), that poll is mostly wasted: say `false`. Where the reactor may run on
    /// another thread (async-io, under smol and async-std), it often finds the peer's
    /// next message and spares a wakeup from there: `true`, the default. It changes
    /// the cost of a message, never what happens.
    fn polls_again_after_input(&self) -> bool {
        true
    }
}

/// A byte stream the driver reads and writes: a TCP socket, a TLS stream, an upgraded
/// HTTP connection.
pub trait Transport: Send + Unpin + 'static {
    /// Reads into `buf`; `Ok(0)` is end of file.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Writes from `bufs` in order, returning how many bytes were taken.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// Writes from one buffer, returning how many bytes were taken. The driver calls it
    /// when a write has a single buffer (the common case: small frames are copied
    /// together): on a socket that is `send`, which spares the kernel the iovec copy
    /// and file-layer steps of `writev`. By default, a vectored write of one buffer.
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }
    /// Flushes and shuts down the write side only (for a TCP socket,
    /// `shutdown(Write)`): the peer reads our last bytes and then its end of stream.
    /// Reading must keep working afterwards: the driver drains what the peer still
    /// sends, within `Config::close_drain_timeout` and `Config::close_drain_bytes`,
    /// before it drops the transport, so that the peer is not answered with a reset
    /// that could destroy the close frame it has yet to read.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Gives the runtime's registration of the socket up while the connection is
    /// parked (see [`Melody::parked_connections`](crate::Melody::parked_connections)),
    /// and returns the socket's descriptor, which the instance then watches for input
    /// itself. The transport registers again at its next `poll_*` call. A registration
    /// is most of what a parked connection costs (tokio's: 256 bytes at 128-byte
    /// alignment, about 400 with what the allocator cannot use around it). By default
    /// `None`: the registration stays, and wakes the parked connection as usual. Only
    /// called on a transport whose read returned `Pending` (nothing to read, our waker
    /// held); a socket it returns must stay open until the next `poll_*` call or until
    /// the transport is dropped.
    #[cfg(unix)]
    fn leave_reactor(&mut self) -> Option<std::os::fd::RawFd> {
        None
    }
}
