//! Bugs the cargo-fuzz targets (`melody-core/fuzz`) found, each replayed by hand from
//! the smallest input that showed it.

use std::time::Instant;

use melody_core::{Batch, Config, ConnectionInfo, Event, Hub, Keys, SessionError, Transmit};

/// Feeds a handshake in the given pieces; returns the HTTP status of the refusal and the
/// first line of what was written back.
fn refusal(config: &Config, pieces: &[&[u8]]) -> (Option<u16>, String) {
    let now = Instant::now();
    let mut hub: Hub<Keys> = Hub::new(config.clone(), now).expect("valid config");
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    for piece in pieces {
        hub.handle_input(id, now, piece).expect("a live session");
    }
    let mut status = None;
    while let Some(event) = hub.poll_event(id) {
        if let Event::Error(SessionError::Handshake(rejection)) = event {
            status = Some(rejection.status.as_u16());
        }
    }
    let mut out = Batch::new();
    let written = match hub.poll_transmit(id, now, &mut out) {
        Transmit::Write(_) => out.iter().flatten().copied().collect(),
        _ => Vec::new(),
    };
    let first_line = String::from_utf8_lossy(&written)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    (status, first_line)
}

/// Found by the `handshake` target: a head still incomplete at `max_handshake_size`,
/// followed by a byte no header may hold, got 400 when that byte arrived in the same
/// read as the limit and 431 when it came later. The verdict now rests on the first
/// `max_handshake_size` bytes only: 431 however the stream is cut.
#[test]
fn an_oversized_head_gets_431_however_the_transport_cuts_it() {
    let max = 96;
    let mut head = b"GET /ws HTTP/1.1\r\nHost: fuzz.test\r\nUpgrade: websocket\r\nX-Pad: ".to_vec();
    head.resize(max, b'a');
    let mut stream = head.clone();
    stream.extend_from_slice(b"\x00\r\n\r\n");
    let config = Config::default().max_handshake_size(max);

    let at_once = refusal(&config, &[&stream]);
    let byte_by_byte: Vec<&[u8]> = stream.chunks(1).collect();
    let in_pairs: Vec<&[u8]> = stream.chunks(2).collect();
    let limit_then_rest = [&stream[..max], &stream[max..]];
    let expected = (
        Some(431),
        "HTTP/1.1 431 Request Header Fields Too Large".to_owned(),
    );
    assert_eq!(at_once, expected, "in one read");
    assert_eq!(refusal(&config, &byte_by_byte), expected, "byte by byte");
    assert_eq!(refusal(&config, &in_pairs), expected, "in pairs");
    assert_eq!(
        refusal(&config, &limit_then_rest),
        expected,
        "the limit, then the rest"
    );
}
