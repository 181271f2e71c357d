//! WebSocket upgrades on the axum path: melody's checks, then the request hook, then
//! the 101 and the session.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use melody_core::{Accept, Keys};

use super::responses::{plain, refusal, rejection};
use super::upgrade_transport::UpgradeTransport;
use super::{connection_info, request_head};
use crate::Melody;

/// Upgrades `request` to a WebSocket session served by `melody`, answering 101, or the
/// HTTP error that explains the refusal: melody's own (400, 403, 426, 503) or the
/// request hook's ([`Melody::on_request`](melody_driver::Melody::on_request)), with its
/// status, headers and reason.
///
/// The hook's verdict takes effect before the 101 is sent: its topics are subscribed
/// (what is published once the client has its 101 reaches it), and its keys, state
/// and limits are the session's from `on_connect` on.
///
/// The session's addresses come from the connection info axum put in the request:
/// both with [`ConnectionAddrs`](super::ConnectionAddrs); with axum's `SocketAddr`,
/// the peer's only ([`Session::local_addr`](crate::Session::local_addr) is `None`: see
/// [`ConnectionAddrs`](super::ConnectionAddrs) for why); neither when the router is
/// served without `into_make_service_with_connect_info`.
///
/// ```no_run
/// use axum::extract::{Request, State};
/// use axum::response::Response;
/// use melody_tokio::Melody;
///
/// async fn ws(State(melody): State<Melody>, request: Request) -> Response {
///     melody_tokio::axum::handle_request(&melody, request).await
/// }
/// ```
pub async fn handle_request(melody: &Melody, request: Request<Body>) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    upgrade(melody, parts, None).await
}

/// Like [`handle_request`], with the session's first keys (e.g. the authenticated user),
/// visible from `on_connect` on: olahol/melody's `HandleRequestWithKeys`.
///
/// The request hook still judges the request, and its refusals are sent; an admitted
/// session starts with the verdict's keys, topics and limits, and `keys` added to its
/// keys (a name both set takes the value from `keys`; see [`Verdict::keys`]).
///
/// [`Verdict::keys`]: melody_driver::api::Verdict::keys
pub async fn handle_request_with_keys(
    melody: &Melody,
    request: Request<Body>,
    keys: Keys,
) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    upgrade(melody, parts, Some(keys)).await
}

/// The upgrade of a request whose body was set aside; `keys` are added to the
/// verdict's (see [`handle_request_with_keys`]).
pub(crate) async fn upgrade(
    melody: &Melody,
    mut parts: Parts,
    keys: Option<Keys>,
) -> Response<Body> {
    let head = request_head(&parts);
    let accept = match melody.check_upgrade(&head) {
        Ok(accept) => accept,
        Err(rejected) => return rejection(rejected),
    };
    // hyper leaves this in the request when it can hand the connection over (HTTP/1.1
    // with `Connection: upgrade`); without it, a 101 would leave the client hanging.
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return plain(
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded (HTTP/1.1 only)",
        );
    };
    let info = connection_info(&parts.extensions);
    let verdict = melody.judge(&head, info).await;
    if let Some(refused) = verdict.refusal() {
        return refusal(refused);
    }
    let response = switching_protocols(&accept);
    let transport = UpgradeTransport::new(on_upgrade);
    let verdict = match keys {
        Some(keys) => verdict.keys(keys),
        None => verdict,
    };
    // Spawned, never awaited: it may give its task up while quiet.
    let connection = melody.judged_upgrade(transport, head, accept, verdict, info);
    tokio::spawn(connection.parkable());
    response
}

/// The 101 that completes the handshake.
fn switching_protocols(accept: &Accept) -> Response<Body> {
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
    if let Some(v) = accept
        .deflate
        .and_then(|d| HeaderValue::from_str(&d.response_header()).ok())
    {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, v);
    }
    response
}
