//! The inbound gate: lengths in their shortest form, the message-completion deadline,
//! and permessage-deflate on the way in (inflation bounded by `max_message_size`,
//! context takeover, RSV1 rules). The test client compresses with flate2 itself.

use std::time::Duration;

use flate2::{Compress, Compression as Level, FlushCompress};
use melody_core::{Compression, Config, Event, SessionError, SessionId, SessionState};
use tungstenite::Message;

use crate::frames::expect_failure;
use crate::sim::*;

const MASK: [u8; 4] = [0x5a, 0x01, 0xc3, 0x7e];

/// A masked frame with a real key, its length in the shortest form.
pub(crate) fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    masked_frame(first, MASK, payload)
}

/// A client-side compressor, as a browser's: raw deflate, sync-flushed per message,
/// the trailing `00 00 ff ff` removed (RFC 7692 §7.2.1).
struct Deflater {
    raw: Compress,
    takeover: bool,
}

impl Deflater {
    fn new(takeover: bool) -> Self {
        Deflater {
            raw: Compress::new(Level::default(), false),
            takeover,
        }
    }

    fn message(&mut self, data: &[u8]) -> Vec<u8> {
        if !self.takeover {
            self.raw.reset();
        }
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut input = data;
        loop {
            out.reserve(4096);
            let before = self.raw.total_in();
            self.raw
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("compress");
            input = &input[(self.raw.total_in() - before) as usize..];
            if input.is_empty() && out.ends_with(&[0, 0, 0xff, 0xff]) {
                break;
            }
        }
        out.truncate(out.len() - 4);
        out
    }
}

