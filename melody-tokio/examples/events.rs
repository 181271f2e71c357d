//! Device events over both kinds of session on one path: `GET /devices/{id}/events`
//! is a WebSocket upgrade or a Server-Sent Events stream (by the request's headers),
//! subscribed to topic `device/{id}`; `POST /devices/{id}/events` publishes to it.
//!
//! `cargo run --release -p melody-tokio --example events`, then open
//! `http://127.0.0.1:5002/` (`?device=ID` picks the device). `--addr HOST:PORT`
//! picks another address; `--compression off|shared|dedicated` compresses the WebSocket
//! sessions' messages with permessage-deflate (off by default; event streams never are).
//! The page shows an `EventSource` and a WebSocket on one device side by side, and a
//! form that publishes to it.
//!
//! - `GET /devices/{id}/events`: the session. The request hook subscribes it to
//!   `device/{id}` before its response is sent, so it misses nothing published once
//!   it is open; an `id` that is not ASCII letters, digits, `-` and `_` gets 400.
//!   Device topics keep a history (the last 100 messages, 10 minutes): a client that
//!   comes back gets what it missed, in order, then live events. An `EventSource`
//!   does this by itself (each event's `id:` is its position; the browser sends it
//!   back as `Last-Event-ID`). A WebSocket passes the last position it saw as the
//!   `last_event_id` query parameter (or a `Last-Event-ID` header); with
//!   `positions=1` it gets each message as `POSITION\nDATA` to learn them. When
//!   what was missed is no longer kept, an event stream gets a `melody-gap` event
//!   before what is kept, and a WebSocket the text `gap: REASON` after it.
//! - `POST /devices/{id}/events`: publishes the body as the event's data, named by
//!   the `X-Event-Name` header (`message` if absent); answers 202 with the delivery
//!   counts and the event's position as JSON. WebSocket sessions get the data alone,
//!   as a text message.
//!   `curl -d 21.5 -H 'X-Event-Name: reading' 127.0.0.1:5002/devices/7/events`
//! - `POST /devices/{id}/disconnect`: closes every session of the device (answers
//!   200 with how many as JSON), e.g. to watch an `EventSource` reconnect by itself
//!   after its `retry:` (one second here).
//!
//! Ctrl-C shuts down gracefully: the sessions are closed after what they have queued,
//! then axum stops.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use melody_tokio::axum::{session_route, ConnectionAddrs};
use melody_tokio::history::{HistoryLimits, HistoryRules};
use melody_tokio::{CloseCode, Config, Delivery, Event, Melody, RequestInfo, SessionKind, Verdict};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    examples_support::init_tracing();
    let addr = examples_support::addr("127.0.0.1:5002");
    // `--history N` keeps N messages per device (100 by default; the resume benchmark
    // asks for more). A replay goes through the session's outbox, so the outbox holds
    // at least a whole history.
    let kept = examples_support::flag("--history")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100);
    let history = HistoryLimits::new()
        .max_messages(kept)
        .max_age(Duration::from_secs(600));
    // A cut stream's browser comes back after a second rather than the default three.
    let config = Config::default()
        .event_stream_retry(Some(Duration::from_secs(1)))
        .message_buffer_size(kept.max(256) + 16)
        .history(HistoryRules::new().prefix("device/", history));
    let config = examples_support::compression(config)?;
    let melody = Melody::with_config(config)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    melody.on_request(|info| async move { admit(&info) });
    // Event streams get a `melody-gap` event from melody itself; WebSockets get this.
    melody.on_history_gap(|session, _topic, reason| {
        if session.kind() == SessionKind::WebSocket {
            session.write(&format!("gap: {}", reason.as_str()));
        }
    });

    let app = Router::new()
        .route("/", get(|| async { Html(examples_support::EVENTS_PAGE) }))
        .route(
            "/devices/{id}/events",
            session_route(melody.clone()).post(publish),
        )
        .route("/devices/{id}/disconnect", post(disconnect))
        .with_state(melody.clone());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("events: open http://{}/", listener.local_addr()?);
    let service = app.into_make_service_with_connect_info::<ConnectionAddrs>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shut_down_on_ctrl_c(melody))
        .await
}

