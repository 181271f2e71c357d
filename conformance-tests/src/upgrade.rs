//! `upgrade_with_keys`: olahol/melody's `HandleRequestWithKeys` for adapters without an
//! HTTP integration, written once over the driver's `Transport` seam.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use melody_core::{ConnectionInfo, HandshakeRejection, Request};
use melody_driver::{Melody, Runtime, Transport};
use tungstenite::error::ProtocolError;
use tungstenite::handshake::machine::TryParse;
use tungstenite::http::StatusCode;

use crate::backend::KeysFn;

/// Bytes read per call while waiting for the upgrade request.
const CHUNK: usize = 1024;

/// Serves one accepted connection whose first bytes are an HTTP upgrade request, and
/// starts its session with the keys `keys` computes from that request: the
/// [`Upgrade::WithKeys`](crate::Upgrade::WithKeys) mode for an adapter that has no HTTP
/// integration of its own.
///
/// It reads the request (at most `max_handshake_size` bytes, within
/// `handshake_timeout`), checks it with [`Melody::check_upgrade`] (version, key, origin
/// policy, session cap), answers 101 or the refusal's HTTP status, and then runs the
/// session through [`Melody::upgraded_connection`] until it is over or parks (see
/// [`Connection::parkable`](melody_driver::Connection::parkable)): spawn the returned
/// future on the adapter's runtime, one per accepted connection, and do not wait for it.
///
/// ```
/// # use conformance_tests::{upgrade_with_keys, KeysFn};
/// # use melody_driver::{Melody, Runtime, Transport};
/// # use melody_core::ConnectionInfo;
/// fn on_accept<R: Runtime, T: Transport>(
///     melody: &Melody<R>,
///     transport: T,
///     info: ConnectionInfo,
///     keys: &KeysFn,
/// ) {
///     let task = upgrade_with_keys(melody.clone(), transport, info, keys.clone());
///     melody.runtime().spawn(Box::pin(task));
/// }
/// ```
pub async fn upgrade_with_keys<R: Runtime, T: Transport>(
    melody: Melody<R>,
    mut transport: T,
    info: ConnectionInfo,
    keys: KeysFn,
) {
    if melody.is_closed() {
        return;
    }
    let rt = melody.runtime().clone();
    let mut deadline = rt.sleep_until(rt.now() + melody.config().handshake_timeout);
    let max = melody.config().max_handshake_size;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let (request, len) = loop {
        match Request::try_parse(&buf) {
            Ok(Some((len, request))) if len <= max => break (request, len),
            Ok(Some(_)) => return refuse(&mut transport, &mut deadline, too_large()).await,
            Ok(None) if buf.len() >= max => {
                return refuse(&mut transport, &mut deadline, too_large()).await
            }
            Ok(None) => {}
            Err(tungstenite::Error::Protocol(ProtocolError::WrongHttpMethod)) => {
                let wrong = HandshakeRejection {
                    status: StatusCode::METHOD_NOT_ALLOWED,
                    reason: "only GET can upgrade",
                };
                return refuse(&mut transport, &mut deadline, wrong).await;
            }
            Err(tungstenite::Error::Protocol(ProtocolError::HttparseError(
                httparse::Error::TooManyHeaders,
            ))) => return refuse(&mut transport, &mut deadline, too_large()).await,
            Err(_) => {
                let bad = HandshakeRejection {
                    status: StatusCode::BAD_REQUEST,
                    reason: "malformed HTTP/1.1 upgrade request",
                };
                return refuse(&mut transport, &mut deadline, bad).await;
            }
        }
        let mut chunk = [0u8; CHUNK];
        let read = poll_fn(|cx| {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            transport.poll_read(cx, &mut chunk).map(Some)
        })
        .await;
        match read {
            Some(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            // End of file, a transport error, or the handshake timeout: drop it.
            _ => return,
        }
    };
    let accept = match melody.check_upgrade(&request) {
        Ok(accept) => accept,
        Err(rejection) => return refuse(&mut transport, &mut deadline, rejection).await,
    };
    let mut response = String::from(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n",
    );
    response.push_str(&format!("Sec-WebSocket-Accept: {}\r\n", accept.accept_key));
    if let Some(protocol) = &accept.protocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
    }
    if let Some(deflate) = &accept.deflate {
        let header = deflate.response_header();
        response.push_str(&format!("Sec-WebSocket-Extensions: {header}\r\n"));
    }
    response.push_str("\r\n");
    if write_all(&mut transport, &mut deadline, response.as_bytes())
        .await
        .is_err()
    {
        return;
    }
    let keys = keys(&request);
    let transport = Prefixed {
        prefix: buf.split_off(len),
        read: 0,
        inner: transport,
    };
    melody
        .upgraded_connection(transport, request, accept, keys, info)
        .parkable()
        .await;
}

fn too_large() -> HandshakeRejection {
    HandshakeRejection {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        reason: "handshake request exceeds max_handshake_size",
    }
}

/// Answers a refused upgrade with its status and one-line reason, then closes.
async fn refuse<T: Transport>(
    transport: &mut T,
    deadline: &mut melody_driver::BoxFuture,
    rejection: HandshakeRejection,
) {
    let body = format!("{}\n", rejection.reason);
    let extra = if rejection.status == StatusCode::UPGRADE_REQUIRED {
        "Sec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n{body}",
        rejection.status.as_u16(),
        rejection.status.canonical_reason().unwrap_or("Error"),
        body.len(),
    );
    if write_all(transport, deadline, response.as_bytes())
        .await
        .is_ok()
    {
        let _ = poll_fn(|cx| {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            transport.poll_close(cx)
        })
        .await;
    }
}

/// Writes all of `bytes`, or fails at the deadline.
async fn write_all<T: Transport>(
    transport: &mut T,
    deadline: &mut melody_driver::BoxFuture,
    mut bytes: &[u8],
) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
            transport.poll_write_vectored(cx, &[IoSlice::new(bytes)])
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// A transport that first yields the bytes read past the upgrade request.
struct Prefixed<T> {
    prefix: Vec<u8>,
    read: usize,
    inner: T,
}

impl<T: Transport> Transport for Prefixed<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let left = &self.prefix[self.read..];
        if left.is_empty() {
            return self.inner.poll_read(cx, buf);
        }
        let n = left.len().min(buf.len());
        buf[..n].copy_from_slice(&left[..n]);
        self.read += n;
        if self.read == self.prefix.len() {
            self.prefix = Vec::new();
            self.read = 0;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write_vectored(cx, bufs)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_close(cx)
    }
}
