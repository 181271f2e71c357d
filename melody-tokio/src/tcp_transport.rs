//! tokio's TCP stream for the driver's [`TcpTransport`], which `serve` uses: out of
//! tokio's reactor while its connection is parked. Its registration there is 256 bytes
//! at 128-byte alignment, most of what a parked connection would cost otherwise.

use std::io;

use melody_driver::{RegisteredTcp, TcpTransport};
use tokio::net::TcpStream;

use crate::TokioTransport;

/// What `serve` makes of an accepted stream.
pub(crate) fn transport(stream: TcpStream) -> TcpTransport<TokioTransport<TcpStream>> {
    TcpTransport::new(TokioTransport(stream))
}

impl RegisteredTcp for TokioTransport<TcpStream> {
    fn register(socket: std::net::TcpStream) -> io::Result<Self> {
        // `from_std` panics outside a runtime: refuse instead. (The driver calls it
        // from the connection's task.)
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        Ok(TokioTransport(TcpStream::from_std(socket)?))
    }

    fn deregister(self) -> io::Result<std::net::TcpStream> {
        self.0.into_std()
    }
}
