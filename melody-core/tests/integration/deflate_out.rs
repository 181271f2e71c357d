//! Outbound permessage-deflate (RFC 7692): shared copies made once per message and
//! window, a dedicated compressor's context across messages, the threshold, and frames
//! a client with flate2 inflates back to what was sent.

use flate2::{Decompress, FlushDecompress};
use melody_core::{
    Compression, Config, ConnectionInfo, Event, Hub, Keys, Prepared, SessionId, Target,
};

use crate::sim::*;

/// One server frame as read off the wire.
#[derive(Debug, Clone, PartialEq)]
struct Frame {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// Splits unmasked server frames; panics on a partial one.
fn frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (b0, b1) = (bytes[0], bytes[1]);
        assert_eq!(b1 & 0x80, 0, "server frames are unmasked");
        let (len, at) = match b1 & 0x7f {
            126 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        out.push(Frame {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            opcode: b0 & 0x0f,
            payload: bytes[at..at + len].to_vec(),
        });
        bytes = &bytes[at + len..];
    }
    out
}

/// Inflates one message as a client does (RFC 7692 §7.2.2): the tail appended, then
/// raw inflate into the same decompressor (context kept unless the caller resets it).
fn inflate(d: &mut Decompress, compressed: &[u8]) -> Vec<u8> {
    let mut input = compressed.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let mut out = Vec::with_capacity(256 * 1024);
    let before = d.total_in();
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("a valid deflate stream");
    assert_eq!(
        (d.total_in() - before) as usize,
        input.len(),
        "all input consumed"
    );
    out
}

/// A session whose client sent `offer` (none: no extension), its 101 read and dropped.
fn open(hub: &mut Hub<Keys>, now: std::time::Instant, offer: Option<&str>) -> SessionId {
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    let extra = offer
        .map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n"))
        .unwrap_or_default();
    hub.handle_input(id, now, upgrade_request(&extra).as_bytes())
        .unwrap();
    let written = step_bytes(&drive(hub, id, now));
    assert!(written.starts_with(b"HTTP/1.1 101"));
    id
}

/// The data frames a session wrote since the last call.
fn written(hub: &mut Hub<Keys>, id: SessionId, now: std::time::Instant) -> Vec<Frame> {
    frames(&step_bytes(&drive(hub, id, now)))
}

fn new_hub(compression: Compression, threshold: usize) -> (Hub<Keys>, std::time::Instant) {
    let s = Sim::new(
        Config::default()
            .compression(compression)
            .compression_threshold(threshold),
    );
    (s.hub, s.now)
}

/// A chat message in JSON, `len` bytes, repetitive as real JSON is.
fn json(len: usize) -> String {
    let mut s = String::from("[");
    let mut i = 0;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"user\":\"user{}\",\"room\":\"lobby\",\"text\":\"message number {i}\"}},",
            i % 7
        ));
        i += 1;
    }
    s.truncate(len);
    s
}

const OFFER: &str = "permessage-deflate; client_max_window_bits";

#[test]
fn a_shared_broadcast_is_byte_identical_for_every_recipient_and_inflates_to_the_message() {
    let (mut hub, now) = new_hub(Compression::Shared, 256);
    let ids: Vec<_> = (0..3).map(|_| open(&mut hub, now, Some(OFFER))).collect();
    let plain = open(&mut hub, now, None);
    let text = json(2000);
    let delivery = hub.broadcast(now, &Prepared::text(&text), Target::All);
    assert_eq!(delivery.queued, 4);

    let first = written(&mut hub, ids[0], now);
    assert_eq!(first.len(), 1);
    let frame = &first[0];
    assert!(
        frame.fin && frame.rsv1,
        "compressed message: RSV1 on its frame"
    );
    assert_eq!(frame.opcode, 1, "text");
    assert!(
        frame.payload.len() * 3 < text.len(),
        "JSON shrinks: {} of {} bytes",
        frame.payload.len(),
        text.len()
    );
    assert!(!frame.payload.ends_with(&[0x00, 0x00, 0xff, 0xff]));
    for &id in &ids[1..] {
        assert_eq!(written(&mut hub, id, now), first, "the same bytes for all");
    }
    let mut d = Decompress::new(false);
    assert_eq!(inflate(&mut d, &frame.payload), text.as_bytes());

    // A session that did not agree to the extension gets the uncompressed frame.
    let theirs = written(&mut hub, plain, now);
    assert!(!theirs[0].rsv1);
    assert_eq!(theirs[0].payload, text.as_bytes());
}

