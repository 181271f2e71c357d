//! Entry points: accept loop on a listener, and single streams.

use std::io;
use std::time::Duration;

use melody_core::ConnectionInfo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::{Melody, TokioTransport};

/// How long the accept loop pauses when the process is out of file descriptors or
/// memory, instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` and serves each as a WebSocket session until
/// [`Melody::close`] or [`Melody::shutdown`] is called. Every connection must start
/// with an HTTP upgrade request; for a page and the socket on one port, see the
/// `axum` feature.
///
/// Errors from `accept` that concern one connection are skipped; running out of file
/// descriptors pauses accepting briefly and goes on. Only a failed listener returns.
pub async fn serve(melody: &Melody, listener: TcpListener) -> io::Result<()> {
    let closed = melody.closed();
    tokio::pin!(closed);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut closed => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                // Small frames go out at once; the driver already batches writes.
                let _ = stream.set_nodelay(true);
                let info = ConnectionInfo {
                    remote_addr: Some(remote),
                    local_addr: stream.local_addr().ok(),
                };
                melody.spawn_connection(TokioTransport(stream), info);
            }
            Err(e) if is_resource_exhaustion(&e) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            Err(e) if is_per_connection(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Serves one already accepted stream (TCP, TLS, a Unix socket…) whose first bytes are
/// the HTTP upgrade request. Returns at once; the session runs on a spawned task.
pub fn accept<S>(melody: &Melody, stream: S, info: ConnectionInfo)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    melody.spawn_connection(TokioTransport(stream), info);
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux and the BSDs.
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
