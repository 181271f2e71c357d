//! The accept loop, written once for every adapter: accept until the instance closes,
//! skip errors that concern one connection, back off when out of descriptors.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use crate::melody::Melody;
use crate::runtime::{Runtime, Transport};
use melody_core::ConnectionInfo;

/// How long accepting pauses when the process is out of file descriptors or memory,
/// instead of spinning on the error.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections with `accept` and serves each as a session until
/// [`Melody::close`] or [`Melody::shutdown`] is called; then returns `Ok`.
///
/// An adapter's `serve(listener)` is this loop around its listener's `accept`. Errors
/// that concern one connection (reset, aborted) are skipped; running out of file
/// descriptors or memory pauses for [`ACCEPT_BACKOFF`] and goes on; any other error is
/// the listener's and is returned.
pub async fn accept_loop<R, T, F, Fut>(melody: &Melody<R>, mut accept: F) -> io::Result<()>
where
    R: Runtime,
    T: Transport,
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<(T, ConnectionInfo)>>,
{
    let mut closed = pin!(melody.closed());
    loop {
        let mut next = pin!(accept());
        // Closing wins over a connection accepted at the same moment.
        let accepted = std::future::poll_fn(|cx| {
            if closed.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            next.as_mut().poll(cx).map(Some)
        })
        .await;
        match accepted {
            None => return Ok(()),
            Some(Ok((transport, info))) => melody.spawn_connection(transport, info),
            Some(Err(e)) if is_resource_exhaustion(&e) => {
                let rt = melody.runtime();
                rt.sleep_until(rt.now() + ACCEPT_BACKOFF).await;
            }
            Some(Err(e)) if is_per_connection(&e) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux (and ENOBUFS 55 on the BSDs).
    matches!(e.raw_os_error(), Some(23 | 24 | 55 | 105 | 12))
        || e.kind() == io::ErrorKind::OutOfMemory
}

fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}
