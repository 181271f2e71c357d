//! Entry points: accept loop on a listener, and single streams.

use std::io;

use melody_core::ConnectionInfo;
use melody_driver::accept_loop;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::tcp_transport;
use crate::{Melody, TokioTransport};

/// Accepts connections on `listener` and serves each as a WebSocket session until
/// [`Melody::close`] or [`Melody::shutdown`] is called. Every connection must start
/// with an HTTP upgrade request (or, with `Config::http_page`, a plain GET of one of the
/// page's paths); for routing, see the `axum` feature.
///
/// Errors from `accept` that concern one connection are skipped; running out of file
/// descriptors pauses accepting briefly and goes on. Only a failed listener returns.
pub async fn serve(melody: &Melody, listener: TcpListener) -> io::Result<()> {
    accept_loop(melody, || async {
        let (stream, remote) = listener.accept().await?;
        // Small frames go out at once; the driver already batches writes.
        let _ = stream.set_nodelay(true);
        let info = ConnectionInfo {
            remote_addr: Some(remote),
            local_addr: stream.local_addr().ok(),
        };
        Ok((tcp_transport::transport(stream), info))
    })
    .await
}

/// Serves one already accepted stream (TCP, TLS, a Unix socket…) whose first bytes are
/// the HTTP upgrade request. Returns at once; the session runs on a spawned task.
pub fn accept<S>(melody: &Melody, stream: S, info: ConnectionInfo)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    melody.spawn_connection(TokioTransport(stream), info);
}
