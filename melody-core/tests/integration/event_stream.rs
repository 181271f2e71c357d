//! Event-stream (Server-Sent Events) sessions: a `GET` that accepts
//! `text/event-stream` becomes a session of the same hub, framed as HTTP/1.1 chunks in
//! the WHATWG format, with the same outbox, topics, verdicts and deadlines.

use std::time::Duration;

use melody_core::http::StatusCode;
use melody_core::sse::{Event as Sse, EventError};
use melody_core::{
    Admission, Batch, Config, ConnectionInfo, DropPolicy, Event, Hub, Keys, MessageKind,
    OriginPolicy, Prepared, Publication, Refusal, SessionError, SessionId, SessionKind,
    SessionState, Target, Transmit,
};
use tungstenite::Message;

use crate::sim::{drive, find, step_bytes, step_events, upgrade_request, Reading, Sim, Step};

/// An `EventSource`-like request with the given extra header lines.
fn sse_request(extra: &str) -> String {
    format!(
        "GET /devices/7/events HTTP/1.1\r\nHost: localhost:5000\r\n\
         Accept: text/event-stream\r\nCache-Control: no-cache\r\n{extra}\r\n"
    )
}

/// A response split into its head and the chunks of its body; `ended` when the last
/// (empty) chunk came.
#[derive(Debug, Default)]
struct Chunked {
    head: String,
    chunks: Vec<String>,
    ended: bool,
}

fn parse_chunked(raw: &[u8]) -> Chunked {
    let end = find(raw, b"\r\n\r\n").expect("a complete head");
    let mut out = Chunked {
        head: String::from_utf8(raw[..end].to_vec()).expect("utf-8 head"),
        ..Chunked::default()
    };
    let mut rest = &raw[end + 4..];
    while !rest.is_empty() {
        let line_end = find(rest, b"\r\n").expect("a chunk size line");
        let size_text = std::str::from_utf8(&rest[..line_end]).expect("hex size");
        let size = usize::from_str_radix(size_text, 16).expect("hex size");
        rest = &rest[line_end + 2..];
        let chunk = &rest[..size];
        assert_eq!(&rest[size..size + 2], b"\r\n", "a chunk ends with CRLF");
        rest = &rest[size + 2..];
        if size == 0 {
            out.ended = true;
            assert!(rest.is_empty(), "nothing after the last chunk");
            break;
        }
        out.chunks
            .push(String::from_utf8(chunk.to_vec()).expect("utf-8 chunk"));
    }
    out
}

/// Opens an event-stream session in the simulation (its bytes stay in the pipe).
fn open_stream(s: &mut Sim, extra: &str) -> SessionId {
    let id = s.open_raw();
    s.peer(id).send_raw(sse_request(extra).as_bytes());
    s.pump();
    id
}

/// Everything the session wrote so far, as a chunked response.
fn written(s: &mut Sim, id: SessionId, so_far: &mut Vec<u8>) -> Chunked {
    so_far.extend(s.peer(id).take_raw());
    parse_chunked(so_far)
}

#[test]
fn a_stream_starts_with_its_head_and_retry_then_carries_events_in_the_whatwg_format() {
    let mut s = Sim::new(Config::default());
    let id = open_stream(&mut s, "");
    assert_eq!(s.hub.kind(id), Some(SessionKind::EventStream));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
    assert!(s.hub.subscribe(id, "device/7"));

    let named = Sse::new("line one\nline two\r\nline three")
        .name("update")
        .and_then(|e| e.id("41"))
        .expect("valid event");
    let d = s
        .hub
        .publish(s.now, &Publication::event(named), Target::Topic("device/7"));
    assert_eq!(d.queued, 1);
    // A plain text broadcast is a data-only event.
    s.hub.broadcast(s.now, &Prepared::text(""), Target::All);
    s.pump();

    let mut raw = Vec::new();
    let response = written(&mut s, id, &mut raw);
    let head = response.head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for header in [
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "transfer-encoding: chunked",
        "x-accel-buffering: no",
    ] {
        assert!(head.contains(header), "{header} missing from {head}");
    }
    assert!(!head.contains("access-control"), "no CORS without Origin");
    assert_eq!(
        response.chunks,
        vec![
            "retry: 3000\n\n".to_owned(),
            "event: update\nid: 41\ndata: line one\ndata: line two\ndata: line three\n\n"
                .to_owned(),
            "data: \n\n".to_owned(),
        ]
    );
    assert!(!response.ended);
    assert_eq!(s.hub.session_stats(id).map(|st| st.sent), Some(2));
}

