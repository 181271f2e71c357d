//! The axum integration over loopback: event streams and WebSockets on one route
//! (`session_route`), the request hook judging both, the `MelodyUpgrade` extractor,
//! and a POST that publishes. Clients are hand-written HTTP/1.1 and tungstenite.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::http1::{read_chunk, read_chunks_until, read_head, request, send};
use common::{recv, wait_until, Client, Log, IO_TIMEOUT};
use melody_tokio::axum::{session_route, ConnectionAddrs, MelodyUpgrade};
use melody_tokio::{Config, Event, Melody, RequestInfo, Verdict};
use tungstenite::client::IntoClientRequest;

const TOKEN: (&str, &str) = ("Authorization", "Bearer good");
const SSE: (&str, &str) = ("Accept", "text/event-stream");

/// The request hook: a bearer token, then a device id made of ASCII letters, digits,
/// `-` and `_`; an admitted device session follows topic `device/{id}`.
fn judge(info: &RequestInfo) -> Verdict {
    if info.header("authorization") != Some("Bearer good") {
        return Verdict::refuse(401, "missing or bad token")
            .header("WWW-Authenticate", r#"Bearer realm="devices""#);
    }
    let admitted = Verdict::admit().key("user", "ada".to_owned());
    let Some(rest) = info.uri.path().strip_prefix("/devices/") else {
        return admitted;
    };
    match rest.strip_suffix("/events").filter(|id| is_device_id(id)) {
        Some(id) => admitted.subscribe(format!("device/{id}")),
        None => Verdict::refuse(400, "bad device id"),
    }
}

fn is_device_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn publish(
    State(melody): State<Melody>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    if !is_device_id(&id) {
        return (StatusCode::BAD_REQUEST, "bad device id\n").into_response();
    }
    let name = headers
        .get("x-event-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("message");
    let Ok(event) = Event::new(body).name(name) else {
        return (StatusCode::BAD_REQUEST, "bad event name\n").into_response();
    };
    let d = melody.publish_event(&format!("device/{id}"), event);
    let json = format!(
        r#"{{"queued":{},"dropped":{},"closed":{},"disconnected":{},"skipped":{}}}"#,
        d.queued, d.dropped, d.closed, d.disconnected, d.skipped
    );
    (StatusCode::ACCEPTED, json).into_response()
}

async fn ws(upgrade: MelodyUpgrade, State(melody): State<Melody>) -> Response {
    upgrade.serve(&melody).await
}

/// An axum server on a loopback port, with the hook above and a log of connects and
/// disconnects (`connect:KIND`, `disconnect:KIND`) and of the `user` key at connect
/// (`user:NAME`).
struct Server {
    /// Runs the server; dropping it stops it.
    _rt: tokio::runtime::Runtime,
    melody: Melody,
    addr: SocketAddr,
    log: Log,
}

impl Server {
    fn start() -> Server {
        Server::start_with(Config::default())
    }

    fn start_with(config: Config) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let melody = Melody::with_config(config).expect("a valid config");
        melody.on_request(|info| async move { judge(&info) });
        let log = Log::default();
        let l = log.clone();
        melody.on_connect(move |s| {
            l.push(format!("connect:{:?}", s.kind()));
            l.push(format!(
                "user:{}",
                s.get::<String>("user").unwrap_or_default()
            ));
        });
        let l = log.clone();
        melody.on_disconnect(move |s| l.push(format!("disconnect:{:?}", s.kind())));
        let app = Router::new()
            .route(
                "/devices/{id}/events",
                session_route(melody.clone()).post(publish),
            )
            .route("/ws", get(ws))
            .with_state(melody.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        rt.spawn(async move {
            let service = app.into_make_service_with_connect_info::<ConnectionAddrs>();
            axum::serve(listener, service).await
        });
        Server {
            _rt: rt,
            melody,
            addr,
            log,
        }
    }

    /// A WebSocket client on `path`, with `headers`; the handshake's error if refused.
    fn websocket(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, tungstenite::Error> {
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .expect("a client request");
        for (name, value) in headers {
            request.headers_mut().insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                value.parse().expect("a header value"),
            );
        }
        let stream = std::net::TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        tungstenite::client::client(request, stream)
            .map(|(client, _)| client)
            .map_err(|e| match e {
                tungstenite::HandshakeError::Failure(e) => e,
                tungstenite::HandshakeError::Interrupted(_) => {
                    panic!("a blocking handshake was interrupted")
                }
            })
    }
}

/// The hub's default `retry:` (3 s), as the stream's first field.
const RETRY: &str = "retry: 3000\n\n";

#[test]
fn an_event_stream_gets_retry_then_a_published_event_inside_hyper_chunking() {
    let server = Server::start();
    let mut stream = send(server.addr, "GET", "/devices/d1/events", &[SSE, TOKEN], "");
    let head = read_head(&mut stream);
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    // Subscribed by the verdict before the 200 was sent.
    assert_eq!(server.melody.subscriber_count("device/d1"), 1);

    let mut body = String::new();
    read_chunks_until(&mut stream, &mut body, RETRY);
    let (posted, json) = request(
        server.addr,
        "POST",
        "/devices/d1/events",
        &[("X-Event-Name", "reading")],
        "21.5",
    );
    assert_eq!(posted.status, 202, "{json}");
    assert_eq!(
        json,
        r#"{"queued":1,"dropped":0,"closed":0,"disconnected":0,"skipped":0}"#
    );
    let event = "event: reading\ndata: 21.5\n\n";
    read_chunks_until(&mut stream, &mut body, event);
    // Once de-chunked, the body is the bare event stream: no chunk framing of the
    // session's own inside hyper's.
    assert_eq!(body, format!("{RETRY}{event}"));
}

#[test]
fn one_publish_reaches_event_streams_and_websockets_on_the_same_route() {
    let server = Server::start();
    let mut stream = send(server.addr, "GET", "/devices/d2/events", &[SSE, TOKEN], "");
    assert_eq!(read_head(&mut stream).status, 200);
    let mut ws = server
        .websocket("/devices/d2/events", &[TOKEN])
        .expect("the WebSocket upgrade on the session route");
    assert_eq!(server.melody.subscriber_count("device/d2"), 2);

    let (posted, json) = request(server.addr, "POST", "/devices/d2/events", &[], "on");
    assert_eq!(posted.status, 202);
    assert_eq!(
        json,
        r#"{"queued":2,"dropped":0,"closed":0,"disconnected":0,"skipped":0}"#
    );
    let mut body = String::new();
    read_chunks_until(&mut stream, &mut body, "event: message\ndata: on\n\n");
    assert_eq!(recv(&mut ws), "t:on");
}

#[test]
fn quiet_sessions_of_both_kinds_park_and_a_publish_brings_them_back() {
    let server = Server::start();
    let mut stream = send(server.addr, "GET", "/devices/d3/events", &[SSE, TOKEN], "");
    assert_eq!(read_head(&mut stream).status, 200);
    let mut ws = server
        .websocket("/devices/d3/events", &[TOKEN])
        .expect("the WebSocket upgrade on the session route");
    wait_until("both quiet sessions parked", || {
        server.melody.parked_connections() == 2
    });
    let (posted, _) = request(server.addr, "POST", "/devices/d3/events", &[], "up");
    assert_eq!(posted.status, 202);
    let mut body = String::new();
    read_chunks_until(&mut stream, &mut body, "event: message\ndata: up\n\n");
    assert_eq!(recv(&mut ws), "t:up");
    assert_eq!(server.melody.parked_connections(), 0, "data flowed: tasks");
}

#[test]
fn the_hook_refuses_event_streams_and_websockets_with_its_status_and_headers() {
    let server = Server::start();
    let (head, body) = request(server.addr, "GET", "/devices/d1/events", &[SSE], "");
    assert_eq!(head.status, 401, "{head:?}");
    assert_eq!(
        head.header("www-authenticate"),
        Some(r#"Bearer realm="devices""#)
    );
    assert_eq!(
        head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(body, "missing or bad token\n");

    for path in ["/devices/d1/events", "/ws"] {
        match server.websocket(path, &[]) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401, "{path}");
                assert_eq!(
                    response
                        .headers()
                        .get("www-authenticate")
                        .map(|v| v.as_bytes()),
                    Some(&br#"Bearer realm="devices""#[..]),
                    "{path}"
                );
                let body = response.body().as_deref().unwrap_or_default();
                assert_eq!(body, b"missing or bad token\n", "{path}");
            }
            Err(other) => panic!("{path}: expected a 401, got {other}"),
            Ok(_) => panic!("{path}: a WebSocket without a token was admitted"),
        }
    }
    assert!(server.log.entries().is_empty(), "{:?}", server.log);
    assert_eq!(server.melody.stats().rejected, 3);
}

#[test]
fn a_bad_device_id_gets_400_from_the_hook_and_from_the_post() {
    let server = Server::start();
    let (head, body) = request(server.addr, "GET", "/devices/d.1/events", &[SSE, TOKEN], "");
    assert_eq!((head.status, body.as_str()), (400, "bad device id\n"));
    match server.websocket("/devices/d%201/events", &[TOKEN]) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 400),
        Err(other) => panic!("expected a 400, got {other}"),
        Ok(_) => panic!("a WebSocket for a bad device id was admitted"),
    }
    let (head, body) = request(server.addr, "POST", "/devices/d.1/events", &[], "x");
    assert_eq!((head.status, body.as_str()), (400, "bad device id\n"));
}

