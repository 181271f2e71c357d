//! The request verdict: with `set_request_verdicts(true)`, a request that passes the
//! hub's checks waits for `admit` or `refuse`, under the handshake timeout.

use std::time::Duration;

use melody_core::http::header::{HeaderValue, WWW_AUTHENTICATE};
use melody_core::http::StatusCode;
use melody_core::{
    Admission, Config, DropPolicy, Event, Prepared, Refusal, SessionError, SessionId, SessionState,
};
use tungstenite::Message;

use crate::sim::{upgrade_request, Sim};

/// A hub holding requests for verdicts, and one peer whose request is held.
fn held(config: Config) -> (Sim, SessionId) {
    let mut s = Sim::new(config);
    s.hub.set_request_verdicts(true);
    let id = s.open_raw();
    s.peer(id)
        .send_raw(upgrade_request("Authorization: Bearer t0k3n\r\n").as_bytes());
    s.pump();
    (s, id)
}

#[test]
fn a_held_request_reports_request_shows_it_and_writes_nothing_until_admitted() {
    let (mut s, id) = held(Config::default());
    assert_eq!(s.peer(id).events, vec![Event::Request]);
    assert_eq!(s.hub.state(id), Some(SessionState::Handshake));
    assert_eq!(s.peer(id).take_raw(), Vec::<u8>::new(), "no answer yet");
    let request = s.hub.request(id).expect("the held request");
    assert_eq!(request.uri().path(), "/chat");
    assert_eq!(
        request.headers().get("authorization").map(|v| v.as_bytes()),
        Some(&b"Bearer t0k3n"[..])
    );
    assert_eq!(s.hub.admit(id, s.now, Admission::new()), Ok(true));
    s.pump();
    let head = s.attach_client(id);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(s.peer(id).events, vec![Event::Request, Event::Connect]);
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert!(s.hub.request(id).is_some(), "still visible once open");
    // A second verdict does nothing.
    assert_eq!(s.hub.admit(id, s.now, Admission::new()), Ok(false));
    let refusal = Refusal::new(StatusCode::FORBIDDEN, "late");
    assert_eq!(s.hub.refuse(id, s.now, refusal), Ok(false));
    s.client_send(id, Message::text("hi"));
    s.pump();
    assert_eq!(s.peer(id).events.last(), Some(&Event::Text("hi".into())));
    assert_eq!(s.hub.stats().connected, 1);
}

#[test]
fn frames_sent_before_the_verdict_are_kept_for_the_session() {
    let (mut s, id) = held(Config::default());
    // A masked text frame "ok" sent before the answer.
    s.peer(id)
        .send_raw(&[0x81, 0x82, 1, 2, 3, 4, b'o' ^ 1, b'k' ^ 2]);
    s.pump();
    assert_eq!(s.hub.admit(id, s.now, Admission::new()), Ok(true));
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![Event::Request, Event::Connect, Event::Text("ok".into())]
    );
}

