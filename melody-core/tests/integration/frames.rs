//! Framing after the handshake: byte-at-a-time input, fragments, echo sizes around the
//! length-encoding boundaries and the message limit, pings and pongs, and every
//! protocol error with its close code.

use melody_core::{
    Batch, Config, ConnectionInfo, Event, Keys, SessionError, SessionId, SessionState,
};
use tungstenite::error::ProtocolError;
use tungstenite::protocol::frame::coding::{CloseCode, Data};
use tungstenite::Message;

use crate::sim::*;

/// A masked client frame with a real mask key (`client_frame` uses a zero key).
fn masked(first_byte: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    masked_frame(first_byte, mask, payload)
}

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// An unmasked frame, as only a server may send.
fn unmasked(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![first_byte, payload.len() as u8];
    f.extend_from_slice(payload);
    f
}

/// An echo server with two clients: one to break, one that must not notice.
fn pair(config: Config) -> (Sim, SessionId, SessionId) {
    let mut s = Sim::new(config).with_app(echo_app);
    let victim = s.connect();
    let bystander = s.connect();
    (s, victim, bystander)
}

fn protocol(err: ProtocolError) -> SessionError {
    SessionError::Protocol(err.to_string())
}

/// Sends `bytes` (followed by a valid frame that must be ignored) from a fresh client
/// and checks the session fails with `error`: the client gets a close frame with
/// `code` and the error as reason, the session's last events are exactly the error and
/// one `Disconnect`, and another session keeps echoing.
pub(crate) fn expect_failure(config: Config, bytes: &[u8], error: SessionError, code: u16) {
    let (mut s, victim, bystander) = pair(config);
    s.peer(victim).send_raw(bytes);
    s.peer(victim).send_raw(&client_frame(0x81, b"ignored"));
    s.pump();
    assert_eq!(
        s.peer(victim).events,
        vec![
            Event::Connect,
            Event::Error(error.clone()),
            Event::Disconnect { undelivered: 0 },
        ],
        "for input {:02x?}",
        &bytes[..bytes.len().min(16)]
    );
    assert_eq!(error.close_code().map(u16::from), Some(code));
    let mut reason = error.to_string();
    reason.truncate(123);
    assert_eq!(s.peer(victim).close_received(), Some((code, reason)));
    assert_eq!(
        s.peer(victim).texts(),
        Vec::<String>::new(),
        "nothing echoed"
    );
    assert!(s.peer(victim).released);
    assert_eq!(s.hub.state(victim), None);
    assert_eq!(s.hub.len(), 1);
    // The other session is unaffected.
    s.client_send(bystander, Message::text("still fine"));
    s.pump();
    assert_eq!(s.peer(bystander).texts(), vec!["still fine"]);
    assert_eq!(s.peer(bystander).events.len(), 2, "Connect and the text");
    assert_eq!(s.hub.state(bystander), Some(SessionState::Open));
}

// ---- input ------------------------------------------------------------------------