#[test]
fn a_keepalive_comment_goes_out_every_ping_period_at_exact_times() {
    let period = Duration::from_secs(5);
    let config = Config::default()
        .ping_period(period)
        .pong_wait(Duration::from_secs(6))
        .event_stream_retry(None);
    let mut s = Sim::new(config);
    let id = open_stream(&mut s, "");
    let mut raw = Vec::new();
    assert!(written(&mut s, id, &mut raw).chunks.is_empty(), "no retry");
    for round in 1..=3u32 {
        s.advance(period - Duration::from_millis(1));
        let before = written(&mut s, id, &mut raw).chunks.len();
        assert_eq!(before as u32, round - 1, "nothing before {round} periods");
        s.advance(Duration::from_millis(1));
        let after = written(&mut s, id, &mut raw);
        assert_eq!(
            after.chunks.len() as u32,
            round,
            "a comment at {round} periods"
        );
        assert_eq!(after.chunks.last().map(String::as_str), Some(":\n\n"));
    }
    // No pong deadline: a stream that never speaks stays open past pong_wait.
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
}

#[test]
fn bad_event_names_and_ids_are_refused_by_the_api_and_never_sent() {
    assert_eq!(
        Sse::new("x").name("a\r\nevent: evil").unwrap_err(),
        EventError::LineBreakInName
    );
    assert_eq!(
        Sse::new("x").id("1\ndata: injected").unwrap_err(),
        EventError::LineBreakInId
    );
    assert_eq!(Sse::new("x").id("1\0").unwrap_err(), EventError::NulInId);
    // Data may carry line breaks: each becomes its own field, none can forge another.
    let wire = Sse::new("a\nevent: evil\rid: 9").to_wire();
    assert_eq!(wire, "data: a\ndata: event: evil\ndata: id: 9\n\n");
}

#[test]
fn binary_messages_skip_event_streams_counted_while_websockets_get_them() {
    let mut s = Sim::new(Config::default());
    let sse = open_stream(&mut s, "");
    let ws = s.connect();
    s.hub.subscribe(sse, "t");
    s.hub.subscribe(ws, "t");
    let d = s
        .hub
        .broadcast(s.now, &Prepared::binary([1, 2]), Target::Topic("t"));
    assert_eq!((d.queued, d.skipped, d.dropped), (1, 1, 0));
    let d = s.hub.send(sse, s.now, &Prepared::binary([3]));
    assert_eq!((d.queued, d.skipped), (0, 1));
    assert_eq!(s.hub.stats().skipped, 2);
    assert_eq!(s.hub.stats().dropped, 0, "a skip is not a drop");
    s.pump();
    assert_eq!(
        s.peer(ws).messages,
        vec![Message::Binary(vec![1, 2].into())]
    );
    let mut raw = Vec::new();
    assert_eq!(
        written(&mut s, sse, &mut raw).chunks,
        vec!["retry: 3000\n\n"]
    );
}

