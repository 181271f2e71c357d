//! [`MelodyUpgrade`]: the WebSocket upgrade as an axum extractor.

use axum::body::Body;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Request, Response, StatusCode};
use hyper::upgrade::OnUpgrade;

use super::responses::plain;
use super::upgrade::upgrade;
use crate::Melody;

/// A request asking for a WebSocket upgrade, taken by an axum handler; its
/// [`serve`](MelodyUpgrade::serve) runs melody's checks and the request hook, then
/// answers 101 and opens the session (as [`handle_request`](super::handle_request)).
///
/// As an extractor it refuses a request that asks for no WebSocket as melody's
/// handshake check does: `426 Upgrade Required` with `Sec-WebSocket-Version: 13` when
/// it asks for no upgrade at all (a browser on the path), `400` when it asks for
/// another. As `Option<MelodyUpgrade>` it lets one handler serve both: `None`
/// for any other request, e.g. the page or an event stream.
///
/// ```no_run
/// use axum::{extract::{Request, State}, response::{Html, IntoResponse, Response}, routing::get, Router};
/// use melody_tokio::axum::MelodyUpgrade;
/// use melody_tokio::Melody;
///
/// async fn ws(upgrade: MelodyUpgrade, State(melody): State<Melody>) -> Response {
///     upgrade.serve(&melody).await
/// }
///
/// /// The page, or its socket, on one path.
/// async fn room(upgrade: Option<MelodyUpgrade>, State(melody): State<Melody>) -> Response {
///     match upgrade {
///         Some(upgrade) => upgrade.serve(&melody).await,
///         None => Html("<p>a page</p>").into_response(),
///     }
/// }
///
/// let app: Router = Router::new()
///     .route("/ws", get(ws))
///     .route("/room", get(room))
///     .with_state(Melody::new());
/// ```
#[derive(Debug)]
pub struct MelodyUpgrade {
    parts: Parts,
}

impl MelodyUpgrade {
    /// The request's headers (the request hook sees them too).
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The request's target: path and query.
    pub fn uri(&self) -> &axum::http::Uri {
        &self.parts.uri
    }

    /// Serves the upgrade with `melody`: 101 and a session, or the HTTP error that
    /// explains the refusal (melody's own or the request hook's), as
    /// [`handle_request`](super::handle_request) does.
    pub async fn serve(self, melody: &Melody) -> Response<Body> {
        upgrade(melody, self.parts, None).await
    }
}

/// Whether the request asks to become a WebSocket (`Upgrade: websocket`); the rest of
/// the handshake is checked when it is served.
fn asks_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|protocol| protocol.trim().eq_ignore_ascii_case("websocket"))
}

/// Takes the request's head for the session: what the handler extracts after it still
/// sees the headers and extensions, but not hyper's upgrade handle, which the session
/// needs for itself.
fn take(parts: &mut Parts) -> MelodyUpgrade {
    let on_upgrade = parts.extensions.remove::<OnUpgrade>();
    let (mut taken, ()) = Request::new(()).into_parts();
    taken.method = parts.method.clone();
    taken.uri = parts.uri.clone();
    taken.version = parts.version;
    taken.headers = parts.headers.clone();
    taken.extensions = parts.extensions.clone();
    if let Some(on_upgrade) = on_upgrade {
        taken.extensions.insert(on_upgrade);
    }
    MelodyUpgrade { parts: taken }
}

impl<S: Send + Sync> FromRequestParts<S> for MelodyUpgrade {
    type Rejection = Response<Body>;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(header::UPGRADE) {
            // As melody's own handshake check words it.
            let mut response = plain(
                StatusCode::UPGRADE_REQUIRED,
                "a WebSocket endpoint: upgrade to websocket, version 13",
            );
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                header::HeaderValue::from_static("13"),
            );
            return Err(response);
        }
        if !asks_websocket(&parts.headers) {
            return Err(plain(
                StatusCode::BAD_REQUEST,
                "not a WebSocket handshake: `Upgrade: websocket` missing",
            ));
        }
        Ok(take(parts))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for MelodyUpgrade {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(asks_websocket(&parts.headers).then(|| take(parts)))
    }
}