#[test]
fn frames_fed_one_byte_at_a_time_complete_on_their_last_byte() {
    let mut s = Sim::new(Config::default()).with_app(echo_app);
    let id = s.connect();
    let binary: Vec<u8> = (0..300u32).map(|i| (i * 7) as u8).collect();
    let mut frames = vec![
        (
            masked(0x81, MASK, b"hello"),
            Some(Event::Text("hello".into())),
        ),
        // 16-bit extended length.
        (
            masked(0x82, MASK, &binary),
            Some(Event::Binary(binary.clone().into())),
        ),
        (masked(0x89, MASK, b"p"), None),
        (masked(0x01, MASK, "caf\u{e9} ".as_bytes()), None),
    ];
    frames.push((
        masked(0x80, MASK, "\u{1f600}".as_bytes()),
        Some(Event::Text("caf\u{e9} \u{1f600}".into())),
    ));
    // 64-bit extended length.
    let big = vec![0xabu8; 70_000];
    let config_max = s.hub.config().max_message_size;
    assert!(big.len() > config_max, "the default limit is 64 KiB");
    let mut expected = vec![Event::Connect];
    for (frame, event) in frames {
        for (i, byte) in frame.iter().enumerate() {
            s.peer(id).send_raw(&[*byte]);
            s.pump();
            let last = i == frame.len() - 1;
            if last {
                expected.extend(event.clone());
            }
            assert_eq!(
                s.peer(id).events,
                expected,
                "after byte {i} of {frame:02x?}"
            );
        }
    }
    let texts = s.peer(id).texts();
    assert_eq!(texts, vec!["hello", "caf\u{e9} \u{1f600}"]);
    let messages = &s.peer(id).messages;
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[1], Message::Binary(binary.into()));
    assert_eq!(messages[2], Message::Pong(b"p".to_vec().into()));
    // An oversized frame is refused as soon as its header is complete: 2 bytes, the
    // 64-bit length, the mask key; none of its payload is awaited.
    let frame = client_frame(0x82, &big);
    for byte in &frame[..13] {
        s.peer(id).send_raw(&[*byte]);
        s.pump();
        assert!(!s.peer(id).disconnected());
    }
    s.peer(id).send_raw(&frame[13..14]);
    s.pump();
    assert_eq!(
        s.peer(id).events[expected.len()..],
        [
            Event::Error(SessionError::MessageTooBig {
                size: 70_000,
                max: 65_536
            }),
            Event::Disconnect { undelivered: 0 },
        ]
    );
}

#[test]
fn fragmented_text_and_binary_are_reassembled() {
    let mut s = Sim::new(Config::default()).with_app(echo_app);
    let id = s.connect();
    let mut input = Vec::new();
    // "Hello, wörld" in three fragments, the 'ö' split between two, a ping between.
    input.extend(masked(0x01, MASK, b"Hel"));
    input.extend(masked(0x00, MASK, b"lo, w\xc3"));
    input.extend(masked(0x89, MASK, b"mid"));
    input.extend(masked(0x80, MASK, b"\xb6rld"));
    // Binary: a first fragment, an empty one, the last.
    let tail: Vec<u8> = (2..=255).collect();
    input.extend(masked(0x02, MASK, &[0, 1]));
    input.extend(masked(0x00, MASK, &[]));
    input.extend(masked(0x80, MASK, &tail));
    // A text message of 1000 one-byte fragments.
    input.extend(masked(0x01, MASK, b"x"));
    for _ in 0..998 {
        input.extend(masked(0x00, MASK, b"x"));
    }
    input.extend(masked(0x80, MASK, b"x"));
    s.peer(id).send_raw(&input);
    s.pump();
    let binary: Vec<u8> = (0..=255).collect();
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Text("Hello, w\u{f6}rld".into()),
            Event::Binary(binary.clone().into()),
            Event::Text("x".repeat(1000).into()),
        ]
    );
    assert_eq!(
        s.peer(id).messages,
        vec![
            Message::Pong(b"mid".to_vec().into()),
            Message::text("Hello, w\u{f6}rld"),
            Message::Binary(binary.into()),
            Message::text("x".repeat(1000)),
        ]
    );
    assert_eq!(s.hub.session_stats(id).unwrap().received, 3);
}

#[test]
fn echo_of_text_and_binary_at_the_length_boundaries() {
    // The default limit is 64 KiB = 65536 bytes, so 65536 itself fits.
    let mut s = Sim::new(Config::default()).with_app(echo_app);
    assert_eq!(s.hub.config().max_message_size, 65_536);
    let id = s.connect();
    let sizes = [0usize, 1, 125, 126, 127, 65_535, 65_536];
    let mut expected = Vec::new();
    for &n in &sizes {
        let text: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let binary: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        s.client_send(id, Message::text(text.clone()));
        s.client_send(id, Message::binary(binary.clone()));
        expected.push(Message::text(text));
        expected.push(Message::binary(binary));
    }
    s.pump();
    assert_eq!(s.peer(id).messages.len(), expected.len());
    for (got, want) in s.peer(id).messages.iter().zip(&expected) {
        assert_eq!(got, want, "echo of {} bytes", want.len());
    }
    assert_eq!(s.peer(id).events.len(), 1 + 2 * sizes.len());
    let stats = s.hub.session_stats(id).unwrap();
    assert_eq!((stats.received, stats.sent, stats.dropped), (14, 14, 0));
}

