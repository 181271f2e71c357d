//! The end of a connection whose peer may still be sending: after our close frame, the
//! write side is shut down, and input is read and discarded for a bounded time and byte
//! budget (`Config::close_drain_timeout`, `Config::close_drain_bytes`) before the
//! transport is dropped.
//!
//! Dropping a socket with unread input makes the kernel answer the peer's next segment
//! with a reset; a peer still writing (the rest of an oversized message) then fails its
//! write and, if its stack tears the connection down on that, never reads the close
//! frame that says why.

use std::task::{Context, Poll};

use crate::runtime::{BoxFuture, Transport};

/// Reads per poll before yielding, so one draining connection cannot starve the
/// others on its thread.
const READS_PER_POLL: usize = 16;

/// Input still being discarded after the session's end.
pub(crate) struct Drain {
    /// Bytes that may still be read.
    left: usize,
    /// Completes at the drain's deadline.
    deadline: BoxFuture,
}

impl Drain {
    pub(crate) fn new(bytes: usize, deadline: BoxFuture) -> Self {
        Drain {
            left: bytes,
            deadline,
        }
    }

    /// Reads and discards input into `buf`. Ready once the peer's stream ends (or
    /// fails), the byte budget is spent, or the deadline has passed.
    pub(crate) fn poll<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        transport: &mut T,
        buf: &mut [u8],
    ) -> Poll<()> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        for _ in 0..READS_PER_POLL {
            if self.left == 0 || buf.is_empty() {
                return Poll::Ready(());
            }
            let room = buf.len().min(self.left);
            match transport.poll_read(cx, &mut buf[..room]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(n)) => self.left = self.left.saturating_sub(n),
                Poll::Pending => return Poll::Pending,
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;
    use std::io::{self, IoSlice};
    use std::task::Waker;

    use super::*;

    /// A peer that has `pending` bytes for us, then blocks (or ends, with `eof`).
    struct Peer {
        pending: usize,
        eof: bool,
        read: usize,
    }

    impl Transport for Peer {
        fn poll_read(&mut self, _cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            if self.pending == 0 {
                return match self.eof {
                    true => Poll::Ready(Ok(0)),
                    false => Poll::Pending,
                };
            }
            let n = buf.len().min(self.pending);
            self.pending -= n;
            self.read += n;
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            &mut self,
            _cx: &mut Context<'_>,
            _bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn never() -> BoxFuture {
        Box::pin(pending())
    }

    fn drain_until_ready(drain: &mut Drain, peer: &mut Peer) -> Poll<()> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut buf = [0u8; 100];
        let mut last = Poll::Pending;
        for _ in 0..100 {
            last = drain.poll(&mut cx, peer, &mut buf);
            if last.is_ready() {
                break;
            }
        }
        last
    }

    #[test]
    fn reads_until_the_peers_end() {
        let mut peer = Peer {
            pending: 250,
            eof: true,
            read: 0,
        };
        let mut drain = Drain::new(1000, never());
        assert!(drain_until_ready(&mut drain, &mut peer).is_ready());
        assert_eq!(peer.read, 250);
    }

    #[test]
    fn stops_at_the_byte_budget_exactly() {
        let mut peer = Peer {
            pending: 10_000,
            eof: false,
            read: 0,
        };
        let mut drain = Drain::new(130, never());
        assert!(drain_until_ready(&mut drain, &mut peer).is_ready());
        assert_eq!(peer.read, 130);
    }

    #[test]
    fn waits_for_a_silent_peer_until_the_deadline() {
        let mut peer = Peer {
            pending: 0,
            eof: false,
            read: 0,
        };
        let mut waiting = Drain::new(1000, never());
        assert!(drain_until_ready(&mut waiting, &mut peer).is_pending());
        let mut due = Drain::new(1000, Box::pin(std::future::ready(())));
        assert!(drain_until_ready(&mut due, &mut peer).is_ready());
    }
}