#[test]
fn an_event_stream_client_leaving_fires_on_disconnect_once() {
    let server = Server::start();
    let mut stream = send(server.addr, "GET", "/devices/d3/events", &[SSE, TOKEN], "");
    assert_eq!(read_head(&mut stream).status, 200);
    server.log.wait_for("connect:EventStream");
    drop(stream);
    server.log.wait_for("disconnect:EventStream");
    wait_until("the session to be released", || server.melody.is_empty());
    // Later publishes find nobody; nothing fires a second time.
    let (posted, _) = request(server.addr, "POST", "/devices/d3/events", &[], "late");
    assert_eq!(posted.status, 202);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        server.log.count("disconnect:EventStream"),
        1,
        "{:?}",
        server.log
    );
    assert_eq!(server.melody.subscriber_count("device/d3"), 0);
}

#[test]
fn closing_an_event_stream_session_ends_its_response() {
    let server = Server::start();
    let mut stream = send(server.addr, "GET", "/devices/d4/events", &[SSE, TOKEN], "");
    assert_eq!(read_head(&mut stream).status, 200);
    let mut body = String::new();
    read_chunks_until(&mut stream, &mut body, RETRY);
    server.log.wait_for("connect:EventStream");
    server.melody.close();
    // What is left of the stream, then the last chunk: the response is complete.
    while read_chunk(&mut stream).is_some() {}
    server.log.wait_for("disconnect:EventStream");
}

