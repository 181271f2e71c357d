//! `Hub::send_text` and `Hub::send_binary` frame a small message straight into the
//! outbox when the session takes it as a plain frame, and hand anything else to the
//! usual path: either way a session must see exactly what `Hub::send` gives it.

use std::time::Instant;

use melody_core::{
    Admission, Compression, Config, ConnectionInfo, Hub, Keys, Prepared, SessionId,
    SMALL_WRITE_AT_MOST,
};

use crate::sim::*;

/// How a session under test is opened.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Plain,
    Compressing,
    BinaryWrites,
    EventStream,
}

fn open(hub: &mut Hub<Keys>, now: Instant, kind: Kind) -> SessionId {
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    let request = match kind {
        Kind::Compressing => upgrade_request(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
        ),
        Kind::EventStream => "GET /events HTTP/1.1\r\nHost: localhost\r\n\
                              Accept: text/event-stream\r\n\r\n"
            .to_owned(),
        Kind::Plain | Kind::BinaryWrites => upgrade_request(""),
    };
    hub.set_request_verdicts(matches!(kind, Kind::BinaryWrites));
    hub.handle_input(id, now, request.as_bytes())
        .expect("known session");
    if let Kind::BinaryWrites = kind {
        let _ = drive(hub, id, now);
        assert_eq!(
            hub.admit(id, now, Admission::new().binary_writes(true)),
            Ok(true)
        );
    }
    let _ = drive(hub, id, now);
    id
}

#[test]
fn small_writes_reach_every_kind_of_session_as_a_send_would() {
    let configs = [
        Config::default(),
        Config::default()
            .compression(Compression::Shared)
            .compression_threshold(0),
        Config::default()
            .compression(Compression::Dedicated)
            .compression_threshold(16),
        Config::default().sent_events(true),
    ];
    let sizes = [
        0,
        1,
        7,
        SMALL_WRITE_AT_MOST,
        SMALL_WRITE_AT_MOST + 1,
        125,
        126,
        300,
    ];
    for config in configs {
        for kind in [
            Kind::Plain,
            Kind::Compressing,
            Kind::BinaryWrites,
            Kind::EventStream,
        ] {
            let s = Sim::new(config.clone());
            let (mut hub, now) = (s.hub, s.now);
            let direct = open(&mut hub, now, kind);
            let reference = open(&mut hub, now, kind);
            for &n in &sizes {
                let text: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
                let data: Vec<u8> = (0..n).map(|i| (i * 13) as u8).collect();
                let context = format!("{kind:?}, {n} bytes, {config:?}");
                let got = [
                    hub.send_text(direct, now, &text),
                    hub.send_binary(direct, now, &data),
                ];
                let want = [
                    hub.send(reference, now, &Prepared::text(&text)),
                    hub.send(reference, now, &Prepared::binary(&data)),
                ];
                assert_eq!(got, want, "deliveries: {context}");
                let got = drive(&mut hub, direct, now);
                let want = drive(&mut hub, reference, now);
                assert_eq!(step_bytes(&got), step_bytes(&want), "bytes: {context}");
                assert_eq!(step_events(&got), step_events(&want), "events: {context}");
                if matches!(kind, Kind::Plain) && n <= 125 {
                    let mut frame = vec![0x81, n as u8];
                    frame.extend_from_slice(text.as_bytes());
                    frame.extend([0x82, n as u8]);
                    frame.extend_from_slice(&data);
                    assert_eq!(step_bytes(&got), frame, "the frames: {context}");
                }
            }
            let (a, b) = (hub.session_stats(direct), hub.session_stats(reference));
            assert_eq!(a, b, "counters: {kind:?}");
        }
    }
}

#[test]
fn a_small_write_to_a_closing_or_unknown_session_is_counted_closed() {
    let s = Sim::new(Config::default());
    let (mut hub, now) = (s.hub, s.now);
    let id = open(&mut hub, now, Kind::Plain);
    assert!(hub.close(id, now, melody_core::CloseCode::Normal, ""));
    assert_eq!(hub.send_text(id, now, "late").closed, 1);
    let _ = drive(&mut hub, id, now);
    hub.release(id);
    assert_eq!(hub.send_binary(id, now, &[1]).closed, 1);
}