#[test]
fn shared_copies_carry_no_context_so_each_message_inflates_alone() {
    let (mut hub, now) = new_hub(Compression::Shared, 0);
    let id = open(&mut hub, now, Some(OFFER));
    let text = json(1500);
    for _ in 0..2 {
        hub.broadcast(now, &Prepared::text(&text), Target::All);
    }
    let got = written(&mut hub, id, now);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], got[1], "no back-reference into the first message");
    for frame in &got {
        assert_eq!(
            inflate(&mut Decompress::new(false), &frame.payload),
            text.as_bytes()
        );
    }
}

#[test]
fn a_dedicated_compressor_keeps_its_context_between_messages() {
    let (mut hub, now) = new_hub(Compression::Dedicated, 0);
    let id = open(&mut hub, now, Some(OFFER));
    let params = hub.session(id).unwrap().deflate().expect("agreed");
    assert!(!params.server_no_context_takeover);
    assert_eq!(hub.session_stats(id).unwrap().compressor_bytes, 0, "lazy");

    let text = json(1500);
    hub.send(id, now, &Prepared::text(&text));
    hub.send(id, now, &Prepared::text(&text));
    let got = written(&mut hub, id, now);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|f| f.rsv1));
    assert!(
        got[1].payload.len() * 4 < got[0].payload.len(),
        "the repeat refers back to the first message: {} vs {} bytes",
        got[1].payload.len(),
        got[0].payload.len()
    );
    // One decompressor across both messages, as the client keeps it.
    let mut d = Decompress::new(false);
    assert_eq!(inflate(&mut d, &got[0].payload), text.as_bytes());
    assert_eq!(inflate(&mut d, &got[1].payload), text.as_bytes());

    let stats = hub.session_stats(id).unwrap();
    assert!(
        stats.compressor_bytes >= 320 * 1024,
        "zlib's state at a 15-bit window is counted: {}",
        stats.compressor_bytes
    );
    assert_eq!(
        hub.session(id).unwrap().compression(),
        Compression::Dedicated
    );
}

#[test]
fn a_dedicated_session_that_asks_for_no_context_takeover_shares_the_stateless_copy() {
    let (mut hub, now) = new_hub(Compression::Dedicated, 0);
    let offer = "permessage-deflate; server_no_context_takeover";
    let asked = open(&mut hub, now, Some(offer));
    let other = open(&mut hub, now, Some(offer));
    let text = json(1500);
    for _ in 0..2 {
        hub.broadcast(now, &Prepared::text(&text), Target::All);
    }
    let got = written(&mut hub, asked, now);
    assert_eq!(got[0], got[1], "reset between messages");
    assert_eq!(written(&mut hub, other, now), got);
    assert_eq!(
        inflate(&mut Decompress::new(false), &got[1].payload),
        text.as_bytes()
    );
    assert_eq!(
        hub.session_stats(asked).unwrap().compressor_bytes,
        0,
        "no compressor of its own"
    );
}