#[test]
fn exactly_max_message_size_is_accepted_and_one_byte_more_refused_with_1009() {
    // Default limit: 65536.
    let (mut s, id, _) = pair(Config::default());
    s.client_send(id, Message::binary(vec![7u8; 65_536]));
    s.pump();
    assert_eq!(
        s.peer(id).messages,
        vec![Message::binary(vec![7u8; 65_536])]
    );
    expect_failure(
        Config::default(),
        &client_frame(0x81, &[b'a'; 65_537]),
        SessionError::MessageTooBig {
            size: 65_537,
            max: 65_536,
        },
        1009,
    );
    // A raised limit moves the boundary.
    let config = Config::default().max_message_size(100_000);
    let (mut s, id, _) = pair(config.clone());
    s.client_send(id, Message::text("b".repeat(100_000)));
    s.client_send(id, Message::text("c".repeat(65_537)));
    s.pump();
    assert_eq!(
        s.peer(id).texts(),
        vec!["b".repeat(100_000), "c".repeat(65_537)]
    );
    expect_failure(
        config,
        &client_frame(0x82, &vec![0u8; 100_001]),
        SessionError::MessageTooBig {
            size: 100_001,
            max: 100_000,
        },
        1009,
    );
}

#[test]
fn a_fragmented_message_over_the_limit_is_refused_with_1009() {
    let config = Config::default().max_message_size(1000);
    // 600 + 400 = 1000 is fine.
    let (mut s, id, _) = pair(config.clone());
    let mut input = client_frame(0x02, &[1; 600]);
    input.extend(client_frame(0x80, &[2; 400]));
    s.peer(id).send_raw(&input);
    s.pump();
    let mut whole = vec![1u8; 600];
    whole.extend([2u8; 400]);
    assert_eq!(s.peer(id).messages, vec![Message::binary(whole)]);
    // 600 + 401 is not, although each fragment is under the limit.
    let mut input = client_frame(0x02, &[1; 600]);
    input.extend(client_frame(0x80, &[2; 401]));
    expect_failure(
        config.clone(),
        &input,
        SessionError::MessageTooBig {
            size: 1001,
            max: 1000,
        },
        1009,
    );
    // Text, refused at the third of four fragments.
    let mut input = client_frame(0x01, &[b'a'; 400]);
    input.extend(client_frame(0x00, &[b'b'; 400]));
    input.extend(client_frame(0x00, &[b'c'; 400]));
    input.extend(client_frame(0x80, &[b'd'; 1]));
    expect_failure(
        config,
        &input,
        SessionError::MessageTooBig {
            size: 1200,
            max: 1000,
        },
        1009,
    );
}

#[test]
fn invalid_utf8_text_is_refused_with_1007() {
    for bad in [
        &b"\xff\xfe"[..],
        b"ok \xc0\xaf",        // overlong '/'
        b"\xed\xa0\x80",       // a UTF-16 surrogate
        b"cut short \xe2\x82", // incomplete at the end of the message
    ] {
        expect_failure(
            Config::default(),
            &client_frame(0x81, bad),
            SessionError::InvalidUtf8,
            1007,
        );
    }
}