#[test]
fn a_refusal_answers_401_with_its_header_and_reason_then_ends() {
    let (mut s, id) = held(Config::default());
    let refusal = Refusal::new(StatusCode::UNAUTHORIZED, "token expired")
        .header(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    assert_eq!(s.hub.refuse(id, s.now, refusal), Ok(true));
    s.pump();
    let response = String::from_utf8(s.peer(id).take_raw()).expect("utf-8");
    assert!(
        response.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "{response}"
    );
    assert!(
        response.contains("\r\nwww-authenticate: Bearer\r\n"),
        "{response}"
    );
    assert!(
        response.contains("\r\nContent-Length: 14\r\n"),
        "{response}"
    );
    assert!(response.ends_with("\r\n\r\ntoken expired\n"), "{response}");
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Request,
            Event::Error(SessionError::Refused {
                status: 401,
                reason: "token expired".into()
            }),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    let stats = s.hub.stats();
    assert_eq!((stats.rejected, stats.connected, stats.finished), (1, 0, 1));
}

#[test]
fn a_refusal_status_outside_4xx_5xx_becomes_500_and_framing_headers_are_ours() {
    let (mut s, id) = held(Config::default());
    let refusal = Refusal::new(StatusCode::OK, "no").header(
        melody_core::http::header::CONTENT_LENGTH,
        HeaderValue::from_static("999"),
    );
    assert_eq!(refusal.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(s.hub.refuse(id, s.now, refusal), Ok(true));
    s.pump();
    let response = String::from_utf8(s.peer(id).take_raw()).expect("utf-8");
    assert!(response.starts_with("HTTP/1.1 500 "), "{response}");
    assert!(!response.contains("999"), "{response}");
}

#[test]
fn no_verdict_by_the_handshake_timeout_answers_503_at_exactly_that_instant() {
    let timeout = Duration::from_millis(2_000);
    let (mut s, id) = held(Config::default().handshake_timeout(timeout));
    assert_eq!(s.hub.poll_timeout(), Some(s.t0 + timeout));
    s.advance(timeout - Duration::from_millis(1));
    assert_eq!(s.peer(id).events, vec![Event::Request], "nothing before");
    assert_eq!(s.peer(id).take_raw(), Vec::<u8>::new());
    s.advance(Duration::from_millis(1));
    let response = String::from_utf8(s.peer(id).take_raw()).expect("utf-8");
    assert!(
        response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{response}"
    );
    assert!(
        response.ends_with("request verdict timed out\n"),
        "{response}"
    );
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Request,
            Event::Error(SessionError::HandshakeTimeout),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_eq!(s.hub.stats().rejected, 1);
}

#[test]
fn a_verdict_after_the_peer_left_is_harmless() {
    let (mut s, id) = held(Config::default());
    s.auto_release = false;
    s.hub.handle_eof(id, s.now).expect("known");
    s.pump();
    assert_eq!(s.hub.admit(id, s.now, Admission::new()), Ok(false));
    let refusal = Refusal::new(StatusCode::UNAUTHORIZED, "late");
    assert_eq!(s.hub.refuse(id, s.now, refusal), Ok(false));
    s.pump();
    assert_eq!(
        s.peer(id)
            .count_events(|e| matches!(e, Event::Disconnect { .. })),
        1
    );
    assert_eq!(s.peer(id).events.len(), 2, "{:?}", s.peer(id).events);
    assert_eq!(s.peer(id).take_raw(), Vec::<u8>::new());
    s.hub.release(id);
    assert_eq!(
        s.hub.admit(id, s.now, Admission::new()),
        Err(melody_core::UnknownSession)
    );
}

#[test]
fn bytes_past_max_handshake_size_while_held_are_refused_with_431() {
    let (mut s, id) = held(Config::default());
    let max = s.hub.config().max_handshake_size;
    s.peer(id).send_raw(&vec![0u8; max + 1]);
    s.pump();
    let response = String::from_utf8(s.peer(id).take_raw()).expect("utf-8");
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    assert!(s.peer(id).disconnected());
    assert_eq!(
        s.hub.admit(id, s.now, Admission::new()),
        Err(melody_core::UnknownSession),
        "released by the harness"
    );
}

#[test]
fn a_publish_between_subscribe_and_admit_arrives_after_the_101_in_order() {
    let (mut s, id) = held(Config::default());
    assert!(s.hub.subscribe(id, "room"));
    for text in ["one", "two"] {
        let d = s.hub.broadcast(
            s.now,
            &Prepared::text(text),
            melody_core::Target::Topic("room"),
        );
        assert_eq!(d.queued, 1);
    }
    s.pump();
    assert_eq!(
        s.peer(id).take_raw(),
        Vec::<u8>::new(),
        "held behind the 101"
    );
    assert_eq!(s.hub.admit(id, s.now, Admission::new()), Ok(true));
    let d = s.hub.broadcast(
        s.now,
        &Prepared::text("three"),
        melody_core::Target::Topic("room"),
    );
    assert_eq!(d.queued, 1);
    s.pump();
    let head = s.attach_client(id);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(s.peer(id).texts(), vec!["one", "two", "three"]);
}

#[test]
fn a_refusal_drops_what_was_published_while_held() {
    let (mut s, id) = held(Config::default());
    assert!(s.hub.subscribe(id, "room"));
    let _ = s.hub.broadcast(
        s.now,
        &Prepared::text("x"),
        melody_core::Target::Topic("room"),
    );
    let refusal = Refusal::new(StatusCode::FORBIDDEN, "no");
    assert_eq!(s.hub.refuse(id, s.now, refusal), Ok(true));
    s.pump();
    let response = String::from_utf8(s.peer(id).take_raw()).expect("utf-8");
    assert!(response.ends_with("\r\n\r\nno\n"), "{response}");
    assert_eq!(s.hub.stats().dropped, 1);
    assert_eq!(s.hub.subscriber_count("room"), 0);
}

#[test]
fn a_per_session_max_message_size_closes_with_1009_above_it() {
    let (mut s, small) = held(Config::default());
    assert_eq!(
        s.hub
            .admit(small, s.now, Admission::new().max_message_size(100)),
        Ok(true)
    );
    s.pump();
    s.attach_client(small);
    let other = s.open_raw();
    s.peer(other).send_raw(upgrade_request("").as_bytes());
    s.pump();
    // The other session keeps the config's limit (65536).
    s.hub.admit(other, s.now, Admission::new()).expect("known");
    s.pump();
    s.attach_client(other);
    s.client_send(other, Message::binary(vec![1u8; 1000]));
    s.client_send(small, Message::binary(vec![1u8; 100]));
    s.pump();
    assert_eq!(s.peer(small).close_received(), None, "100 bytes fit");
    s.client_send(small, Message::binary(vec![1u8; 101]));
    s.pump();
    assert_eq!(s.peer(small).close_received().map(|c| c.0), Some(1009));
    assert!(s
        .peer(small)
        .events
        .contains(&Event::Error(SessionError::MessageTooBig {
            size: 101,
            max: 100
        })));
    assert_eq!(s.peer(other).close_received(), None);
    assert_eq!(
        s.peer(other)
            .count_events(|e| matches!(e, Event::Binary(_))),
        1
    );
}

#[test]
fn a_per_session_max_message_size_may_raise_the_configs() {
    let (mut s, id) = held(Config::default().max_message_size(100));
    assert_eq!(
        s.hub
            .admit(id, s.now, Admission::new().max_message_size(1000)),
        Ok(true)
    );
    s.pump();
    s.attach_client(id);
    s.client_send(id, Message::text("x".repeat(1000)));
    s.pump();
    assert_eq!(s.peer(id).close_received(), None, "1000 bytes fit");
    assert!(s
        .peer(id)
        .events
        .contains(&Event::Text("x".repeat(1000).into())));
    s.client_send(id, Message::text("x".repeat(1001)));
    s.pump();
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1009));
}