#[test]
fn the_extractor_refuses_a_request_that_asks_for_no_websocket() {
    let server = Server::start();
    let (head, body) = request(server.addr, "GET", "/ws", &[TOKEN], "");
    assert_eq!(head.status, 426, "{body}");
    assert!(body.starts_with("a WebSocket endpoint"), "{body}");
    assert_eq!(head.header("sec-websocket-version"), Some("13"));
    // A page request on the session route is neither kind: the upgrade's refusal.
    let (head, body) = request(server.addr, "GET", "/devices/d5/events", &[TOKEN], "");
    assert_eq!(head.status, 426, "{body}");
    assert!(body.starts_with("a WebSocket endpoint"), "{body}");
    assert!(server.log.entries().is_empty(), "{:?}", server.log);
}

/// A client that stops reading: the pipe to hyper fills, then hyper's buffer and the
/// socket's, then the session's outbox (publishes start dropping), and the write
/// watchdog (`Config::write_wait`) ends the session.
#[test]
fn a_stalled_event_stream_backs_up_into_its_outbox_and_the_write_watchdog_ends_it() {
    let config = Config::default()
        .write_wait(Duration::from_millis(300))
        .message_buffer_size(8);
    let server = Server::start_with(config);
    let mut stream = send(server.addr, "GET", "/devices/d6/events", &[SSE, TOKEN], "");
    assert_eq!(read_head(&mut stream).status, 200);
    server.log.wait_for("connect:EventStream");
    let data = "x".repeat(64 * 1024);
    let mut dropped = 0;
    for _ in 0..2_000 {
        let delivery = server
            .melody
            .publish_event("device/d6", Event::new(data.clone()));
        dropped += delivery.dropped;
        if dropped > 0 || delivery.closed > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(dropped > 0, "the outbox never filled");
    server.log.wait_for("disconnect:EventStream");
    assert_eq!(server.log.count("disconnect:EventStream"), 1);
    drop(stream);
}

#[test]
fn the_extractor_upgrades_with_the_verdicts_keys_in_place_at_connect() {
    let server = Server::start();
    let mut ws = server.websocket("/ws", &[TOKEN]).expect("the upgrade");
    // The connect handler's last entry: both are in once it is.
    server.log.wait_for("user:ada");
    assert_eq!(server.log.entries(), ["connect:WebSocket", "user:ada"]);
    server.melody.broadcast("hello");
    assert_eq!(recv(&mut ws), "t:hello");
    drop(ws);
    server.log.wait_for("disconnect:WebSocket");
}