#[test]
fn messages_below_the_threshold_go_uncompressed() {
    for mode in [Compression::Shared, Compression::Dedicated] {
        let (mut hub, now) = new_hub(mode, 300);
        let id = open(&mut hub, now, Some(OFFER));
        hub.send(id, now, &Prepared::text("a".repeat(299)));
        hub.send(id, now, &Prepared::text("a".repeat(300)));
        let got = written(&mut hub, id, now);
        assert!(!got[0].rsv1, "{mode:?}: 299 < 300 bytes");
        assert_eq!(got[0].payload, "a".repeat(299).as_bytes());
        assert!(got[1].rsv1, "{mode:?}: at the threshold");
        let mut d = Decompress::new(false);
        assert_eq!(inflate(&mut d, &got[1].payload), "a".repeat(300).as_bytes());
    }
}

/// Bytes where every 40-byte run recurs only 600 bytes later: a 15-bit compressor
/// refers back 600 bytes, which a 9-bit (512-byte) window cannot reach.
fn far_repeats(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let block: Vec<u8> = (0..600)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            b'a' + (state % 26) as u8
        })
        .collect();
    block.iter().copied().cycle().take(len).collect()
}

#[test]
fn a_recipient_with_a_smaller_window_gets_a_copy_it_can_decode() {
    let (mut hub, now) = new_hub(Compression::Shared, 0);
    let small = open(
        &mut hub,
        now,
        Some("permessage-deflate; server_max_window_bits=9"),
    );
    let full = open(&mut hub, now, Some(OFFER));
    let small_too = open(
        &mut hub,
        now,
        Some("permessage-deflate; server_max_window_bits=9"),
    );
    let data = far_repeats(6000);
    hub.broadcast(now, &Prepared::binary(&data), Target::All);

    let for_small = written(&mut hub, small, now);
    let for_full = written(&mut hub, full, now);
    assert_eq!(
        written(&mut hub, small_too, now),
        for_small,
        "one copy per window"
    );
    assert_ne!(for_small, for_full, "the 9-bit copy is made apart");
    assert!(for_full[0].payload.len() < for_small[0].payload.len());
    let mut d9 = Decompress::new_with_window_bits(false, 9);
    assert_eq!(inflate(&mut d9, &for_small[0].payload), data);
    let mut d15 = Decompress::new_with_window_bits(false, 15);
    assert_eq!(inflate(&mut d15, &for_full[0].payload), data);

    // A message no longer than the smallest window is one copy for every window.
    let short = far_repeats(500);
    hub.broadcast(now, &Prepared::binary(&short), Target::All);
    let a = written(&mut hub, small, now);
    assert_eq!(written(&mut hub, full, now), a);
    assert_eq!(
        inflate(
            &mut Decompress::new_with_window_bits(false, 9),
            &a[0].payload
        ),
        short
    );
}

#[test]
fn a_dedicated_compressor_honours_a_smaller_window() {
    let (mut hub, now) = new_hub(Compression::Dedicated, 0);
    let id = open(
        &mut hub,
        now,
        Some("permessage-deflate; server_max_window_bits=9"),
    );
    let data = far_repeats(6000);
    let mut d9 = Decompress::new_with_window_bits(false, 9);
    for _ in 0..3 {
        hub.send(id, now, &Prepared::binary(&data));
        let got = written(&mut hub, id, now);
        assert_eq!(got[0].opcode, 2);
        assert_eq!(inflate(&mut d9, &got[0].payload), data);
    }
    assert!(
        hub.session_stats(id).unwrap().compressor_bytes < 320 * 1024,
        "a 9-bit window"
    );
}

#[test]
fn every_length_class_inflates_back_in_both_modes() {
    for mode in [Compression::Shared, Compression::Dedicated] {
        let (mut hub, now) = new_hub(mode, 0);
        let id = open(&mut hub, now, Some(OFFER));
        let mut d = Decompress::new(false);
        for len in [0, 1, 125, 126, 65535, 65536] {
            let data: Vec<u8> = (0..len)
                .map(|i| (i % 251) as u8 ^ (i / 997) as u8)
                .collect();
            assert_eq!(hub.send(id, now, &Prepared::binary(&data)).queued, 1);
            let got = written(&mut hub, id, now);
            assert_eq!(got.len(), 1, "{mode:?} {len}: one frame");
            let frame = &got[0];
            assert!(frame.fin && frame.opcode == 2, "{mode:?} {len}");
            if frame.rsv1 {
                if mode == Compression::Shared {
                    d = Decompress::new(false);
                }
                assert_eq!(inflate(&mut d, &frame.payload), data, "{mode:?} {len}");
            } else {
                assert_eq!(mode, Compression::Shared, "dedicated always compresses");
                assert_eq!(frame.payload, data, "{len}: sent as it is");
            }
        }
    }
}

