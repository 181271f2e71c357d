//! permessage-deflate (RFC 7692) over real sockets: a client that offers it gets
//! compressed messages it inflates back, in the shared and the dedicated mode. The
//! clients send uncompressed frames, which is legal: compression is chosen per message.

use std::time::Duration;

use flate2::{Decompress, FlushDecompress};
use melody_core::Compression;

use crate::backend::Backend;
use crate::client::{Client, Raw, RawFrame};
use crate::harness::{config, echo, modes, Server};

/// What a browser offers.
const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits";

/// A JSON chat message of about `len` bytes.
fn chat_json(len: usize, seed: usize) -> String {
    let mut s = String::from("[");
    let mut i = seed;
    while s.len() < len {
        s.push_str(&format!(
            "{{\"user\":\"user{}\",\"room\":\"lobby\",\"text\":\"hello number {i}\"}},",
            i % 5
        ));
        i += 1;
    }
    s.truncate(len);
    s
}

/// Reads the next data frame, skipping pings.
fn next_data(raw: &mut Raw) -> RawFrame {
    loop {
        let frame = raw.read_frame();
        if frame.opcode != 0x9 {
            assert!(frame.fin, "one frame per message");
            return frame;
        }
    }
}

/// Inflates one message's payload as RFC 7692 §7.2.2 says, with `d`'s context.
fn inflate(d: &mut Decompress, payload: &[u8]) -> Vec<u8> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
    let mut out = Vec::with_capacity(64 * 1024);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .expect("the server's deflate stream inflates");
    out
}

/// Shared mode, on every upgrade path: the 101 agrees to permessage-deflate without
/// server context takeover; a broadcast reaches a compressing client as a compressed
/// frame it inflates to the message (a short one uncompressed), and a client that
/// offered nothing gets the same broadcast uncompressed.
pub fn deflate_broadcasts_reach_compressing_clients<B: Backend>() {
    for upgrade in modes() {
        let config = config()
            .compression(Compression::Shared)
            .compression_threshold(128);
        let server = Server::<B>::start(config, upgrade, |_| {});
        let (mut deflating, head) = Raw::upgrade_with(server.addr, "/chat", &[OFFER]);
        assert_eq!(
            head.header("sec-websocket-extensions"),
            Some("permessage-deflate; server_no_context_takeover")
        );
        let mut plain = Client::connect(server.addr, "/chat");
        server.wait_len(2);
        let session = server.session(deflating.local());
        assert_eq!(session.compression(), Compression::Shared);
        assert!(session
            .deflate()
            .is_some_and(|p| p.server_no_context_takeover));

        let long = chat_json(1500, 0);
        assert_eq!(server.melody().broadcast(&long).queued, 2);
        assert_eq!(server.melody().broadcast("short").queued, 2);

        let frame = next_data(&mut deflating);
        assert!(frame.rsv1, "a 1500-byte message is compressed");
        assert_eq!(frame.opcode, 0x1);
        assert!(frame.payload.len() * 3 < long.len(), "JSON shrinks");
        let mut d = Decompress::new(false);
        assert_eq!(inflate(&mut d, &frame.payload), long.as_bytes());
        let short = next_data(&mut deflating);
        assert!(!short.rsv1, "below the threshold");
        assert_eq!(short.payload, b"short");

        assert_eq!(plain.recv_text(), long);
        assert_eq!(plain.recv_text(), "short");
        drop(server);
    }
}

/// Dedicated mode: the compressor keeps its context, so repeats shrink and one
/// decompressor inflates every message; the session counts the compressor's memory.
/// The client's own messages go uncompressed and are echoed back compressed.
pub fn dedicated_compression_keeps_context_across_messages<B: Backend>() {
    let config = config()
        .compression(Compression::Dedicated)
        .compression_threshold(0);
    let server = Server::<B>::serve(config, echo);
    let (mut raw, head) = Raw::upgrade_with(server.addr, "/echo", &[OFFER]);
    assert_eq!(
        head.header("sec-websocket-extensions"),
        Some("permessage-deflate")
    );
    let session = server.session(raw.local());
    assert_eq!(session.compression(), Compression::Dedicated);

    let mut d = Decompress::new(false);
    let mut sizes = Vec::new();
    for round in 0..3 {
        let text = chat_json(1200, 0);
        raw.send_frame(true, 0x1, text.as_bytes());
        let frame = next_data(&mut raw);
        assert!(frame.rsv1, "round {round}: echoed compressed");
        assert_eq!(inflate(&mut d, &frame.payload), text.as_bytes());
        sizes.push(frame.payload.len());
    }
    assert!(
        sizes[1] * 4 < sizes[0],
        "the repeat refers back to the first message: {sizes:?}"
    );
    assert!(session.stats().compressor_bytes > 0);
    raw.send_frame(true, 0x8, &1000u16.to_be_bytes());
    assert_eq!(raw.read_close_code(), 1000);
    assert!(raw.wait_closed(Duration::from_secs(5)).is_some());
}
