//! Event streams (Server-Sent Events) on the axum path: melody's checks, then the
//! request hook, then a `200 text/event-stream` whose body the session writes.

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};

use super::event_stream_pipe::event_stream_pipe;
use super::responses::{refusal, rejection};
use super::{connection_info, request_head};
use crate::Melody;

/// Answers `request` with an event stream served by `melody`: `200
/// text/event-stream`, whose body carries what is published to the session (see
/// [`Melody::publish_event`](melody_driver::Melody::publish_event)) until either
/// side ends it; or the HTTP error that explains the refusal: melody's own (403 for
/// an origin, 503 at the session cap or while closing) or the request hook's, with
/// its status, headers and reason.
///
/// The hook's verdict takes effect before the 200 is sent: its topics are subscribed
/// and its keys, state and limits are the session's from `on_connect` on. The request
/// is served as an event stream whatever its `Accept`; [`handle_session`](super::handle_session)
/// chooses between this and a WebSocket upgrade.
///
/// A slow client's stream backs up into the session's outbox, whose bound, drop
/// policy and write watchdog (`Config::write_wait`) apply as on a WebSocket. A client
/// that leaves ends the session (`on_disconnect` runs); a session that ends (closed,
/// shutdown) ends the response.
///
/// ```no_run
/// use axum::extract::{Request, State};
/// use axum::response::Response;
/// use melody_tokio::Melody;
///
/// async fn events(State(melody): State<Melody>, request: Request) -> Response {
///     melody_tokio::axum::handle_event_stream(&melody, request).await
/// }
/// ```
pub async fn handle_event_stream(melody: &Melody, request: Request<Body>) -> Response<Body> {
    let (parts, _body) = request.into_parts();
    event_stream(melody, parts).await
}

/// The event stream of a request whose body was set aside.
pub(crate) async fn event_stream(melody: &Melody, parts: Parts) -> Response<Body> {
    let head = request_head(&parts);
    let accept = match melody.check_event_stream(&head) {
        Ok(accept) => accept,
        Err(rejected) => return rejection(rejected),
    };
    let info = connection_info(&parts.extensions);
    let verdict = melody.judge(&head, info).await;
    if let Some(refused) = verdict.refusal() {
        return refusal(refused);
    }
    let (transport, body) = event_stream_pipe();
    // Spawned, never awaited: it may give its task up while quiet.
    tokio::spawn(
        melody
            .event_stream_connection(transport, head, verdict, info)
            .parkable(),
    );
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    for (name, value) in accept.response_headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    response
}