#[test]
fn one_publish_reaches_both_kinds_encoded_once_per_format() {
    let t0 = std::time::Instant::now();
    let mut hub: Hub = Hub::new(Config::default().event_stream_retry(None), t0).expect("config");
    let mut open = |request: &[u8]| {
        let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
        hub.handle_input(id, t0, request).expect("known");
        let _ = drive(&mut hub, id, t0);
        hub.subscribe(id, "room");
        id
    };
    let streams = [
        open(sse_request("").as_bytes()),
        open(sse_request("").as_bytes()),
    ];
    let sockets = [
        open(upgrade_request("").as_bytes()),
        open(upgrade_request("").as_bytes()),
    ];
    let outsider = open(sse_request("").as_bytes());
    hub.unsubscribe(outsider, "room");

    // Larger than the frames the core copies into each outbox (small ones are copied:
    // see `Outgoing::Inline`), so each format's one encoding is shared by reference.
    let data = "hello ".repeat(20);
    let event = Publication::event(Sse::new(data.as_str()).name("greeting").expect("name"));
    let d = hub.publish(t0, &event, Target::Topic("room"));
    assert_eq!(d.queued, 4);
    let first_buffer = |hub: &mut Hub, id| {
        let mut batch = Batch::new();
        assert_eq!(hub.poll_transmit(id, t0, &mut batch), Transmit::Write(1));
        let buf = batch.iter().next().expect("one buffer");
        (buf.as_ptr(), buf.to_vec())
    };
    let (sse_a, sse_bytes) = first_buffer(&mut hub, streams[0]);
    let (sse_b, _) = first_buffer(&mut hub, streams[1]);
    let (ws_a, ws_bytes) = first_buffer(&mut hub, sockets[0]);
    let (ws_b, _) = first_buffer(&mut hub, sockets[1]);
    assert_eq!(sse_a, sse_b, "both streams share one encoded event");
    assert_eq!(ws_a, ws_b, "both sockets share one encoded frame");
    let inner = format!("event: greeting\ndata: {data}\n\n");
    let chunk = format!("{:x}\r\n{inner}\r\n", inner.len());
    assert_eq!(sse_bytes, chunk.as_bytes());
    assert_eq!(ws_bytes, Prepared::text(&data).frame().to_vec());
    let mut batch = Batch::new();
    assert_eq!(
        hub.poll_transmit(outsider, t0, &mut batch),
        Transmit::Idle,
        "no one else"
    );
}

#[test]
fn a_slow_stream_drops_by_each_policy_with_exact_counts() {
    for policy in [
        DropPolicy::DropNewest,
        DropPolicy::DropOldest,
        DropPolicy::Disconnect,
    ] {
        let config = Config::default()
            .message_buffer_size(4)
            .drop_policy(policy)
            .event_stream_retry(None);
        let mut s = Sim::new(config);
        let id = open_stream(&mut s, "");
        s.peer(id).reading = Reading::Stalled;
        s.hub.subscribe(id, "t");
        let mut total = melody_core::Delivery::default();
        for i in 0..10 {
            total.merge(s.hub.publish(
                s.now,
                &Publication::text(format!("m{i}")),
                Target::Topic("t"),
            ));
            s.pump();
        }
        let stats = s.hub.session_stats(id).expect("known");
        match policy {
            DropPolicy::DropNewest => {
                assert_eq!((total.queued, total.dropped), (4, 6), "{policy:?}");
                assert_eq!(stats.dropped, 6);
            }
            DropPolicy::DropOldest => {
                // The first message is in flight and never evicted; 3 slots rotate.
                assert_eq!((total.queued, total.dropped), (10, 6), "{policy:?}");
                assert_eq!(stats.dropped, 6);
            }
            DropPolicy::Disconnect => {
                assert_eq!(total.disconnected, 1, "{policy:?}");
                assert_eq!(total.queued, 4);
                assert_eq!(total.closed, 5, "after the disconnect");
                assert!(s
                    .peer(id)
                    .events
                    .contains(&Event::Error(SessionError::SlowConsumer)));
            }
        }
        let reported: u64 = s
            .peer(id)
            .events
            .iter()
            .map(|e| match e {
                Event::Dropped { count } => *count,
                _ => 0,
            })
            .sum();
        assert_eq!(
            reported, stats.dropped,
            "{policy:?}: every drop is reported"
        );
        // Draining delivers what was kept, in order.
        s.peer(id).reading = Reading::All;
        s.drain(id);
        let mut raw = Vec::new();
        let body = written(&mut s, id, &mut raw);
        let kept: Vec<&str> = body.chunks.iter().map(String::as_str).collect();
        match policy {
            DropPolicy::DropNewest => assert_eq!(
                kept,
                [
                    "data: m0\n\n",
                    "data: m1\n\n",
                    "data: m2\n\n",
                    "data: m3\n\n"
                ]
            ),
            DropPolicy::DropOldest => assert_eq!(
                kept,
                [
                    "data: m0\n\n",
                    "data: m7\n\n",
                    "data: m8\n\n",
                    "data: m9\n\n"
                ]
            ),
            DropPolicy::Disconnect => {
                // The in-flight message, then the stream's end: no close frame to send.
                assert_eq!(kept, ["data: m0\n\n"]);
                assert!(body.ended, "the last chunk ends the body");
            }
        }
    }
}