#[test]
fn invalid_utf8_split_across_fragments_is_refused_with_1007() {
    // A valid prefix of '€' (e2 82 ac), then a byte that cannot continue it.
    let mut input = masked(0x01, MASK, b"price: \xe2\x82");
    input.extend(masked(0x80, MASK, b"\x28"));
    expect_failure(Config::default(), &input, SessionError::InvalidUtf8, 1007);
    // Every fragment ends mid-character and the message ends incomplete.
    let mut input = masked(0x01, MASK, b"\xe2");
    input.extend(masked(0x00, MASK, b"\x82"));
    input.extend(masked(0x80, MASK, b"\xac\xe2\x82"));
    expect_failure(Config::default(), &input, SessionError::InvalidUtf8, 1007);
    // Whereas '€' split over three fragments is fine.
    let (mut s, id, _) = pair(Config::default());
    let mut input = masked(0x01, MASK, b"\xe2");
    input.extend(masked(0x00, MASK, b"\x82"));
    input.extend(masked(0x80, MASK, b"\xac"));
    s.peer(id).send_raw(&input);
    s.pump();
    assert_eq!(s.peer(id).texts(), vec!["\u{20ac}"]);
}

#[test]
fn invalid_utf8_in_a_close_reason_is_refused_with_1007() {
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend(b"bye \xff");
    expect_failure(
        Config::default(),
        &client_frame(0x88, &payload),
        SessionError::InvalidUtf8,
        1007,
    );
}

// ---- pings ------------------------------------------------------------------------

#[test]
fn a_ping_is_answered_with_a_pong_of_the_same_payload() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    let max: Vec<u8> = (0..125).collect();
    for payload in [&b"abc"[..], b"", &max] {
        s.client_send(id, Message::Ping(payload.to_vec().into()));
        s.pump();
    }
    assert_eq!(
        s.peer(id).messages,
        vec![
            Message::Pong(b"abc".to_vec().into()),
            Message::Pong(Vec::new().into()),
            Message::Pong(max.into()),
        ]
    );
    // Pings are answered, not reported.
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
    // A pong from the client is reported with its payload.
    s.client_send(id, Message::Pong(b"unsolicited".to_vec().into()));
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![Event::Connect, Event::Pong(b"unsolicited".to_vec().into())]
    );
}

#[test]
fn a_ping_flood_keeps_only_the_latest_sixteen_unsent_pongs() {
    let mut s = Sim::new(Config::default());
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    s.hub
        .handle_input(id, s.now, upgrade_request("").as_bytes())
        .unwrap();
    assert_eq!(
        step_events(&drive(&mut s.hub, id, s.now)),
        vec![Event::Connect]
    );
    // 10,000 pings, each in its own read, while the transport is not writable.
    for i in 0..10_000 {
        let ping = masked(0x89, MASK, format!("ping {i}").as_bytes());
        s.hub.handle_input(id, s.now, &ping).unwrap();
    }
    let mut latest = Vec::new();
    for i in 9_984..10_000 {
        latest.extend([0x8a, 9]);
        latest.extend(format!("ping {i}").as_bytes());
    }
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![Step::Write(latest)],
        "the 16 latest pongs, in order, in one write, no event"
    );
    // A pong handed out but not yet written stays; only the unsent one is replaced.
    s.hub
        .handle_input(id, s.now, &masked(0x89, MASK, b"a"))
        .unwrap();
    let mut out = Batch::new();
    assert_eq!(
        s.hub.poll_transmit(id, s.now, &mut out),
        melody_core::Transmit::Write(1)
    );
    for i in 0..20u8 {
        s.hub
            .handle_input(id, s.now, &masked(0x89, MASK, &[b'b' + i]))
            .unwrap();
    }
    assert_eq!(
        s.hub.poll_transmit(id, s.now, &mut out),
        melody_core::Transmit::Write(0),
        "nothing is added while the batch holds unwritten bytes"
    );
    let in_flight: Vec<Vec<u8>> = out.iter().map(|b| b.to_vec()).collect();
    assert_eq!(in_flight, [vec![0x8a, 1, b'a']], "the pong in flight stays");
    s.hub.handle_transmitted(id, s.now, 3, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(
        s.hub.poll_transmit(id, s.now, &mut out),
        melody_core::Transmit::Write(1),
        "small frames go out copied into one buffer"
    );
    let out: Vec<u8> = out.iter().flatten().copied().collect();
    let expected: Vec<u8> = (4..20u8).flat_map(|i| [0x8a, 1, b'b' + i]).collect();
    assert_eq!(out, expected, "the 16 latest unsent pongs follow");
}