#[test]
fn incompressible_data_goes_uncompressed_in_shared_mode() {
    let (mut hub, now) = new_hub(Compression::Shared, 0);
    let id = open(&mut hub, now, Some(OFFER));
    let noise: Vec<u8> = far_repeats(400)
        .iter()
        .map(|b| b.wrapping_mul(97))
        .collect();
    // 400 bytes of 26 letters shuffled still compress a little; 1 byte cannot.
    hub.send(id, now, &Prepared::binary([0x42]));
    let got = written(&mut hub, id, now);
    assert!(!got[0].rsv1, "compressing one byte makes it longer");
    assert_eq!(got[0].payload, [0x42]);
    hub.send(id, now, &Prepared::binary(&noise));
    let got = written(&mut hub, id, now);
    let sent = if got[0].rsv1 {
        inflate(&mut Decompress::new(false), &got[0].payload)
    } else {
        got[0].payload.clone()
    };
    assert_eq!(sent, noise);
}

#[test]
fn the_outbox_counts_the_compressed_bytes_it_holds() {
    let (mut hub, now) = new_hub(Compression::Shared, 0);
    let id = open(&mut hub, now, Some(OFFER));
    let text = json(2000);
    hub.send(id, now, &Prepared::text(&text));
    let queued = hub.session_stats(id).unwrap().queued_bytes;
    let wire = step_bytes(&drive(&mut hub, id, now));
    assert!(frames(&wire)[0].rsv1);
    assert_eq!(queued, wire.len(), "header and compressed payload");
    assert!(queued < text.len() / 3);

    // Dedicated: the uncompressed size while queued (compressed as it leaves), then
    // nothing once written.
    let (mut hub, now) = new_hub(Compression::Dedicated, 0);
    let id = open(&mut hub, now, Some(OFFER));
    hub.send(id, now, &Prepared::text(&text));
    assert_eq!(
        hub.session_stats(id).unwrap().queued_bytes,
        Prepared::text(&text).wire_len()
    );
    written(&mut hub, id, now);
    assert_eq!(hub.session_stats(id).unwrap().queued_bytes, 0);
}

#[test]
fn sent_events_report_the_message_not_its_compressed_bytes() {
    let s = Sim::new(
        Config::default()
            .compression(Compression::Shared)
            .compression_threshold(0)
            .sent_events(true),
    );
    let (mut hub, now) = (s.hub, s.now);
    let id = open(&mut hub, now, Some(OFFER));
    let text = json(800);
    hub.send(id, now, &Prepared::text(&text));
    let steps = drive(&mut hub, id, now);
    let sent: Vec<_> = step_events(&steps)
        .into_iter()
        .filter_map(|e| match e {
            Event::Sent { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![melody_core::Bytes::from(text)]);
}

#[test]
fn event_streams_are_never_compressed() {
    let (mut hub, now) = new_hub(Compression::Shared, 0);
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    hub.handle_input(
        id,
        now,
        b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\
          Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    )
    .unwrap();
    drive(&mut hub, id, now);
    assert_eq!(hub.session(id).unwrap().compression(), Compression::Off);
    hub.send(id, now, &Prepared::text(json(1000)));
    let bytes = step_bytes(&drive(&mut hub, id, now));
    assert!(
        find(&bytes, b"data: [{\"user\"").is_some(),
        "plain event text"
    );
}