/// The request hook: a session follows the device its path names.
fn admit(info: &RequestInfo) -> Verdict {
    let id = info
        .uri
        .path()
        .strip_prefix("/devices/")
        .and_then(|rest| rest.strip_suffix("/events"));
    let Some(id) = id.filter(|id| is_device_id(id)) else {
        return Verdict::refuse(400, "bad device id");
    };
    let mut verdict = Verdict::admit().subscribe(topic_of(id));
    if info.kind == SessionKind::WebSocket {
        // An event stream's `Last-Event-ID` is honoured without asking.
        if let Some(position) = query(info, "last_event_id").or(info.header("last-event-id")) {
            verdict = verdict.resume_from(position);
        }
        verdict = verdict.positions(query(info, "positions") == Some("1"));
    }
    verdict
}

/// The value of `name` in the request's query (positions and flags need no decoding).
fn query<'a>(info: &'a RequestInfo, name: &str) -> Option<&'a str> {
    info.uri
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// A device id: ASCII letters, digits, `-` and `_`, at least one.
fn is_device_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn topic_of(id: &str) -> String {
    format!("device/{id}")
}

/// `POST /devices/{id}/events`: the body, as an event named by `X-Event-Name`.
async fn publish(
    State(melody): State<Melody>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !is_device_id(&id) {
        return (StatusCode::BAD_REQUEST, "bad device id\n").into_response();
    }
    let name = match headers.get("x-event-name").map(|v| v.to_str()) {
        None => "message",
        Some(Ok(name)) => name,
        Some(Err(_)) => return (StatusCode::BAD_REQUEST, "bad event name\n").into_response(),
    };
    // A header value cannot hold a line break, so only an empty name is refused here.
    let event = match Event::new(body).name(name) {
        Ok(event) if !name.is_empty() => event,
        _ => return (StatusCode::BAD_REQUEST, "bad event name\n").into_response(),
    };
    let topic = topic_of(&id);
    let delivery = melody.publish_event(&topic, event);
    // The newest position: this event's, unless another publish came in between.
    let position = melody.last_position(&topic).map(|p| p.to_string());
    json(StatusCode::ACCEPTED, delivery_json(&delivery, position))
}

fn delivery_json(d: &Delivery, position: Option<String>) -> String {
    format!(
        r#"{{"queued":{},"dropped":{},"closed":{},"disconnected":{},"skipped":{},"position":"{}"}}"#,
        d.queued,
        d.dropped,
        d.closed,
        d.disconnected,
        d.skipped,
        position.unwrap_or_default()
    )
}

/// `POST /devices/{id}/disconnect`: closes the device's sessions; an event stream
/// ends its response, and the browser's `EventSource` reconnects after `retry:`.
async fn disconnect(State(melody): State<Melody>, Path(id): Path<String>) -> Response {
    if !is_device_id(&id) {
        return (StatusCode::BAD_REQUEST, "bad device id\n").into_response();
    }
    let topic = topic_of(&id);
    let closed = melody
        .sessions()
        .iter()
        .filter(|session| session.topics().contains(&topic))
        .map(|session| session.close_with(CloseCode::Away, "disconnected on request"))
        .filter(|&closed| closed)
        .count();
    json(StatusCode::OK, format!(r#"{{"closed":{closed}}}"#))
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

/// Resolves, telling axum to stop, once Ctrl-C was pressed and melody's sessions are
/// over. The sessions are closed first: axum's graceful shutdown waits for the event
/// streams' responses, which end only when their sessions do, and it does not wait
/// for upgraded WebSockets at all.
async fn shut_down_on_ctrl_c(melody: Melody) {
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("events: cannot listen for Ctrl-C ({e}); serving until killed");
        std::future::pending::<()>().await;
    }
    let report = melody
        .shutdown_with(Duration::from_secs(5), CloseCode::Away, "server restarting")
        .await;
    println!(
        "events: shut down: {} sessions closed, {} cut off at the deadline, \
         {} messages undelivered",
        report.closed, report.cut_off, report.undelivered
    );
}