#[test]
fn bytes_from_a_stream_client_are_discarded_and_eof_ends_it_without_error() {
    let mut s = Sim::new(Config::default());
    let id = open_stream(&mut s, "");
    for _ in 0..64 {
        s.peer(id).send_raw(&[b'x'; 16 * 1024]);
        s.pump();
    }
    assert_eq!(
        s.peer(id).events,
        vec![Event::Connect],
        "no message, no error"
    );
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    s.hub.handle_eof(id, s.now).expect("known");
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![Event::Connect, Event::Disconnect { undelivered: 0 }]
    );
    assert_eq!(s.hub.stats().finished, 1);
}

#[test]
fn closing_a_stream_writes_what_is_queued_then_the_last_chunk() {
    let mut s = Sim::new(Config::default().event_stream_retry(None));
    let id = open_stream(&mut s, "");
    s.hub.send(id, s.now, &Prepared::text("bye"));
    assert!(s
        .hub
        .close(id, s.now, melody_core::CloseCode::Away, "shutdown"));
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    assert_eq!(s.hub.send(id, s.now, &Prepared::text("late")).closed, 1);
    s.pump();
    let mut raw = Vec::new();
    let body = written(&mut s, id, &mut raw);
    assert_eq!(body.chunks, vec!["data: bye\n\n"]);
    assert!(body.ended);
    assert_eq!(
        s.peer(id).events,
        vec![Event::Connect, Event::Disconnect { undelivered: 0 }]
    );
}

#[test]
fn a_framework_served_stream_writes_bare_events_and_ends_without_bytes() {
    let t0 = std::time::Instant::now();
    let mut hub: Hub = Hub::new(Config::default(), t0).expect("config");
    let request = melody_core::http::Request::get("/events")
        .header("accept", "text/event-stream")
        .header("host", "example.com")
        .header("origin", "https://example.com")
        .body(())
        .expect("request");
    assert!(melody_core::is_event_stream_request(&request));
    let accept = hub.check_event_stream(&request).expect("same origin");
    assert_eq!(accept.allow_origin.as_deref(), Some("https://example.com"));
    let id = hub.open_event_stream(t0, request, ConnectionInfo::default(), Keys::new());
    hub.send(id, t0, &Prepared::text("a\nb"));
    let steps = drive(&mut hub, id, t0);
    assert_eq!(
        String::from_utf8(step_bytes(&steps)).expect("utf-8"),
        "retry: 3000\n\ndata: a\ndata: b\n\n"
    );
    assert!(hub.close(id, t0, melody_core::CloseCode::Away, ""));
    let steps = drive(&mut hub, id, t0);
    assert_eq!(step_bytes(&steps), Vec::<u8>::new(), "no bytes of its own");
    assert_eq!(steps.last(), Some(&Step::Finished));
    assert_eq!(step_events(&steps), vec![]);
    assert_eq!(
        hub.poll_event(id),
        Some(Event::Disconnect { undelivered: 0 }),
        "finished as its queue drained"
    );
}