/// One compressed message of `total` zero bytes, built a MiB at a time.
fn zeros_compressed(total: usize) -> Vec<u8> {
    let mut raw = Compress::new(Level::default(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut out = Vec::with_capacity(total / 512 + 1024);
    for i in 0..total / zeros.len() {
        let last = i + 1 == total / zeros.len();
        let flush = if last {
            FlushCompress::Sync
        } else {
            FlushCompress::None
        };
        let mut input = &zeros[..];
        while !input.is_empty() || (last && !out.ends_with(&[0, 0, 0xff, 0xff])) {
            out.reserve(64 * 1024);
            let before = raw.total_in();
            raw.compress_vec(input, &mut out, flush).expect("compress");
            input = &input[(raw.total_in() - before) as usize..];
        }
    }
    out.truncate(out.len() - 4);
    out
}

/// 1,000 letters with little repetition inside: a second copy compresses to a few
/// bytes only by referring to the first.
fn letters() -> String {
    (0..1000u32)
        .map(|n| char::from(b'a' + ((n.wrapping_mul(2_654_435_761) >> 11) % 26) as u8))
        .collect()
}

/// Compressing sessions that never compress what they send (the threshold is out of
/// reach), so the tungstenite test client can read the echo.
fn deflate_config() -> Config {
    Config::default()
        .compression(Compression::Dedicated)
        .compression_threshold(usize::MAX)
}

const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate\r\n";
const OFFER_NO_TAKEOVER: &str =
    "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n";

fn deflate_session(config: Config, offer: &str) -> (Sim, SessionId) {
    let mut s = Sim::new(config).with_app(echo_app);
    let id = s.connect_with(&upgrade_request(offer));
    (s, id)
}

/// Sends `bytes` on a compressing session and checks it fails with `error` and `code`,
/// nothing echoed.
fn expect_compressed_failure(config: Config, bytes: &[u8], error: SessionError, code: u16) {
    let (mut s, id) = deflate_session(config, OFFER);
    s.peer(id).send_raw(bytes);
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Error(error.clone()),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_eq!(error.close_code().map(u16::from), Some(code));
    let closed = s.peer(id).close_received().expect("a close frame");
    assert_eq!(closed.0, code);
    assert!(s.peer(id).messages.len() == 1, "only the close frame");
}

// ---- lengths ----------------------------------------------------------------------

#[test]
fn lengths_longer_than_their_shortest_form_are_refused_with_1002() {
    // 5 bytes in the 16-bit form.
    let mut sixteen = vec![0x82, 0x80 | 126, 0, 5, 0, 0, 0, 0];
    sixteen.extend_from_slice(b"hello");
    // 5 bytes in the 64-bit form.
    let mut sixty_four = vec![0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0];
    sixty_four.extend_from_slice(b"hello");
    // The 64-bit form with its top bit set.
    let top_bit = vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0];
    let cases = [
        (
            sixteen,
            "a frame length under 126 written in the 16-bit form",
        ),
        (
            sixty_four,
            "a frame length under 65536 written in the 64-bit form",
        ),
        (
            top_bit,
            "a 64-bit frame length with its most significant bit set",
        ),
    ];
    for (bytes, why) in cases {
        expect_failure(
            Config::default(),
            &bytes,
            SessionError::Protocol(why.to_owned()),
            1002,
        );
    }
}

#[test]
fn a_64_bit_length_of_65536_is_the_shortest_form() {
    let (mut s, id) = deflate_session(Config::default(), "");
    let payload = vec![3u8; 65_536];
    s.peer(id).send_raw(&frame(0x82, &payload));
    s.pump();
    assert_eq!(s.peer(id).messages, vec![Message::binary(payload)]);
}

// ---- the message-completion deadline ----------------------------------------------

#[test]
fn a_message_not_complete_in_time_is_closed_with_1008_at_its_exact_deadline() {
    let config = Config::default().message_completion_timeout(Duration::from_secs(10));
    let mut s = Sim::new(config).with_app(echo_app);
    let id = s.connect();
    s.advance(Duration::from_secs(1));
    // The first fragment at 1 s: the deadline is 11 s.
    s.peer(id).send_raw(&frame(0x01, b"first "));
    s.pump();
    // Pongs between fragments, and more fragments, do not move it.
    for _ in 0..4 {
        s.advance(Duration::from_secs(2));
        s.peer(id).send_raw(&frame(0x8a, b""));
        s.peer(id).send_raw(&frame(0x00, b"more "));
        s.pump();
    }
    assert_eq!(s.elapsed(), Duration::from_secs(9));
    s.advance(Duration::from_secs(2) - Duration::from_nanos(1));
    assert_eq!(s.hub.state(id), Some(SessionState::Open), "a tick before");
    assert_eq!(s.hub.stats().message_timeouts, 0);
    s.advance(Duration::from_nanos(1));
    assert_eq!(s.elapsed(), Duration::from_secs(11));
    assert_eq!(s.hub.stats().message_timeouts, 1);
    assert_eq!(
        s.peer(id)
            .count_events(|e| *e == Event::Error(SessionError::MessageTimeout)),
        1
    );
    let (code, _) = s.peer(id).close_received().expect("a close frame");
    assert_eq!(code, 1008);
    assert!(s.peer(id).disconnected());
}

#[test]
fn the_deadline_starts_afresh_with_each_message_and_ends_with_it() {
    let config = Config::default().message_completion_timeout(Duration::from_secs(10));
    let mut s = Sim::new(config).with_app(echo_app);
    let id = s.connect();
    // A message that takes 8 s, then one that starts at 16 s and takes 8 s: each
    // within its own 10 s.
    for start in [0u64, 16] {
        s.advance(Duration::from_secs(start) - (s.elapsed().min(Duration::from_secs(start))));
        s.peer(id).send_raw(&frame(0x01, b"a"));
        s.pump();
        s.advance(Duration::from_secs(8));
        s.peer(id).send_raw(&frame(0x80, b"b"));
        s.pump();
    }
    // An idle session has no message deadline.
    s.advance(Duration::from_secs(30));
    assert_eq!(s.peer(id).texts(), vec!["ab", "ab"]);
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert_eq!(s.hub.stats().message_timeouts, 0);
}

#[test]
fn a_frame_trickling_in_counts_as_a_message_in_progress() {
    let config = Config::default().message_completion_timeout(Duration::from_secs(5));
    let mut s = Sim::new(config).with_app(echo_app);
    let id = s.connect();
    let whole = frame(0x81, b"slowly");
    s.peer(id).send_raw(&whole[..3]);
    s.pump();
    s.advance(Duration::from_secs(5));
    assert_eq!(s.hub.stats().message_timeouts, 1);
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1008));
}

// ---- permessage-deflate -------------------------------------------------------------

