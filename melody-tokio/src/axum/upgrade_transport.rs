//! The transport of a WebSocket that hyper has not upgraded yet.
//!
//! The session is opened while the handler runs, before its 101 is sent, so that the
//! verdict's topics are subscribed by the time the client sees the 101: whatever is
//! published after that reaches it. Its reads and writes wait for hyper to hand over
//! the connection, which happens once the 101 is written. A client that leaves before
//! that fails them: the session, already connected, then ends like any other whose
//! peer went away (`on_disconnect` runs).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use melody_driver::Transport;

use crate::TokioTransport;

type Open = TokioTransport<TokioIo<Upgraded>>;

pub(crate) enum UpgradeTransport {
    /// The 101 is not written yet.
    Waiting(OnUpgrade),
    Open(Open),
    /// The upgrade failed (the client left before its 101) or the session closed first.
    Gone,
}

impl UpgradeTransport {
    pub(crate) fn new(upgrade: OnUpgrade) -> Self {
        UpgradeTransport::Waiting(upgrade)
    }

    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut Open>> {
        if let UpgradeTransport::Waiting(upgrade) = self {
            match Pin::new(upgrade).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(upgraded)) => {
                    *self = UpgradeTransport::Open(TokioTransport(TokioIo::new(upgraded)));
                }
                Poll::Ready(Err(e)) => {
                    *self = UpgradeTransport::Gone;
                    return Poll::Ready(Err(io::Error::other(e)));
                }
            }
        }
        match self {
            UpgradeTransport::Open(open) => Poll::Ready(Ok(open)),
            _ => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl Transport for UpgradeTransport {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.poll_open(cx) {
            Poll::Ready(Ok(open)) => open.poll_read(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.poll_open(cx) {
            Poll::Ready(Ok(open)) => open.poll_write_vectored(cx, bufs),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            UpgradeTransport::Open(open) => open.poll_close(cx),
            // Nothing was sent on a connection never handed over: dropping the pending
            // upgrade lets hyper close it.
            _ => {
                *self = UpgradeTransport::Gone;
                Poll::Ready(Ok(()))
            }
        }
    }
}