#[test]
fn a_ping_flood_to_a_stalled_peer_does_not_grow_its_queue() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    s.peer(id).reading = Reading::Stalled;
    // The peer floods us with pings but reads nothing; we answer when it reads again.
    for round in 0..3 {
        for i in 0..1000 {
            let ping = masked(0x89, MASK, format!("{round}:{i}").as_bytes());
            s.hub.handle_input(id, s.now, &ping).unwrap();
        }
        s.pump();
    }
    assert!(s.peer(id).messages.is_empty());
    s.peer(id).reading = Reading::All;
    s.pump();
    // Round 0's last 16 pongs were handed out before the peer stalled and stay in
    // flight; while they are, later pongs replace each other, and the 16 latest follow.
    let expected: Vec<Message> = [0, 2]
        .into_iter()
        .flat_map(|round| {
            (984..1000).map(move |i| Message::Pong(format!("{round}:{i}").into_bytes().into()))
        })
        .collect();
    assert_eq!(
        s.peer(id).messages,
        expected,
        "the pongs in flight, then at most 16 more, the latest ones"
    );
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
}

// ---- protocol violations ----------------------------------------------------------

#[test]
fn an_unmasked_client_frame_is_refused_with_1002() {
    expect_failure(
        Config::default(),
        &unmasked(0x81, b"hi"),
        protocol(ProtocolError::UnmaskedFrameFromClient),
        1002,
    );
    expect_failure(
        Config::default(),
        &unmasked(0x89, b""),
        protocol(ProtocolError::UnmaskedFrameFromClient),
        1002,
    );
}

#[test]
fn reserved_opcodes_are_refused_with_1002() {
    for opcode in [0x3u8, 0x7, 0xb, 0xf] {
        expect_failure(
            Config::default(),
            &client_frame(0x80 | opcode, b"x"),
            protocol(ProtocolError::InvalidOpcode(opcode)),
            1002,
        );
    }
}

#[test]
fn a_control_frame_over_125_bytes_is_refused_with_1002() {
    for first in [0x89u8, 0x8a, 0x88] {
        let mut payload = vec![b'x'; 126];
        if first == 0x88 {
            payload[..2].copy_from_slice(&1000u16.to_be_bytes());
        }
        expect_failure(
            Config::default(),
            &client_frame(first, &payload),
            protocol(ProtocolError::ControlFrameTooBig),
            1002,
        );
    }
}

#[test]
fn a_fragmented_control_frame_is_refused_with_1002() {
    // A ping without FIN, then its "continuation".
    let mut input = client_frame(0x09, b"frag");
    input.extend(client_frame(0x80, b"ment"));
    expect_failure(
        Config::default(),
        &input,
        protocol(ProtocolError::FragmentedControlFrame),
        1002,
    );
    // Even in the middle of a fragmented text message.
    let mut input = client_frame(0x01, b"abc");
    input.extend(client_frame(0x08, &1000u16.to_be_bytes()));
    expect_failure(
        Config::default(),
        &input,
        protocol(ProtocolError::FragmentedControlFrame),
        1002,
    );
}

