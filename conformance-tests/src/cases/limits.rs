//! Bad input: each gets its RFC 6455 close code and an `on_error`, and the server
//! goes on serving everyone else.

use std::io::Write;
use std::time::Duration;

use melody_core::SessionError;
use melody_driver::Error;

use crate::backend::Backend;
use crate::client::{frame, Client, Raw};
use crate::harness::{config, echo, Call, Recorder, Server};

/// Sends `bytes` on a fresh session and checks that it is closed with `code`, that
/// `on_error` gets an error matching `expected`, that `on_disconnect` follows, and that
/// `bystander` is still served.
fn violation<B: Backend>(
    server: &Server<B>,
    rec: &Recorder,
    bystander: &mut Client,
    name: &str,
    bytes: &[u8],
    code: u16,
    expected: fn(&SessionError) -> bool,
) {
    let mut raw = Raw::upgrade(server.addr, "/");
    let remote = raw.local();
    raw.send(bytes);
    let got = raw.read_close_code();
    assert_eq!(got, code, "{name}: wrong close code");
    // Answer the close; the server must then end the connection.
    // (The server may already have ended the connection: RFC 6455 allows it after a
    // protocol error.)
    let _ = raw
        .stream
        .write_all(&frame(true, 0x8, &code.to_be_bytes(), MASK));
    assert!(
        raw.wait_closed(Duration::from_secs(4)).is_some(),
        "{name}: the server kept the connection open after the close handshake"
    );
    rec.wait_disconnect(remote);
    let calls = rec.of(remote);
    let errors: Vec<&Error> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, Error::Session(s) if expected(s))),
        "{name}: on_error must report the violation, got {errors:?}"
    );
    assert_eq!(calls.last(), Some(&Call::Disconnect), "{name}: {calls:?}");
    bystander.send_text(name);
    assert_eq!(
        bystander.recv_text(),
        name,
        "the bystander must still be served"
    );
}

const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

fn start<B: Backend>(cfg: melody_core::Config) -> (Server<B>, std::sync::Arc<Recorder>, Client) {
    let rec = Recorder::new();
    let server = Server::<B>::serve(cfg.close_timeout(Duration::from_secs(1)), |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let bystander = Client::connect(server.addr, "/bystander");
    (server, rec, bystander)
}

/// A message over `max_message_size` (1024 here) gets close 1009 and
/// `SessionError::MessageTooBig`, whether in one frame, in fragments, or only
/// announced by a frame header (answered without waiting for the payload); a message
/// of exactly the limit is accepted.
pub fn oversized_message_closed_1009<B: Backend>() {
    let (server, rec, mut bystander) = start::<B>(config().max_message_size(1024));
    let mut exact = Raw::upgrade(server.addr, "/");
    exact.send_frame(true, 0x2, &[7; 1024]);
    assert_eq!(
        exact.read_frame().payload.len(),
        1024,
        "the limit itself is allowed"
    );
    let too_big = |e: &SessionError| matches!(e, SessionError::MessageTooBig { .. });
    let one = frame(true, 0x1, &[b'x'; 1025], MASK);
    violation(
        &server,
        &rec,
        &mut bystander,
        "one frame",
        &one,
        1009,
        too_big,
    );
    let mut fragments = frame(false, 0x2, &[1; 400], MASK);
    fragments.extend(frame(false, 0x0, &[2; 400], MASK));
    fragments.extend(frame(true, 0x0, &[3; 400], MASK));
    violation(
        &server,
        &rec,
        &mut bystander,
        "fragments",
        &fragments,
        1009,
        too_big,
    );
    // A header announcing 2^62 bytes: refused on the header, not after the payload.
    let mut huge = vec![0x82, 0x80 | 127];
    huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
    huge.extend_from_slice(&[1, 2, 3, 4]);
    violation(
        &server,
        &rec,
        &mut bystander,
        "announced length",
        &huge,
        1009,
        too_big,
    );
    server.wait_len(2);
}

/// Invalid UTF-8 in a text message gets close 1007 and `SessionError::InvalidUtf8`:
/// a bad byte, a bad sequence across fragments, a truncated character at the end; and
/// in a close frame's reason.
pub fn invalid_utf8_closed_1007<B: Backend>() {
    let (server, rec, mut bystander) = start::<B>(config());
    let bad = |e: &SessionError| matches!(e, SessionError::InvalidUtf8);
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "bad byte",
            frame(true, 0x1, &[b'h', 0xff, 0xfe, b'i'], MASK),
        ),
        (
            "close reason",
            frame(true, 0x8, &[0x03, 0xe8, b'a', 0xff], MASK),
        ),
        ("across fragments", {
            let mut f = frame(false, 0x1, &[b'a', 0xe2], MASK);
            f.extend(frame(true, 0x0, &[0x28, 0xa1], MASK));
            f
        }),
        ("truncated", frame(true, 0x1, &[b'a', 0xc3], MASK)),
    ];
    for (name, bytes) in cases {
        violation(&server, &rec, &mut bystander, name, &bytes, 1007, bad);
    }
    server.wait_len(1);
}

