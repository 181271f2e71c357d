//! HTTP integration (feature `axum`): upgrade a request inside an axum or hyper 1
//! handler and hand the connection to melody — olahol/melody's `HandleRequest` and
//! `HandleRequestWithKeys`. A page and the WebSocket endpoint then share one port.
//!
//! ```no_run
//! use axum::{extract::{Request, State}, routing::get, Router};
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
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use melody_core::{ConnectionInfo, Keys};

use crate::{Melody, TokioTransport};

/// Upgrades `request` to a WebSocket session served by `melody`, answering 101, or the
/// HTTP error that explains the refusal (400, 403, 426, 503).
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
    let remote_addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
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
            let info = ConnectionInfo {
                remote_addr,
                local_addr: None,
            };
            let transport = TokioTransport(TokioIo::new(upgraded));
            melody
                .upgraded_connection(transport, head, accept, keys, info)
                .await;
        }
    });
    response
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