#[test]
fn cross_origin_streams_get_cors_headers_when_allowed_and_403_when_not() {
    let config = Config::default().origin_policy(OriginPolicy::AllowList(vec![
        "https://*.example.com".into(),
    ]));
    let mut s = Sim::new(config);
    let allowed = open_stream(&mut s, "Origin: https://app.example.com\r\n");
    let mut raw = Vec::new();
    let head = written(&mut s, allowed, &mut raw).head.to_ascii_lowercase();
    assert!(
        head.contains("access-control-allow-origin: https://app.example.com\r\n"),
        "{head}"
    );
    assert!(
        head.contains("access-control-allow-credentials: true"),
        "{head}"
    );
    assert!(head.contains("vary: origin"), "{head}");

    let refused = open_stream(&mut s, "Origin: https://evil.test\r\n");
    let response = String::from_utf8(s.peer(refused).take_raw()).expect("utf-8");
    assert!(
        response.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{response}"
    );
    assert_eq!(s.hub.stats().rejected, 1);

    // Any origin: echoed, but never with credentials.
    let mut any = Sim::new(Config::default().origin_policy(OriginPolicy::Any));
    let id = open_stream(&mut any, "Origin: https://elsewhere.test\r\n");
    let mut raw = Vec::new();
    let head = written(&mut any, id, &mut raw).head.to_ascii_lowercase();
    assert!(head.contains("access-control-allow-origin: https://elsewhere.test"));
    assert!(!head.contains("allow-credentials"), "{head}");
}

#[test]
fn with_event_streams_off_such_a_request_is_refused_like_any_plain_get() {
    let mut s = Sim::new(Config::default().event_streams(false));
    let id = open_stream(&mut s, "");
    let response = String::from_utf8(s.peer(id).take_raw()).expect("utf-8");
    assert!(
        response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{response}"
    );
    assert!(
        response.contains("\r\nSec-WebSocket-Version: 13\r\n"),
        "{response}"
    );
}

#[test]
fn the_session_cap_counts_streams_and_refuses_past_it_with_503() {
    let mut s = Sim::new(Config::default().max_sessions(Some(1)));
    let _first = open_stream(&mut s, "");
    let second = open_stream(&mut s, "");
    let response = String::from_utf8(s.peer(second).take_raw()).expect("utf-8");
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert_eq!(s.hub.len(), 1);
}

/// A hub holding requests for verdicts, and one event-stream request held.
fn held_stream(config: Config) -> (Sim, SessionId) {
    let mut s = Sim::new(config);
    s.hub.set_request_verdicts(true);
    let id = open_stream(&mut s, "Authorization: Bearer t0k3n\r\n");
    (s, id)
}

#[test]
fn a_held_stream_is_admitted_subscribed_before_its_200_and_gets_what_was_published() {
    let (mut s, id) = held_stream(Config::default().event_stream_retry(None));
    assert_eq!(s.peer(id).events, vec![Event::Request]);
    assert_eq!(s.hub.kind(id), Some(SessionKind::EventStream));
    assert_eq!(s.hub.state(id), Some(SessionState::Handshake));
    assert!(s.hub.subscribe(id, "device/7"));
    s.hub.publish(
        s.now,
        &Publication::text("early"),
        Target::Topic("device/7"),
    );
    s.pump();
    assert_eq!(
        s.peer(id).take_raw(),
        Vec::<u8>::new(),
        "nothing before the verdict"
    );
    assert_eq!(s.hub.admit(id, s.now, Admission::new()), Ok(true));
    s.pump();
    let mut raw = Vec::new();
    let body = written(&mut s, id, &mut raw);
    assert!(body.head.starts_with("HTTP/1.1 200 OK"), "{}", body.head);
    assert_eq!(body.chunks, vec!["data: early\n\n"]);
    assert_eq!(s.peer(id).events, vec![Event::Request, Event::Connect]);
}

