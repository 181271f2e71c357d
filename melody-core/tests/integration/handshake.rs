//! The HTTP upgrade: what is accepted, what is refused (status, one-line reason, how the
//! connection ends), the handshake timeout, and upgrades done by an HTTP framework.

use std::time::Duration;

use melody_core::{
    Batch, Compression, Config, ConnectionInfo, Event, HandshakeRejection, Keys, OriginPolicy,
    Prepared, SessionError, SessionId, SessionState, Transmit,
};
use tungstenite::http::StatusCode;
use tungstenite::Message;

use crate::sim::*;

const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The exact 101 response to the harness's request (RFC 6455 sample key).
fn switching_protocols(protocol: Option<&str>) -> String {
    let protocol = protocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {ACCEPT}\r\n{protocol}\r\n"
    )
}

/// An HTTP response split into its status line, headers and body.
#[derive(Debug)]
struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8(bytes.to_vec()).expect("an HTTP response is text");
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(": ").expect("a header line");
                (k.to_string(), v.to_string())
            })
            .collect();
        Response {
            status_line,
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` on a new connection of `s` and checks that it is refused with
/// `status` and exactly `reason`: the error event first, then the response, then one
/// `Disconnect`, then `Transmit::Finished`, and nothing after.
fn expect_refusal(s: &mut Sim, request: &[u8], status: u16, reason: &str) -> Response {
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    s.hub.handle_input(id, s.now, request).unwrap();
    assert_eq!(s.hub.state(id), Some(SessionState::Handshake));
    let steps = drive(&mut s.hub, id, s.now);
    let status = StatusCode::from_u16(status).unwrap();
    let [Step::Event(Event::Error(SessionError::Handshake(rejection))), Step::Write(bytes), Step::Event(Event::Disconnect { undelivered: 0 }), Step::Finished] =
        &steps[..]
    else {
        panic!("unexpected steps for a refused handshake: {steps:?}");
    };
    assert_eq!(rejection.status, status);
    assert_eq!(rejection.reason, reason);
    let response = Response::parse(bytes);
    assert_eq!(
        response.status_line,
        format!(
            "HTTP/1.1 {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap()
        )
    );
    assert_eq!(
        response.body,
        format!("{reason}\n"),
        "a one-line reason body"
    );
    assert_eq!(
        response.header("Content-Length"),
        Some(response.body.len().to_string().as_str())
    );
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("Connection"), Some("close"));
    assert_eq!(response.header("Sec-WebSocket-Accept"), None);
    // Over and inert: no further event, still finished, never counted as open.
    assert_eq!(s.hub.poll_event(id), None);
    let mut out = Batch::new();
    assert_eq!(s.hub.poll_transmit(id, s.now, &mut out), Transmit::Finished);
    assert!(out.is_empty());
    assert_eq!(s.hub.state(id), Some(SessionState::Finished));
    assert!(s.hub.sessions().all(|open| open != id));
    assert!(s.hub.release(id).is_some());
    response
}

fn request_without(header: &str) -> String {
    upgrade_request("")
        .split_inclusive("\r\n")
        .filter(|line| {
            !line
                .to_ascii_lowercase()
                .starts_with(&header.to_ascii_lowercase())
        })
        .collect()
}

fn request_replacing(header: &str, line: &str) -> String {
    let mut request = request_without(header);
    request.truncate(request.len() - 2);
    format!("{request}{line}\r\n\r\n")
}

// ---- accepted ---------------------------------------------------------------------

#[test]
fn accepts_the_rfc_sample_key_with_101_and_its_accept_value() {
    let mut s = Sim::new(Config::default());
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    assert_eq!(s.hub.state(id), Some(SessionState::Handshake));
    assert_eq!(s.hub.len(), 0, "not open before the handshake completes");
    s.hub
        .handle_input(id, s.now, upgrade_request("").as_bytes())
        .unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(
        steps,
        vec![
            Step::Event(Event::Connect),
            Step::Write(switching_protocols(None).into_bytes()),
        ]
    );
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert_eq!(s.hub.len(), 1);
    assert_eq!(s.hub.sessions().collect::<Vec<_>>(), vec![id]);
    assert_eq!(s.hub.session(id).unwrap().protocol(), None);
    let stats = s.hub.stats();
    assert_eq!((stats.opened, stats.connected, stats.rejected), (1, 1, 0));
}

#[test]
fn the_chosen_subprotocol_is_echoed() {
    let config = Config::default().subprotocols(vec!["chat.v2".into(), "chat.v1".into()]);
    let mut s = Sim::new(config);
    // The client's order does not matter: ours does.
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    let request = upgrade_request("Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n");
    s.hub.handle_input(id, s.now, request.as_bytes()).unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(
        steps,
        vec![
            Step::Event(Event::Connect),
            Step::Write(switching_protocols(Some("chat.v2")).into_bytes()),
        ]
    );
    assert_eq!(s.hub.session(id).unwrap().protocol(), Some("chat.v2"));

    // Offered only one we do not speak: accepted without a protocol header.
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    let request = upgrade_request("Sec-WebSocket-Protocol: mqtt\r\n");
    s.hub.handle_input(id, s.now, request.as_bytes()).unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(step_bytes(&steps), switching_protocols(None).into_bytes());
    assert_eq!(s.hub.session(id).unwrap().protocol(), None);

    // And a real client agrees on the protocol.
    let id = s.connect_with(&upgrade_request("Sec-WebSocket-Protocol: chat.v1\r\n"));
    assert_eq!(s.hub.session(id).unwrap().protocol(), Some("chat.v1"));
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
}

#[test]
fn permessage_deflate_is_agreed_only_when_the_config_compresses() {
    let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    let answer = |config: Config| {
        let mut s = Sim::new(config);
        let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
        s.hub
            .handle_input(id, s.now, upgrade_request(offer).as_bytes())
            .unwrap();
        let steps = drive(&mut s.hub, id, s.now);
        String::from_utf8(step_bytes(&steps)).unwrap()
    };
    // Off (the default): the offer is ignored, the 101 is byte for byte the usual one.
    assert_eq!(answer(Config::default()), switching_protocols(None));
    let shared = answer(Config::default().compression(Compression::Shared));
    assert!(
        shared.ends_with(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n"
        ),
        "{shared}"
    );
    let dedicated = answer(Config::default().compression(Compression::Dedicated));
    assert!(
        dedicated.ends_with("Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
        "{dedicated}"
    );
}

#[test]
fn a_handshake_fed_one_byte_at_a_time_completes_on_the_last_byte() {
    let mut s = Sim::new(Config::default());
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    let request = upgrade_request("");
    let bytes = request.as_bytes();
    for (i, byte) in bytes[..bytes.len() - 1].iter().enumerate() {
        s.hub.handle_input(id, s.now, &[*byte]).unwrap();
        assert_eq!(s.hub.poll_event(id), None, "event after byte {i}");
        let mut out = Batch::new();
        assert_eq!(
            s.hub.poll_transmit(id, s.now, &mut out),
            Transmit::Idle,
            "output after byte {i}"
        );
        assert_eq!(s.hub.state(id), Some(SessionState::Handshake));
        assert!(s.hub.session(id).unwrap().request().is_none());
    }
    s.hub
        .handle_input(id, s.now, &bytes[bytes.len() - 1..])
        .unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(
        steps,
        vec![
            Step::Event(Event::Connect),
            Step::Write(switching_protocols(None).into_bytes()),
        ]
    );
    // Then a masked text frame, one byte at a time as well.
    let frame = client_frame(0x81, b"hello");
    for byte in &frame[..frame.len() - 1] {
        s.hub.handle_input(id, s.now, &[*byte]).unwrap();
        assert_eq!(s.hub.poll_event(id), None);
    }
    s.hub
        .handle_input(id, s.now, &frame[frame.len() - 1..])
        .unwrap();
    assert_eq!(s.hub.poll_event(id), Some(Event::Text("hello".into())));
    assert_eq!(s.hub.poll_event(id), None);
}

#[test]
fn frames_pipelined_with_the_request_are_processed() {
    let mut s = Sim::new(Config::default());
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    let mut input = upgrade_request("").into_bytes();
    input.extend(client_frame(0x81, b"first"));
    input.extend(client_frame(0x82, &[1, 2, 3]));
    input.extend(client_frame(0x89, b"are you there"));
    // Half of a fourth frame: kept for the next read.
    let fourth = client_frame(0x81, b"fourth");
    input.extend(&fourth[..4]);
    s.hub.handle_input(id, s.now, &input).unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    let mut expected_wire = switching_protocols(None).into_bytes();
    expected_wire.extend([0x8a, 13]);
    expected_wire.extend(b"are you there");
    assert_eq!(
        step_events(&steps),
        vec![
            Event::Connect,
            Event::Text("first".into()),
            Event::Binary(vec![1, 2, 3].into()),
        ]
    );
    assert_eq!(step_bytes(&steps), expected_wire, "101, then the pong");
    s.hub.handle_input(id, s.now, &fourth[4..]).unwrap();
    assert_eq!(s.hub.poll_event(id), Some(Event::Text("fourth".into())));
    assert_eq!(s.hub.session_stats(id).unwrap().received, 3);
}

#[test]
fn the_request_is_visible_after_the_handshake() {
    let mut s = Sim::new(Config::default());
    let info = ConnectionInfo {
        remote_addr: Some("192.0.2.7:41000".parse().unwrap()),
        local_addr: Some("198.51.100.1:5000".parse().unwrap()),
    };
    let id = s.hub.open(s.now, info, Keys::new());
    assert!(s.hub.session(id).unwrap().request().is_none());
    let request = upgrade_request("X-Token: abc123\r\nCookie: a=1; b=2\r\n");
    s.hub.handle_input(id, s.now, request.as_bytes()).unwrap();
    let view = s.hub.session(id).unwrap();
    let req = view.request().expect("the request is kept");
    assert_eq!(req.method(), "GET");
    assert_eq!(req.uri().path(), "/chat");
    assert_eq!(req.uri().query(), Some("room=1"));
    assert_eq!(req.headers()["host"], "localhost:5000");
    assert_eq!(req.headers()["x-token"], "abc123");
    assert_eq!(req.headers()["cookie"], "a=1; b=2");
    // The fields the handshake consumed are gone (see `RequestHead`).
    for consumed in [
        "sec-websocket-key",
        "sec-websocket-version",
        "upgrade",
        "connection",
    ] {
        assert!(!req.headers().contains_key(consumed), "{consumed}");
    }
    assert_eq!(view.remote_addr(), info.remote_addr);
    assert_eq!(view.local_addr(), info.local_addr);
    assert_eq!(view.id(), id);
    // A driver may move it out; later views show none.
    let taken = s.hub.take_request(id).unwrap();
    assert_eq!(taken.request().headers()["x-token"], "abc123");
    assert!(s.hub.session(id).unwrap().request().is_none());
}

// ---- refused ----------------------------------------------------------------------

#[test]
fn a_plain_get_is_refused_with_426_naming_version_13_and_half_an_upgrade_with_400() {
    let mut s = Sim::new(Config::default());
    let plain = b"GET /chat HTTP/1.1\r\nHost: localhost:5000\r\nAccept: text/html\r\n\r\n";
    let reason = "a WebSocket endpoint: upgrade to websocket, version 13";
    let response = expect_refusal(&mut s, plain, 426, reason);
    // The whole response, byte for byte.
    let body = format!("{reason}\n");
    assert_eq!(
        response.headers,
        vec![
            ("Content-Type".into(), "text/plain; charset=utf-8".into()),
            ("Content-Length".into(), body.len().to_string()),
            ("Connection".into(), "close".into()),
            ("Sec-WebSocket-Version".into(), "13".into()),
            ("Upgrade".into(), "websocket".into()),
        ]
    );
    // `Connection: Upgrade` without `Upgrade: websocket`.
    let request = request_without("Upgrade:");
    expect_refusal(
        &mut s,
        request.as_bytes(),
        400,
        "not a WebSocket handshake: `Upgrade: websocket` missing",
    );
    let stats = s.hub.stats();
    assert_eq!(
        (
            stats.opened,
            stats.connected,
            stats.rejected,
            stats.finished
        ),
        (2, 0, 2, 2)
    );
    assert_eq!(s.hub.len(), 0);
}

#[test]
fn a_wrong_or_missing_version_is_refused_with_426_naming_version_13() {
    let mut s = Sim::new(Config::default());
    let reason = "unsupported WebSocket version: only 13 is spoken";
    for request in [
        request_replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"),
        request_replacing("Sec-WebSocket-Version", "Sec-WebSocket-Version: 14"),
        request_without("Sec-WebSocket-Version"),
    ] {
        let response = expect_refusal(&mut s, request.as_bytes(), 426, reason);
        assert_eq!(response.status_line, "HTTP/1.1 426 Upgrade Required");
        assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"));
        assert_eq!(response.header("Upgrade"), Some("websocket"));
    }
}

#[test]
fn a_missing_or_invalid_key_is_refused_with_400() {
    let mut s = Sim::new(Config::default());
    expect_refusal(
        &mut s,
        request_without("Sec-WebSocket-Key").as_bytes(),
        400,
        "`Sec-WebSocket-Key` missing",
    );
    for bad in [
        "short==",
        "dGhlIHNhbXBsZSBub25jZQ",       // no padding
        "dGhlIHNhbXBsZSBub25jZR==",     // 16 bytes plus stray bits
        "dGhlIHNhbXBsZSBub25jZQ==dGhl", // too long
        "dGhlIHNhbXBsZSBub2*jZQ==",     // not base64
        "",                             // empty
    ] {
        let request = request_replacing("Sec-WebSocket-Key", &format!("Sec-WebSocket-Key: {bad}"));
        expect_refusal(
            &mut s,
            request.as_bytes(),
            400,
            "`Sec-WebSocket-Key` is not 16 bytes in base64",
        );
    }
}

#[test]
fn a_post_is_refused_with_405() {
    let mut s = Sim::new(Config::default());
    let request = upgrade_request("").replacen("GET", "POST", 1);
    let response = expect_refusal(&mut s, request.as_bytes(), 405, "only GET can upgrade");
    assert_eq!(response.status_line, "HTTP/1.1 405 Method Not Allowed");
    // With a body that never comes: refused as soon as the head is complete.
    let request = upgrade_request("Content-Length: 1000\r\n").replacen("GET", "PUT", 1);
    expect_refusal(&mut s, request.as_bytes(), 405, "only GET can upgrade");
}

#[test]
fn malformed_requests_are_refused_with_400() {
    let mut s = Sim::new(Config::default());
    let reason = "malformed HTTP/1.1 upgrade request";
    expect_refusal(
        &mut s,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        400,
        reason,
    );
    let http10 = upgrade_request("").replacen("HTTP/1.1", "HTTP/1.0", 1);
    expect_refusal(&mut s, http10.as_bytes(), 400, reason);
    expect_refusal(
        &mut s,
        request_without("Host:").as_bytes(),
        400,
        "`Host` missing",
    );
}

#[test]
fn cross_origin_is_refused_by_default_and_same_origin_accepted() {
    let mut s = Sim::new(Config::default());
    expect_refusal(
        &mut s,
        upgrade_request("Origin: https://evil.example\r\n").as_bytes(),
        403,
        "origin not allowed",
    );
    // Same host and port, but another port: another origin.
    expect_refusal(
        &mut s,
        upgrade_request("Origin: http://localhost:6000\r\n").as_bytes(),
        403,
        "origin not allowed",
    );
    expect_refusal(
        &mut s,
        upgrade_request("Origin: null\r\n").as_bytes(),
        403,
        "origin not allowed",
    );
    let id = s.connect_with(&upgrade_request("Origin: http://localhost:5000\r\n"));
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
    // No Origin at all: a non-browser client, accepted.
    let id = s.connect();
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
}

#[test]
fn origin_policy_any_and_allow_list() {
    let mut s = Sim::new(Config::default().origin_policy(OriginPolicy::Any));
    let id = s.connect_with(&upgrade_request("Origin: https://evil.example\r\n"));
    assert_eq!(s.peer(id).events, vec![Event::Connect]);

    let list = OriginPolicy::AllowList(vec![
        "https://app.example".into(),
        "https://*.tenants.example".into(),
        "http://127.0.0.1:*".into(),
    ]);
    let mut s = Sim::new(Config::default().origin_policy(list));
    for origin in [
        "https://app.example",
        "HTTPS://APP.example",
        "https://a.tenants.example",
        "https://b.c.tenants.example/",
        "http://127.0.0.1:5173",
        // The request's own host is always allowed.
        "http://localhost:5000",
    ] {
        let id = s.connect_with(&upgrade_request(&format!("Origin: {origin}\r\n")));
        assert_eq!(s.peer(id).events, vec![Event::Connect], "{origin}");
    }
    for origin in [
        "https://other.example",
        "http://app.example",
        "https://tenants.example",
        "https://a.tenants.example.evil.test",
        "http://127.0.0.2:5173",
        "null",
    ] {
        expect_refusal(
            &mut s,
            upgrade_request(&format!("Origin: {origin}\r\n")).as_bytes(),
            403,
            "origin not allowed",
        );
    }
    assert_eq!(s.hub.len(), 6);
}

#[test]
fn an_allowed_origin_that_could_never_match_is_refused_by_the_config() {
    for entry in [
        "app.example",
        "https://*",
        "https://a.*.example",
        "http://h:port",
    ] {
        let config = Config::default().origin_policy(OriginPolicy::AllowList(vec![entry.into()]));
        assert!(
            matches!(
                config.validate(),
                Err(melody_core::ConfigError::InvalidOrigin { entry: e, .. }) if e == entry
            ),
            "{entry}"
        );
    }
}

#[test]
fn at_the_session_cap_handshakes_get_503_and_open_sessions_keep_working() {
    let mut s = Sim::new(Config::default().max_sessions(Some(2))).with_app(echo_app);
    let a = s.connect();
    let b = s.connect();
    assert_eq!(s.hub.len(), 2);
    expect_refusal(
        &mut s,
        upgrade_request("").as_bytes(),
        503,
        "session limit reached, try again later",
    );
    assert_eq!(s.hub.len(), 2);
    for id in [a, b] {
        s.client_send(id, Message::text(format!("still here {id}")));
    }
    s.pump();
    assert_eq!(s.peer(a).texts(), vec![format!("still here {a}")]);
    assert_eq!(s.peer(b).texts(), vec![format!("still here {b}")]);

    // A closing session still counts against the cap.
    s.peer(a).reading = Reading::Stalled;
    assert!(s.hub.close(a, s.now, melody_core::CloseCode::Normal, ""));
    s.pump();
    assert_eq!(s.hub.state(a), Some(SessionState::Closing));
    assert_eq!(s.hub.len(), 2);
    // A handshake that started before is checked when it completes.
    let late = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    let request = upgrade_request("");
    s.hub
        .handle_input(late, s.now, &request.as_bytes()[..20])
        .unwrap();
    expect_refusal(
        &mut s,
        request.as_bytes(),
        503,
        "session limit reached, try again later",
    );
    // Once the close handshake is over, its place is free.
    s.peer(a).reading = Reading::All;
    s.pump();
    assert!(s.peer(a).disconnected());
    assert_eq!(s.hub.len(), 1);
    s.hub
        .handle_input(late, s.now, &request.as_bytes()[20..])
        .unwrap();
    let steps = drive(&mut s.hub, late, s.now);
    assert_eq!(step_events(&steps), vec![Event::Connect]);
    assert_eq!(s.hub.len(), 2);
    let stats = s.hub.stats();
    assert_eq!((stats.connected, stats.rejected), (3, 2));
}

#[test]
fn a_request_over_max_handshake_size_is_refused_with_431() {
    let reason = "handshake request exceeds max_handshake_size";
    let request = upgrade_request("");
    let exact = request.len();

    // Exactly the limit: accepted.
    let mut s = Sim::new(Config::default().max_handshake_size(exact));
    let id = s.connect();
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
    // One byte more: refused, whether it comes at once or one byte at a time.
    let mut s = Sim::new(Config::default().max_handshake_size(exact - 1));
    expect_refusal(&mut s, request.as_bytes(), 431, reason);
    // Byte by byte, it is refused as soon as the limit is reached without the
    // request being complete: one byte before its end.
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    for byte in &request.as_bytes()[..exact - 2] {
        s.hub.handle_input(id, s.now, &[*byte]).unwrap();
        assert_eq!(s.hub.poll_event(id), None);
    }
    s.hub
        .handle_input(id, s.now, &request.as_bytes()[exact - 2..exact - 1])
        .unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(
        step_events(&steps),
        vec![
            Event::Error(SessionError::Handshake(HandshakeRejection {
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                reason,
            })),
            Event::Disconnect { undelivered: 0 },
        ]
    );

    // The default limit (8 KiB) against a huge cookie, in pieces.
    let mut s = Sim::new(Config::default());
    let big = upgrade_request(&format!("Cookie: {}\r\n", "c".repeat(9000)));
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    for chunk in big.as_bytes()[..8 * 1024 - 1].chunks(1000) {
        s.hub.handle_input(id, s.now, chunk).unwrap();
        assert_eq!(s.hub.poll_event(id), None);
    }
    s.hub
        .handle_input(id, s.now, &big.as_bytes()[8 * 1024 - 1..])
        .unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(
        step_events(&steps),
        vec![
            Event::Error(SessionError::Handshake(HandshakeRejection {
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                reason,
            })),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_eq!(steps.last(), Some(&Step::Finished));
    let response = Response::parse(&step_bytes(&steps));
    assert_eq!(
        response.status_line,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // So many headers that the parser gives up counts as too large as well.
    let many: String = (0..200).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let mut s = Sim::new(Config::default());
    expect_refusal(&mut s, upgrade_request(&many).as_bytes(), 431, reason);
}

#[test]
fn a_refused_connection_finishes_only_once_its_response_is_written() {
    let mut s = Sim::new(Config::default());
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    s.hub
        .handle_input(id, s.now, request_without("Sec-WebSocket-Key").as_bytes())
        .unwrap();
    assert!(matches!(
        s.hub.poll_event(id),
        Some(Event::Error(SessionError::Handshake(_)))
    ));
    let mut out = Batch::new();
    assert_eq!(s.hub.poll_transmit(id, s.now, &mut out), Transmit::Write(1));
    let len = out.unwritten_bytes();
    // More bytes from the client are ignored while the answer goes out.
    s.hub
        .handle_input(id, s.now, b"GET / HTTP/1.1\r\n\r\n")
        .unwrap();
    s.hub
        .handle_transmitted(id, s.now, len - 1, &mut out)
        .unwrap();
    assert_eq!(s.hub.poll_event(id), None, "one byte still unwritten");
    assert_eq!(out.unwritten_bytes(), 1);
    assert_eq!(s.hub.poll_transmit(id, s.now, &mut out), Transmit::Write(0));
    assert_eq!(s.hub.state(id), Some(SessionState::Handshake));
    s.hub.handle_transmitted(id, s.now, 1, &mut out).unwrap();
    assert_eq!(
        s.hub.poll_event(id),
        Some(Event::Disconnect { undelivered: 0 })
    );
    assert_eq!(s.hub.poll_event(id), None);
    assert_eq!(s.hub.poll_transmit(id, s.now, &mut out), Transmit::Finished);
    assert!(out.is_empty(), "nothing more handed out");
    // Nothing revives it.
    s.hub.handle_eof(id, s.now).unwrap();
    s.hub.handle_timeout(s.now + Duration::from_secs(60));
    assert_eq!(s.hub.poll_event(id), None);
    assert_eq!(s.hub.stats().finished, 1);
}

#[test]
fn a_refusal_to_a_peer_that_never_reads_ends_at_the_handshake_timeout() {
    // A long write_wait, so that only the handshake deadline applies.
    let mut s = Sim::new(Config::default().write_wait(Duration::from_secs(30)));
    let id = s.open_raw();
    s.peer(id).reading = Reading::Stalled;
    s.peer(id).send_raw(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n");
    s.pump();
    s.advance(Duration::from_millis(9_900));
    assert_eq!(s.peer(id).events.len(), 1);
    assert!(!s.peer(id).disconnected());
    s.advance(Duration::from_millis(100));
    let events = &s.peer(id).events;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(
        events[0],
        Event::Error(SessionError::Handshake(HandshakeRejection {
            status: StatusCode::METHOD_NOT_ALLOWED,
            ..
        }))
    ));
    assert_eq!(events[1], Event::Error(SessionError::HandshakeTimeout));
    assert_eq!(events[2], Event::Disconnect { undelivered: 0 });
}

// ---- timeout ----------------------------------------------------------------------

#[test]
fn a_handshake_that_never_completes_is_dropped_at_exactly_the_timeout() {
    let mut s = Sim::new(Config::default());
    let silent = s.open_raw();
    let partial = s.open_raw();
    s.peer(partial)
        .send_raw(&upgrade_request("").as_bytes()[..30]);
    s.pump();
    assert_eq!(
        s.hub.poll_timeout(),
        Some(s.t0 + Duration::from_secs(10)),
        "the default handshake_timeout"
    );
    // Trickling bytes does not extend the deadline.
    for _ in 0..99 {
        s.advance(Duration::from_millis(100));
        s.peer(partial).send_raw(b"X");
        s.pump();
    }
    assert_eq!(s.elapsed(), Duration::from_millis(9_900));
    for id in [silent, partial] {
        assert_eq!(s.peer(id).events, vec![], "nothing before 10 s");
        assert_eq!(s.hub.state(id), Some(SessionState::Handshake));
    }
    assert_eq!(s.hub.connection_count(), 2);
    s.advance(Duration::from_millis(100));
    for id in [silent, partial] {
        assert_eq!(
            s.peer(id).events,
            vec![
                Event::Error(SessionError::HandshakeTimeout),
                Event::Disconnect { undelivered: 0 },
            ]
        );
        assert!(s.peer(id).released);
        assert_eq!(s.peer(id).take_raw(), Vec::<u8>::new(), "no response sent");
    }
    assert_eq!(s.hub.connection_count(), 0);
    let stats = s.hub.stats();
    assert_eq!((stats.opened, stats.connected, stats.finished), (2, 0, 2));
}

#[test]
fn the_handshake_timeout_follows_the_config_and_stops_at_connect() {
    let mut s = Sim::new(Config::default().handshake_timeout(Duration::from_millis(2_500)));
    s.advance(Duration::from_millis(700));
    let slow = s.open_raw();
    let fast = s.connect();
    assert_eq!(
        s.hub.poll_timeout(),
        Some(s.t0 + Duration::from_millis(3_200))
    );
    s.advance(Duration::from_millis(2_499));
    assert!(s.peer(slow).events.is_empty());
    s.advance(Duration::from_millis(1));
    assert_eq!(
        s.peer(slow).events,
        vec![
            Event::Error(SessionError::HandshakeTimeout),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    // The connected session is untouched by the handshake deadline.
    s.advance(Duration::from_secs(30));
    assert_eq!(s.peer(fast).events, vec![Event::Connect]);
    assert_eq!(s.hub.state(fast), Some(SessionState::Open));
}

// ---- framework upgrades -------------------------------------------------------------

fn framework_request(extra: &[(&str, &str)]) -> melody_core::Request {
    let mut builder = tungstenite::http::Request::builder()
        .method("GET")
        .uri("/ws?user=7")
        .header("Host", "localhost:5000")
        .header("Connection", "keep-alive, Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", KEY);
    for (k, v) in extra {
        builder = builder.header(*k, *v);
    }
    builder.body(()).unwrap()
}

#[test]
fn check_upgrade_and_open_upgraded_with_leftover_bytes() {
    let config = Config::default().subprotocols(vec!["v1".into()]);
    let mut s = Sim::new(config);
    let request = framework_request(&[("Sec-WebSocket-Protocol", "v1")]);
    let accept = s.hub.check_upgrade(&request).unwrap();
    assert_eq!(accept.accept_key, ACCEPT);
    assert_eq!(accept.protocol.as_deref(), Some("v1"));

    // The framework read one frame and a half past the request.
    let mut leftover = client_frame(0x81, b"early");
    let second = client_frame(0x81, b"late");
    leftover.extend(&second[..3]);
    let id = s.hub.open_upgraded(
        s.now,
        request,
        accept,
        leftover,
        ConnectionInfo::default(),
        Keys::new(),
    );
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert_eq!(s.hub.len(), 1);
    assert_eq!(s.hub.session(id).unwrap().protocol(), Some("v1"));
    assert_eq!(
        s.hub.session(id).unwrap().request().unwrap().uri().query(),
        Some("user=7")
    );
    // No 101 from us (the framework sent it): the first bytes are the echo.
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(
        step_events(&steps),
        vec![Event::Connect, Event::Text("early".into())]
    );
    // `drive` does not run the app; echo by hand, as the app would.
    assert_eq!(step_bytes(&steps), Vec::<u8>::new());
    let d = s.hub.send(id, s.now, &Prepared::text("early"));
    assert_eq!(d.queued, 1);
    s.hub.handle_input(id, s.now, &second[3..]).unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(step_events(&steps), vec![Event::Text("late".into())]);
    assert_eq!(step_bytes(&steps), Prepared::text("early").frame().to_vec());
    // No handshake deadline is left behind.
    s.advance(Duration::from_secs(20));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
}

#[test]
fn check_upgrade_refuses_like_the_built_in_handshake() {
    let mut s = Sim::new(Config::default().max_sessions(Some(1)));
    let missing_key = {
        let mut r = framework_request(&[]);
        r.headers_mut().remove("sec-websocket-key");
        r
    };
    assert_eq!(
        s.hub.check_upgrade(&missing_key),
        Err(HandshakeRejection {
            status: StatusCode::BAD_REQUEST,
            reason: "`Sec-WebSocket-Key` missing",
        })
    );
    assert_eq!(
        s.hub
            .check_upgrade(&framework_request(&[("Origin", "https://evil.example")]))
            .unwrap_err()
            .status,
        StatusCode::FORBIDDEN
    );
    let request = framework_request(&[]);
    let accept = s.hub.check_upgrade(&request).unwrap();
    let id: SessionId = s.hub.open_upgraded(
        s.now,
        request,
        accept,
        Vec::new(),
        ConnectionInfo::default(),
        Keys::new(),
    );
    // The framework-upgraded session counts against the cap.
    assert_eq!(
        s.hub.check_upgrade(&framework_request(&[])),
        Err(HandshakeRejection {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: "session limit reached, try again later",
        })
    );
    expect_refusal(
        &mut s,
        upgrade_request("").as_bytes(),
        503,
        "session limit reached, try again later",
    );
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    // Three refusals by `check_upgrade`, one by the built-in handshake: all counted.
    assert_eq!(s.hub.stats().rejected, 4);
}

#[test]
fn a_plain_get_gets_the_configured_page_and_the_connection_ends_cleanly() {
    let page = melody_core::HttpPage::at("/", "<p>hello</p>");
    let mut s = Sim::new(melody_core::Config::default().http_page(Some(page)));
    let id = s.open_raw();
    s.peer(id)
        .send_raw(b"GET / HTTP/1.1\r\nHost: localhost:5000\r\nAccept: text/html\r\n\r\n");
    s.pump();
    let response = String::from_utf8(s.peer(id).take_raw()).unwrap();
    assert_eq!(
        response,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 12\r\n\
         Connection: close\r\n\r\n<p>hello</p>"
    );
    // No error: a page was asked for and served.
    assert_eq!(
        s.peer(id).events,
        vec![melody_core::Event::Disconnect { undelivered: 0 }]
    );
    assert_eq!(s.hub.stats().rejected, 0);
    // Upgrades on the same hub still work.
    let ws = s.connect();
    assert!(s.hub.session(ws).is_some());
    assert_eq!(s.hub.len(), 1);
}

#[test]
fn the_page_is_served_only_at_its_paths_and_other_plain_gets_get_426() {
    let page = melody_core::HttpPage::at("/", "<p>hello</p>").also_at("/room/*");
    let mut s = Sim::new(melody_core::Config::default().http_page(Some(page)));
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: localhost:5000\r\n\r\n");
    for (path, status) in [
        ("/", "200 OK"),
        ("/?from=link", "200 OK"),
        ("/room/rust", "200 OK"),
        ("/echo", "426 Upgrade Required"),
        ("/room/rust/ws", "426 Upgrade Required"),
        ("/index.html", "426 Upgrade Required"),
    ] {
        let id = s.open_raw();
        s.peer(id).send_raw(get(path).as_bytes());
        s.pump();
        let response = String::from_utf8(s.peer(id).take_raw()).unwrap();
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{path}: {response}"
        );
        if status.starts_with("426") {
            assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        }
    }
    assert_eq!(s.hub.stats().rejected, 3);
}

#[test]
fn a_page_path_that_could_never_match_is_refused_by_validate() {
    let config =
        melody_core::Config::default().http_page(Some(melody_core::HttpPage::at("chat", "<p>hi")));
    assert!(matches!(
        config.validate(),
        Err(melody_core::ConfigError::InvalidPagePath { .. })
    ));
}