#[test]
fn compressed_messages_echo_at_the_length_boundaries() {
    let (mut s, id) = deflate_session(deflate_config(), OFFER);
    let mut client = Deflater::new(true);
    let mut expected = Vec::new();
    for (i, len) in [0usize, 1, 125, 126, 65_535, 65_536]
        .into_iter()
        .enumerate()
    {
        // Pseudo-random bytes compress badly, so the compressed frames cross the
        // same length forms.
        let data: Vec<u8> = (0..len as u32)
            .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let first = if i % 2 == 0 { 0xc2 } else { 0xc1 };
        let data = if first == 0xc1 {
            data.iter().map(|b| b'a' + b % 26).collect()
        } else {
            data
        };
        s.peer(id).send_raw(&frame(first, &client.message(&data)));
        s.pump();
        expected.push(if first == 0xc1 {
            Message::text(String::from_utf8(data).expect("ascii"))
        } else {
            Message::binary(data)
        });
    }
    assert_eq!(s.peer(id).messages, expected);
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
}

#[test]
fn a_compressed_message_across_fragments_with_a_ping_between_them() {
    let (mut s, id) = deflate_session(deflate_config(), OFFER);
    let text = "caf\u{e9} ".repeat(5000);
    let compressed = Deflater::new(true).message(text.as_bytes());
    let third = compressed.len() / 3;
    let mut input = frame(0x41, &compressed[..third]); // RSV1 on the first frame only
    input.extend(frame(0x89, b"ping"));
    input.extend(frame(0x00, &compressed[third..2 * third]));
    input.extend(frame(0x80, &compressed[2 * third..]));
    // One byte at a time: every frame is completed in the gate's buffer.
    for byte in &input {
        s.peer(id).send_raw(&[*byte]);
        s.pump();
    }
    assert_eq!(
        s.peer(id).messages,
        vec![Message::Pong("ping".into()), Message::text(text)]
    );
}

#[test]
fn context_takeover_carries_the_window_across_messages() {
    let (mut s, id) = deflate_session(deflate_config(), OFFER);
    let mut client = Deflater::new(true);
    let line = letters();
    let first = client.message(line.as_bytes());
    let second = client.message(line.as_bytes());
    assert!(
        second.len() < first.len() / 4,
        "the second refers to the first"
    );
    s.peer(id).send_raw(&frame(0xc1, &first));
    s.peer(id).send_raw(&frame(0xc1, &second));
    s.pump();
    assert_eq!(s.peer(id).texts(), vec![line.clone(), line]);
}

#[test]
fn without_context_takeover_each_message_starts_with_an_empty_window() {
    let line = letters();
    // A client that honours client_no_context_takeover is understood.
    let (mut s, id) = deflate_session(deflate_config(), OFFER_NO_TAKEOVER);
    let mut client = Deflater::new(false);
    for _ in 0..3 {
        s.peer(id)
            .send_raw(&frame(0xc1, &client.message(line.as_bytes())));
    }
    s.pump();
    assert_eq!(s.peer(id).texts(), vec![line.clone(); 3]);
    // One that keeps its window anyway refers to bytes the server forgot: the stream
    // cannot be inflated (1007).
    let (mut s, id) = deflate_session(deflate_config(), OFFER_NO_TAKEOVER);
    let mut client = Deflater::new(true);
    s.peer(id)
        .send_raw(&frame(0xc1, &client.message(line.as_bytes())));
    s.pump();
    s.peer(id)
        .send_raw(&frame(0xc1, &client.message(line.as_bytes())));
    s.pump();
    assert_eq!(s.peer(id).texts(), vec![line]);
    assert!(matches!(
        s.peer(id).events.get(2),
        Some(Event::Error(SessionError::Compression(_)))
    ));
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1007));
}

#[test]
fn a_compression_bomb_is_closed_with_1009_at_the_limit() {
    // 8 MiB of zeros compress to about 8 KiB: 128 times the 64 KiB limit.
    let compressed = zeros_compressed(8 << 20);
    let config = deflate_config();
    let max = config.max_message_size;
    let (mut s, id) = deflate_session(config, OFFER);
    s.peer(id).send_raw(&frame(0xc2, &compressed));
    s.pump();
    let error = s.peer(id).events.get(1).cloned();
    let Some(Event::Error(SessionError::MessageTooBig {
        size,
        max: reported,
    })) = error
    else {
        panic!("expected MessageTooBig, got {error:?}");
    };
    assert_eq!(reported, max);
    // Stopped within one inflation step (4 KiB) of the limit.
    assert!(size > max && size <= max + 4096, "size {size}");
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1009));
    assert!(s.peer(id).disconnected());
}

