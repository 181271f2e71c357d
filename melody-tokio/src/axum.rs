//! HTTP integration (feature `axum`): serve melody's sessions from routes of an axum
//! (hyper 1) router, so a page, an API and the sessions share one port: olahol/melody's
//! `HandleRequest` and `HandleRequestWithKeys`, and event streams (Server-Sent Events).
//!
//! - [`handle_request`] upgrades a request to a WebSocket session; [`MelodyUpgrade`]
//!   is the same as an extractor.
//! - [`handle_event_stream`] answers a request with an event stream.
//! - [`handle_session`] does either, by what the request asks for, and
//!   [`session_route`] mounts it on a path.
//!
//! Each runs melody's own checks (handshake, origin, session cap), then the request
//! hook ([`Melody::on_request`](melody_driver::Melody::on_request)) as `serve` does:
//! its refusals are sent with their status, headers and reason, and an admitted
//! session has its verdict's keys, state, topics and limits before its response is
//! sent.
//!
//! ```no_run
//! use axum::{extract::{Request, State}, routing::get, Router};
//! use melody_tokio::axum::ConnectionAddrs;
//! use melody_tokio::Melody;
//!
//! async fn ws(State(melody): State<Melody>, request: Request) -> axum::response::Response {
//!     melody_tokio::axum::handle_request(&melody, request).await
//! }
//!
//! # async fn run() {
//! let melody = Melody::new();
//! let app = Router::new()
//!     .route("/", get(|| async { "a page" }))
//!     .route("/ws", get(ws))
//!     .route("/feed", melody_tokio::axum::session_route(melody.clone()))
//!     .with_state(melody);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await.unwrap();
//! // With `ConnectionAddrs`, sessions know both addresses (see `handle_request`).
//! let service = app.into_make_service_with_connect_info::<ConnectionAddrs>();
//! axum::serve(listener, service).await.unwrap();
//! # }
//! ```

mod event_stream;
mod event_stream_pipe;
mod extract;
mod responses;
mod route;
mod upgrade;
mod upgrade_transport;

pub use event_stream::handle_event_stream;
pub use extract::MelodyUpgrade;
pub use route::{handle_session, session_route};
pub use upgrade::{handle_request, handle_request_with_keys};

use std::net::SocketAddr;

use axum::extract::connect_info::Connected;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::Extensions;
use axum::serve::IncomingStream;
use melody_core::ConnectionInfo;
use tokio::net::{TcpListener, TcpStream};

/// Both addresses of a connection, as axum's connection info: serve the router with
/// `into_make_service_with_connect_info::<ConnectionAddrs>()` and the sessions that
/// [`handle_request`] and its siblings serve know their [`local_addr`](crate::Session::local_addr)
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

/// The connection's addresses, from the connection info in the request's extensions
/// (see [`handle_request`]).
fn connection_info(extensions: &Extensions) -> ConnectionInfo {
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
fn request_head(parts: &Parts) -> melody_core::Request {
    let mut head = melody_core::Request::new(());
    *head.method_mut() = parts.method.clone();
    *head.uri_mut() = parts.uri.clone();
    *head.version_mut() = parts.version;
    *head.headers_mut() = parts.headers.clone();
    head
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn extensions_with(extension: Option<impl Clone + Send + Sync + 'static>) -> Extensions {
        let mut extensions = Extensions::new();
        if let Some(extension) = extension {
            extensions.insert(extension);
        }
        extensions
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
            connection_info(&extensions_with(Some(ConnectInfo(addrs)))),
            ConnectionInfo {
                remote_addr: Some(PEER),
                local_addr: Some(OURS),
            }
        );
    }

    #[test]
    fn axums_socket_addr_gives_the_peer_only() {
        assert_eq!(
            connection_info(&extensions_with(Some(ConnectInfo(PEER)))),
            ConnectionInfo {
                remote_addr: Some(PEER),
                local_addr: None,
            }
        );
    }

    #[test]
    fn no_connection_info_gives_no_address() {
        assert_eq!(
            connection_info(&extensions_with(None::<()>)),
            ConnectionInfo::default()
        );
    }
}