#[test]
fn a_continuation_without_a_start_is_refused_with_1002() {
    for first in [0x80u8, 0x00] {
        expect_failure(
            Config::default(),
            &client_frame(first, b"orphan"),
            protocol(ProtocolError::UnexpectedContinueFrame),
            1002,
        );
    }
    // A complete message does not leave a start behind.
    let mut input = client_frame(0x01, b"a");
    input.extend(client_frame(0x80, b"b"));
    input.extend(client_frame(0x80, b"c"));
    // (No echo: the text and the error come in the same read, so by the time the
    // application sees the text the session is already closing.)
    let mut s = Sim::new(Config::default());
    let victim = s.connect();
    s.peer(victim).send_raw(&input);
    s.pump();
    assert_eq!(
        s.hub
            .send(victim, s.now, &melody_core::Prepared::text("late"))
            .closed,
        1
    );
    assert_eq!(
        s.peer(victim).events[1..],
        [
            Event::Text("ab".into()),
            Event::Error(protocol(ProtocolError::UnexpectedContinueFrame)),
            Event::Disconnect { undelivered: 0 },
        ]
    );
}

#[test]
fn a_new_message_inside_a_fragmented_one_is_refused_with_1002() {
    let mut input = client_frame(0x01, b"start");
    input.extend(client_frame(0x82, b"interloper"));
    expect_failure(
        Config::default(),
        &input,
        protocol(ProtocolError::ExpectedFragment(Data::Binary)),
        1002,
    );
}

#[test]
fn nonzero_rsv_bits_are_refused_with_1002() {
    for rsv in [0x40u8, 0x20, 0x10, 0x70] {
        for opcode in [0x1u8, 0x2, 0x9] {
            expect_failure(
                Config::default(),
                &client_frame(0x80 | rsv | opcode, b"x"),
                protocol(ProtocolError::NonZeroReservedBits),
                1002,
            );
        }
    }
}

#[test]
fn a_close_frame_with_a_one_byte_payload_is_refused_with_1002() {
    expect_failure(
        Config::default(),
        &client_frame(0x88, &[0x03]),
        protocol(ProtocolError::InvalidCloseSequence),
        1002,
    );
}

#[test]
fn whole_messages_and_control_frames_in_one_input_keep_their_order() {
    // Whole messages are taken by the gate, the ping and the fragments by tungstenite:
    // one input mixing them gives every message, in order, and the pong (written while
    // the input is read, so ahead of the echoes the app queues after it).
    let mut s = Sim::new(Config::default()).with_app(echo_app);
    let id = s.connect();
    let mut input = masked(0x81, MASK, b"first");
    input.extend(masked(0x89, MASK, b"p"));
    input.extend(masked(0x02, MASK, b"frag"));
    input.extend(masked(0x80, MASK, b"ment"));
    input.extend(masked(0x82, MASK, &[0, 1, 2, 255]));
    input.extend(masked(0x81, MASK, "\u{1f600}".as_bytes()));
    s.peer(id).send_raw(&input);
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Text("first".into()),
            Event::Binary(b"fragment".to_vec().into()),
            Event::Binary(vec![0, 1, 2, 255].into()),
            Event::Text("\u{1f600}".into()),
        ]
    );
    assert_eq!(
        s.peer(id).messages,
        vec![
            Message::Pong(b"p".to_vec().into()),
            Message::text("first"),
            Message::binary(b"fragment".to_vec()),
            Message::binary(vec![0, 1, 2, 255]),
            Message::text("\u{1f600}"),
        ]
    );
    assert_eq!(s.hub.session_stats(id).map(|v| v.received), Some(4));
}

#[test]
fn a_message_after_the_servers_close_is_still_read() {
    // The server's close leaves the connection half open (RFC 6455 §1.4): what the peer
    // sent before it saw the close is still a message, read through tungstenite's state.
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    s.pump();
    let now = s.now;
    assert!(s.hub.close(id, now, CloseCode::Away, "bye"));
    s.peer(id).send_raw(&masked(0x81, MASK, b"late"));
    s.pump();
    let events = &s.peer(id).events;
    let late = events.iter().position(|e| *e == Event::Text("late".into()));
    let gone = events
        .iter()
        .position(|e| matches!(e, Event::Disconnect { .. }));
    assert!(late.is_some() && late < gone, "{events:?}");
}
