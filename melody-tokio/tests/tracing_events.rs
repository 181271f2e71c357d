//! With the `tracing` feature, melody reports a refused request, a protocol error and
//! dropped messages as events with their fields, the last two inside the session's
//! span (id, peer, path, kind). Captured here by a subscriber layer of the test's own.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melody_tokio::{Config, DropPolicy, Melody, Verdict};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tungstenite::Message;

/// One captured event: its message and fields, and the fields of the span it is in.
#[derive(Debug, Clone)]
struct Captured {
    fields: BTreeMap<String, String>,
    span: BTreeMap<String, String>,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.to_string());
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields.0);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != "melody" {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let span = ctx
            .event_span(event)
            .and_then(|s| s.extensions().get::<BTreeMap<String, String>>().cloned())
            .unwrap_or_default();
        if let Ok(mut all) = self.0.lock() {
            all.push(Captured {
                fields: fields.0,
                span,
            });
        }
    }
}

impl Capture {
    /// Waits (bounded) for an event whose message is `message`.
    fn wait_for(&self, message: &str) -> Captured {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = self.0.lock().ok().and_then(|all| {
                all.iter()
                    .find(|c| c.fields.get("message").map(String::as_str) == Some(message))
                    .cloned()
            }) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {message:?} event within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn a_refusal_a_protocol_error_and_drops_are_reported_with_their_fields() {
    let capture = Capture::default();
    tracing_subscriber::registry().with(capture.clone()).init();

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = Config::default()
        .max_message_size(1024)
        .message_buffer_size(1)
        .drop_policy(DropPolicy::DropNewest);
    let melody = Melody::with_config(config).expect("config");
    melody.on_request(|req| async move {
        if req.uri.path() == "/private" {
            Verdict::refuse(401, "token required").header("WWW-Authenticate", "Bearer")
        } else {
            Verdict::admit()
        }
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let m = melody.clone();
    rt.spawn(async move { melody_tokio::serve(&m, listener).await });

    // A refused request.
    let refused = tungstenite::client::client(
        format!("ws://{addr}/private"),
        TcpStream::connect(addr).expect("connect"),
    );
    assert!(refused.is_err(), "the hook refuses /private");
    let event = capture.wait_for("request refused");
    assert_eq!(event.fields.get("status").map(String::as_str), Some("401"));
    assert_eq!(
        event.fields.get("reason").map(String::as_str),
        Some("token required")
    );
    assert_eq!(
        event.fields.get("path").map(String::as_str),
        Some("/private")
    );

    // A protocol error: a message over max_message_size gets 1009.
    let stream = TcpStream::connect(addr).expect("connect");
    let (mut big, _) =
        tungstenite::client::client(format!("ws://{addr}/big"), stream).expect("handshake");
    big.send(Message::text("x".repeat(4096))).expect("send");
    let event = capture.wait_for("protocol error");
    assert_eq!(
        event.fields.get("close_code").map(String::as_str),
        Some("1009")
    );
    assert_eq!(
        event.fields.get("cause").map(String::as_str),
        Some("message_too_big")
    );
    assert_eq!(event.span.get("path").map(String::as_str), Some("/big"));
    assert_eq!(
        event.span.get("kind").map(String::as_str),
        Some("websocket")
    );
    assert!(event.span.contains_key("id") && event.span.contains_key("peer"));

    // Drops: a client that never reads while broadcasts pile up.
    let mut stalled = TcpStream::connect(addr).expect("connect");
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stalled,
        "GET /stalled HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .expect("request");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !melody
        .sessions()
        .iter()
        .any(|s| s.request().uri().path() == "/stalled")
    {
        assert!(
            Instant::now() < deadline,
            "the stalled client never connected"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let payload = "y".repeat(60 * 1024);
    let mut dropped = 0;
    for _ in 0..400 {
        dropped += melody.broadcast(&payload).dropped;
        if dropped > 0 {
            break;
        }
    }
    assert!(dropped > 0, "a full outbox of one message drops");
    let event = capture.wait_for("messages dropped: outbox full");
    assert!(event.fields.get("count").is_some_and(|c| c != "0"));
    assert_eq!(event.span.get("path").map(String::as_str), Some("/stalled"));
    melody.close();
}
