//! Entry points: accept loop on a smol listener, and single futures-io streams.

use std::io;
use std::sync::Arc;

use melody_core::ConnectionInfo;
use melody_driver::{accept_loop, AsyncIoTcpTransport, FuturesIoTransport};
use smol::io::{AsyncRead, AsyncWrite};
use smol::net::TcpListener;
use smol::Async;

use crate::Melody;

/// Accepts connections on `listener` and serves each as a WebSocket session until
/// [`Melody::close`] or [`Melody::shutdown`] is called. Every connection must start
/// with an HTTP upgrade request (or, with `Config::http_page`, a plain GET of one of the
/// page's paths).
///
/// Errors from `accept` that concern one connection are skipped; running out of file
/// descriptors pauses accepting briefly and goes on. Only a failed listener returns.
pub async fn serve(melody: &Melody, listener: TcpListener) -> io::Result<()> {
    accept_loop(melody, || async {
        let (stream, remote_addr) = listener.accept().await?;
        // Small frames go out at once; the driver already batches writes.
        stream.set_nodelay(true).ok();
        let local_addr = stream.local_addr().ok();
        let info = ConnectionInfo {
            remote_addr: Some(remote_addr),
            local_addr,
        };
        Ok((into_transport(stream)?, info))
    })
    .await
}

/// The `Async` socket inside an accepted stream, as a transport: smaller than the
/// stream (made to be cloned and read from several tasks, it carries waker lists of
/// its own), and one that leaves the reactor while its session is quiet.
fn into_transport(stream: smol::net::TcpStream) -> io::Result<AsyncIoTcpTransport> {
    let shared: Arc<Async<std::net::TcpStream>> = stream.into();
    // Just accepted, never cloned: the only reference.
    Arc::try_unwrap(shared)
        .map(AsyncIoTcpTransport::new)
        .map_err(|_| io::Error::other("accepted stream was shared"))
}

/// Serves one already accepted futures-io stream (TCP, TLS, a Unix socket…) whose
/// first bytes are the HTTP upgrade request. Returns at once; the session runs on a
/// task spawned on the instance's [`SmolRuntime`](crate::SmolRuntime).
pub fn accept<S>(melody: &Melody, stream: S, info: ConnectionInfo)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    melody.spawn_connection(FuturesIoTransport::new(stream), info);
}
