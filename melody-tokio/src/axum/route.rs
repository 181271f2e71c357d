//! One path for both kinds of session: an event stream or a WebSocket, by what the
//! request asks for.

use axum::body::Body;
use axum::extract::Request;
use axum::http::Response;
use axum::routing::{get, MethodRouter};
use melody_core::is_event_stream_request;

use super::event_stream::event_stream;
use super::request_head;
use super::upgrade::upgrade;
use crate::Melody;

/// Serves `request` as the session it asks for: an event stream when it accepts
/// `text/event-stream` and asks for no upgrade (as an `EventSource` does; see
/// [`is_event_stream_request`]), else a WebSocket upgrade. Either way the request hook
/// judges it; see [`handle_event_stream`](super::handle_event_stream) and
/// [`handle_request`](super::handle_request).
///
/// A plain `GET` (a browser navigating to the path) is neither, and gets the
/// upgrade's refusal: `426 Upgrade Required` with `Sec-WebSocket-Version: 13`.
///
/// ```no_run
/// use axum::extract::{Request, State};
/// use axum::response::Response;
/// use melody_tokio::Melody;
///
/// async fn feed(State(melody): State<Melody>, request: Request) -> Response {
///     melody_tokio::axum::handle_session(&melody, request).await
/// }
/// ```
pub async fn handle_session(melody: &Melody, request: Request) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    if is_event_stream_request(&request_head(&parts)) {
        event_stream(melody, parts).await
    } else {
        upgrade(melody, parts, None).await
    }
}

/// A `GET` route serving [`handle_session`] with `melody`: mount it on a path and
/// that path serves `EventSource`s and WebSockets alike, the request hook judging
/// both. Add other methods to it as to any [`MethodRouter`] (below, a `POST` that
/// publishes).
///
/// ```no_run
/// use axum::{extract::{Path, State}, http::StatusCode, Router};
/// use melody_tokio::{Event, Melody, Verdict};
///
/// async fn publish(State(melody): State<Melody>, Path(id): Path<String>, body: String) -> StatusCode {
///     melody.publish_event(&format!("device/{id}"), Event::new(body));
///     StatusCode::ACCEPTED
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let melody = Melody::new();
/// // Each session follows the device named in its path.
/// melody.on_request(|info| async move {
///     match info.uri.path().strip_prefix("/devices/").and_then(|p| p.strip_suffix("/events")) {
///         Some(id) => Verdict::admit().subscribe(format!("device/{id}")),
///         None => Verdict::refuse(404, "no such device"),
///     }
/// });
/// let app = Router::new()
///     .route(
///         "/devices/{id}/events",
///         melody_tokio::axum::session_route(melody.clone()).post(publish),
///     )
///     .with_state(melody);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:5002").await?;
/// axum::serve(listener, app).await
/// # }
/// ```
pub fn session_route<S>(melody: Melody) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    get(move |request: Request| async move { handle_session(&melody, request).await })
}