/// Protocol violations get close 1002 and `SessionError::Protocol`: an unmasked
/// frame, reserved data and control opcodes, a control frame over 125 bytes, a
/// fragmented control frame, a reserved bit without an extension, a continuation with
/// nothing to continue, and a new message inside a fragmented one.
pub fn protocol_violations_closed_1002<B: Backend>() {
    let (server, rec, mut bystander) = start::<B>(config());
    let protocol = |e: &SessionError| matches!(e, SessionError::Protocol(_));
    let mut rsv1 = frame(true, 0x1, b"x", MASK);
    rsv1[0] |= 0x40;
    let cases: [(&str, Vec<u8>); 8] = [
        ("unmasked frame", frame(true, 0x1, b"hi", None)),
        ("reserved data opcode", frame(true, 0x3, b"x", MASK)),
        ("reserved control opcode", frame(true, 0xB, b"x", MASK)),
        (
            "control frame over 125 bytes",
            frame(true, 0x9, &[0; 126], MASK),
        ),
        ("fragmented control frame", frame(false, 0x9, b"x", MASK)),
        ("reserved bit", rsv1),
        ("orphan continuation", frame(true, 0x0, b"x", MASK)),
        ("message inside a fragmented one", {
            let mut f = frame(false, 0x1, b"a", MASK);
            f.extend(frame(true, 0x1, b"b", MASK));
            f
        }),
    ];
    for (name, bytes) in cases {
        violation(&server, &rec, &mut bystander, name, &bytes, 1002, protocol);
    }
    server.wait_len(1);
}

/// Invalid close frames get close 1002 and end the session: a one-byte payload
/// (`on_error` gets `SessionError::Protocol`), and codes that must never be sent on
/// the wire (1005, 1006, 999, and the reserved 2999). For a forbidden code,
/// tungstenite rewrites the peer's frame to (1002, "Protocol violation") before
/// melody sees it, so the violation reaches `on_close` with those values rather than
/// `on_error`; either report is accepted here.
pub fn invalid_close_frames_closed_1002<B: Backend>() {
    let (server, rec, mut bystander) = start::<B>(config());
    let protocol = |e: &SessionError| matches!(e, SessionError::Protocol(_));
    let one_byte = frame(true, 0x8, &[3], MASK);
    violation(
        &server,
        &rec,
        &mut bystander,
        "one-byte close",
        &one_byte,
        1002,
        protocol,
    );
    for code in [1005u16, 1006, 999, 2999] {
        let mut raw = Raw::upgrade(server.addr, "/");
        let remote = raw.local();
        raw.send(&frame(true, 0x8, &code.to_be_bytes(), MASK));
        assert_eq!(
            raw.read_close_code(),
            1002,
            "close code {code} must be refused"
        );
        assert!(
            raw.wait_closed(Duration::from_secs(4)).is_some(),
            "close code {code}: the connection must end"
        );
        rec.wait_disconnect(remote);
        let calls = rec.of(remote);
        assert!(
            calls.iter().any(|c| match c {
                Call::Error(Error::Session(e)) => protocol(e),
                Call::Close(1002, _) => true,
                _ => false,
            }),
            "close code {code}: the violation must be reported: {calls:?}"
        );
        assert!(
            !calls
                .iter()
                .any(|c| matches!(c, Call::Close(c, _) if *c == code)),
            "close code {code} must not reach on_close as if valid: {calls:?}"
        );
        bystander.send_text("after close code");
        assert_eq!(bystander.recv_text(), "after close code");
    }
    server.wait_len(1);
}