#[test]
fn a_bomb_at_a_16_mib_limit_is_stopped_within_4_kib_of_it() {
    // 20 MiB of zeros: about 20 KiB compressed, so the limit is crossed many
    // compressed bytes into the frame, not in its first step.
    let compressed = zeros_compressed(20 << 20);
    let limit = 16 << 20;
    let (mut s, id) = deflate_session(deflate_config().max_message_size(limit), OFFER);
    s.peer(id).send_raw(&frame(0xc2, &compressed));
    s.pump();
    let error = s.peer(id).events.get(1).cloned();
    let Some(Event::Error(SessionError::MessageTooBig { size, max })) = error else {
        panic!("expected MessageTooBig, got {error:?}");
    };
    assert_eq!(max, limit);
    assert!(size > limit && size <= limit + 4096, "size {size}");
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1009));
}

#[test]
fn an_inflated_message_exactly_at_the_limit_is_accepted_and_one_byte_more_refused() {
    let config = deflate_config().max_message_size(10_000);
    let (mut s, id) = deflate_session(config.clone(), OFFER);
    let exact = vec![b'x'; 10_000];
    // Across two fragments, so the count carries from one frame to the next.
    let compressed = Deflater::new(true).message(&exact);
    let half = compressed.len() / 2;
    s.peer(id).send_raw(&frame(0x42, &compressed[..half]));
    s.peer(id).send_raw(&frame(0x80, &compressed[half..]));
    s.pump();
    assert_eq!(s.peer(id).messages, vec![Message::binary(exact)]);

    let over = Deflater::new(true).message(&[b'x'; 10_001]);
    let (mut s, id) = deflate_session(config, OFFER);
    s.peer(id).send_raw(&frame(0xc2, &over));
    s.pump();
    assert_eq!(
        s.peer(id).events.get(1),
        Some(&Event::Error(SessionError::MessageTooBig {
            size: 10_001,
            max: 10_000
        }))
    );
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1009));
}

#[test]
fn a_corrupt_deflate_stream_is_closed_with_1007() {
    // A block of the reserved type 3 (BTYPE = 11) is never valid.
    let (mut s, id) = deflate_session(deflate_config(), OFFER);
    s.peer(id).send_raw(&frame(0xc1, &[0x07, 0x00, 0x00]));
    s.pump();
    assert!(matches!(
        s.peer(id).events.get(1),
        Some(Event::Error(SessionError::Compression(_)))
    ));
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1007));
    assert!(s.peer(id).disconnected());
}

#[test]
fn compressed_text_that_inflates_to_invalid_utf8_is_refused_with_1007() {
    let compressed = Deflater::new(true).message(&[0xff, 0xfe, 0xfd]);
    expect_compressed_failure(
        deflate_config(),
        &frame(0xc1, &compressed),
        SessionError::InvalidUtf8,
        1007,
    );
}

#[test]
fn rsv1_where_it_may_not_be_is_refused_with_1002() {
    let compressed = Deflater::new(true).message(b"hello");
    // Without the extension agreed (the config compresses, the client did not offer).
    let mut s = Sim::new(deflate_config()).with_app(echo_app);
    let id = s.connect();
    s.peer(id).send_raw(&frame(0xc1, &compressed));
    s.pump();
    assert_eq!(
        s.peer(id).events.get(1),
        Some(&Event::Error(SessionError::Protocol(
            tungstenite::error::ProtocolError::NonZeroReservedBits.to_string()
        )))
    );
    assert_eq!(s.peer(id).close_received().map(|c| c.0), Some(1002));
    // On a control frame.
    expect_compressed_failure(
        deflate_config(),
        &frame(0xc9, b""),
        SessionError::Protocol("RSV1 set on a control frame".to_owned()),
        1002,
    );
    // On a continuation frame.
    let mut input = frame(0x41, &compressed[..2]);
    input.extend(frame(0xc0, &compressed[2..]));
    expect_compressed_failure(
        deflate_config(),
        &input,
        SessionError::Protocol(
            "RSV1 set on a continuation frame (only a message's first frame may have it)"
                .to_owned(),
        ),
        1002,
    );
}

#[test]
fn uncompressed_messages_still_flow_on_a_compressing_session() {
    let (mut s, id) = deflate_session(deflate_config(), OFFER);
    let mut client = Deflater::new(true);
    s.peer(id).send_raw(&frame(0x81, b"plain"));
    s.peer(id)
        .send_raw(&frame(0xc1, &client.message(b"squeezed")));
    s.peer(id).send_raw(&frame(0x81, b"plain again"));
    s.pump();
    assert_eq!(s.peer(id).texts(), vec!["plain", "squeezed", "plain again"]);
}