/// A session admitted with `admission` under an 8-message, drop-newest outbox, whose
/// peer has stopped reading.
fn admitted_and_stalled(admission: Admission) -> (Sim, SessionId) {
    let config = Config::default()
        .message_buffer_size(8)
        .drop_policy(DropPolicy::DropNewest);
    let (mut s, id) = held(config);
    assert_eq!(s.hub.admit(id, s.now, admission), Ok(true));
    s.pump();
    s.attach_client(id);
    s.peer(id).reading = crate::sim::Reading::Stalled;
    (s, id)
}

#[test]
fn an_admission_setting_both_limits_keeps_both() {
    let admission = Admission::new()
        .max_message_size(100)
        .message_buffer_size(2);
    let (mut s, id) = admitted_and_stalled(admission);
    let sent: Vec<_> = (0..4)
        .map(|i| s.hub.send(id, s.now, &Prepared::text(format!("m{i}"))))
        .collect();
    assert_eq!(sent.iter().map(|d| d.queued).sum::<usize>(), 2);
    assert_eq!(sent.iter().map(|d| d.dropped).sum::<usize>(), 2);
    s.peer(id).reading = crate::sim::Reading::All;
    s.client_send(id, Message::binary(vec![1u8; 101]));
    s.pump();
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1009));
}

#[test]
fn a_per_session_outbox_bound_drops_beyond_it() {
    let (mut s, id) = admitted_and_stalled(Admission::new().message_buffer_size(2));
    let mut queued = 0;
    let mut dropped = 0;
    for i in 0..5 {
        let d = s.hub.send(id, s.now, &Prepared::text(format!("m{i}")));
        queued += d.queued;
        dropped += d.dropped;
        s.pump();
    }
    assert_eq!((queued, dropped), (2, 3));
    let (mut s2, bytes) = held(Config::default());
    assert_eq!(
        s2.hub.admit(
            bytes,
            s2.now,
            Admission::new().message_buffer_bytes(Some(10))
        ),
        Ok(true)
    );
    s2.pump();
    s2.attach_client(bytes);
    let d = s2.hub.send(bytes, s2.now, &Prepared::text("x".repeat(20)));
    assert_eq!(
        (d.queued, d.dropped),
        (0, 1),
        "over the session's byte bound"
    );
}
