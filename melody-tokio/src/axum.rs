//! HTTP integration (feature `axum`): upgrade a request inside an axum or hyper 1
//! handler and hand the connection to melody — olahol/melody's `HandleRequest` and
//! `HandleRequestWithKeys`. A page and the WebSocket endpoint then share one port.
//!
//! ```no_run
//! use axum::{extract::{Request, State}, routing::get, Router};
//! use melody_tokio::axum::ConnectionAddrs;
//! use melody_tokio::Melody;
//!
//! async fn ws(State(melody): State<Melody>, request: Request) -> axum::response::Response {
//!     melody_tokio::axum::handle_request(&melody, request)
//! }
//!
//! # async fn run() {
//! let melody = Melody::new();
//! let app = Router::new()
//!     .route("/", get(|| async { "a page" }))
//!     .route("/ws", get(ws))
//!     .with_state(melody);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await.unwrap();
//! // With `ConnectionAddrs`, sessions know both addresses (see `handle_request`).
//! let service = app.into_make_service_with_connect_info::<ConnectionAddrs>();
//! axum::serve(listener, service).await.unwrap();
//! # }
//! ```

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::Connected;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::serve::IncomingStream;
use hyper_util::rt::TokioIo;
use melody_core::{ConnectionInfo, Keys};
use tokio::net::{TcpListener, TcpStream};

use crate::{Melody, TokioTransport};

/// Both addresses of a connection, as axum's connection info: serve the router with
/// `into_make_service_with_connect_info::<ConnectionAddrs>()` and the sessions that
/// [`handle_request`] upgrades know their [`local_addr`](crate::Session::local_addr)
/// as well as their [`remote_addr`](crate::Session::remote_addr).
///
/// axum's own connection info, `SocketAddr`, is the peer's address only, and a
/// handler has no other way to the socket: hyper owns it, and `axum::serve` hands the
/// upgraded connection over wrapped in a type private to hyper-util, so
/// `Upgraded::downcast` cannot get the `TcpStream` back. The local address must be
/// taken when axum accepts the connection, which is what this type does. Handlers can
/// extract it too: `ConnectInfo<ConnectionAddrs>`.
///
/// It is implemented for `axum::serve` on a `tokio::net::TcpListener` (a tapped one,
/// `ListenerExt::tap_io`, cannot have it: axum's blanket `Connected` impl for tapped
/// listeners overlaps). With another listener, or hyper without axum, put
/// `ConnectInfo(ConnectionAddrs { .. })` into the request's extensions yourself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionAddrs {
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// Our address on this connection: on a listener bound to `0.0.0.0`, the
    /// interface the peer reached. `None` if the system would not say.
    pub local_addr: Option<SocketAddr>,
}

impl ConnectionAddrs {
    fn of(stream: &TcpStream, remote_addr: SocketAddr) -> ConnectionAddrs {
        ConnectionAddrs {
            remote_addr,
            local_addr: stream.local_addr().ok(),
        }
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for ConnectionAddrs {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> ConnectionAddrs {
        ConnectionAddrs::of(stream.io(), *stream.remote_addr())
    }
}

/// Upgrades `request` to a WebSocket session served by `melody`, answering 101, or the
/// HTTP error that explains the refusal (400, 403, 426, 503).
///
/// The session's addresses come from the connection info axum put in the request:
/// both with [`ConnectionAddrs`]; with axum's `SocketAddr`, the peer's only
/// ([`Session::local_addr`](crate::Session::local_addr) is `None`: see
/// [`ConnectionAddrs`] for why); neither when the router is served without
/// `into_make_service_with_connect_info`.
pub fn handle_request(melody: &Melody, request: Request<Body>) -> Response<Body> {
    handle_request_with_keys(melody, request, Keys::new())
}

/// Like [`handle_request`], with the session's first keys (e.g. the authenticated user),
/// visible from `on_connect` on.
pub fn handle_request_with_keys(
    melody: &Melody,
    mut request: Request<Body>,
    keys: Keys,
) -> Response<Body> {
    let head = request_head(&request);
    let accept = match melody.check_upgrade(&head) {
        Ok(accept) => accept,
        Err(rejection) => return refusal(rejection.status, rejection.reason),
    };
    let info = connection_info(&request);
    let upgrade = hyper::upgrade::on(&mut request);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept.accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(v) = accept
        .protocol
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    let melody = melody.clone();
    tokio::spawn(async move {
        // The upgrade completes once the 101 is written; a failed one has no session.
        if let Ok(upgraded) = upgrade.await {
            let transport = TokioTransport(TokioIo::new(upgraded));
            melody
                .upgraded_connection(transport, head, accept, keys, info)
                .await;
        }
    });
    response
}

/// The connection's addresses, from the connection info in the request's extensions
/// (see [`handle_request`]).
fn connection_info(request: &Request<Body>) -> ConnectionInfo {
    let extensions = request.extensions();
    if let Some(ConnectInfo(addrs)) = extensions.get::<ConnectInfo<ConnectionAddrs>>() {
        return ConnectionInfo {
            remote_addr: Some(addrs.remote_addr),
            local_addr: addrs.local_addr,
        };
    }
    ConnectionInfo {
        remote_addr: extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr),
        local_addr: None,
    }
}

/// The request without its body, as melody keeps it.
fn request_head(request: &Request<Body>) -> melody_core::Request {
    let mut head = melody_core::Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = request.uri().clone();
    *head.version_mut() = request.version();
    *head.headers_mut() = request.headers().clone();
    head
}

fn refusal(status: StatusCode, reason: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("{reason}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn request_with(extension: Option<impl Clone + Send + Sync + 'static>) -> Request<Body> {
        let mut request = Request::new(Body::empty());
        if let Some(extension) = extension {
            request.extensions_mut().insert(extension);
        }
        request
    }

    const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), 50123);
    const OURS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 8080);

    #[test]
    fn connection_addrs_give_both_addresses() {
        let addrs = ConnectionAddrs {
            remote_addr: PEER,
            local_addr: Some(OURS),
        };
        assert_eq!(
            connection_info(&request_with(Some(ConnectInfo(addrs)))),
            ConnectionInfo {
                remote_addr: Some(PEER),
                local_addr: Some(OURS),
            }
        );
    }

    #[test]
    fn axums_socket_addr_gives_the_peer_only() {
        assert_eq!(
            connection_info(&request_with(Some(ConnectInfo(PEER)))),
            ConnectionInfo {
                remote_addr: Some(PEER),
                local_addr: None,
            }
        );
    }

    #[test]
    fn no_connection_info_gives_no_address() {
        assert_eq!(
            connection_info(&request_with(None::<()>)),
            ConnectionInfo::default()
        );
    }
}