#[test]
fn a_held_stream_refused_gets_its_status_and_one_disconnect() {
    let (mut s, id) = held_stream(Config::default());
    let refusal = Refusal::new(StatusCode::UNAUTHORIZED, "token expired");
    assert_eq!(s.hub.refuse(id, s.now, refusal), Ok(true));
    s.pump();
    let response = String::from_utf8(s.peer(id).take_raw()).expect("utf-8");
    assert!(
        response.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{response}"
    );
    assert_eq!(
        s.peer(id)
            .count_events(|e| matches!(e, Event::Disconnect { .. })),
        1
    );
}

#[test]
fn a_held_stream_times_out_with_503_at_exactly_the_handshake_timeout() {
    let timeout = Duration::from_millis(1_500);
    let (mut s, id) = held_stream(Config::default().handshake_timeout(timeout));
    s.advance(timeout - Duration::from_millis(1));
    assert_eq!(s.peer(id).take_raw(), Vec::<u8>::new());
    s.advance(Duration::from_millis(1));
    let response = String::from_utf8(s.peer(id).take_raw()).expect("utf-8");
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(s
        .peer(id)
        .events
        .contains(&Event::Error(SessionError::HandshakeTimeout)));
}

#[test]
fn a_verdict_on_a_stream_whose_client_left_is_harmless() {
    let (mut s, id) = held_stream(Config::default());
    s.auto_release = false;
    s.hub.handle_eof(id, s.now).expect("known");
    s.pump();
    assert_eq!(s.hub.admit(id, s.now, Admission::new()), Ok(false));
    assert_eq!(
        s.peer(id).events,
        vec![Event::Request, Event::Disconnect { undelivered: 0 }]
    );
}

#[test]
fn a_held_stream_discards_what_its_client_sends() {
    let (mut s, id) = held_stream(Config::default());
    // Far more than max_handshake_size: a held WebSocket would be refused with 431.
    for _ in 0..4 {
        s.peer(id).send_raw(&[b'x'; 8 * 1024]);
        s.pump();
    }
    assert_eq!(s.hub.admit(id, s.now, Admission::new()), Ok(true));
    s.pump();
    assert_eq!(s.peer(id).events, vec![Event::Request, Event::Connect]);
}

#[test]
fn binary_writes_send_text_as_binary_frames_to_that_socket_only() {
    let mut s = Sim::new(Config::default());
    s.hub.set_request_verdicts(true);
    let binary = s.open_raw();
    s.peer(binary).send_raw(upgrade_request("").as_bytes());
    s.pump();
    assert_eq!(
        s.hub
            .admit(binary, s.now, Admission::new().binary_writes(true)),
        Ok(true)
    );
    s.pump();
    s.attach_client(binary);
    s.hub.set_request_verdicts(false);
    let text = s.connect();
    s.hub.broadcast(s.now, &Prepared::text("hi"), Target::All);
    s.hub.broadcast(s.now, &Prepared::binary([7]), Target::All);
    s.pump();
    assert_eq!(
        s.peer(binary).messages,
        vec![
            Message::Binary(b"hi".to_vec().into()),
            Message::Binary(vec![7].into())
        ]
    );
    assert_eq!(
        s.peer(text).messages,
        vec![Message::text("hi"), Message::Binary(vec![7].into())]
    );
}

#[test]
fn sent_events_of_a_stream_report_the_event_data() {
    let mut s = Sim::new(Config::default().sent_events(true));
    let id = open_stream(&mut s, "");
    s.hub.send(id, s.now, &Prepared::text("x\ny"));
    s.pump();
    assert!(s.peer(id).events.contains(&Event::Sent {
        kind: MessageKind::Text,
        payload: "x\ny".into(),
    }));
}
