//! Messages in and out: sizes across the frame-length encodings, fragments, ping/pong,
//! ordering.

use tungstenite::Message;

use crate::backend::Backend;
use crate::client::{Client, Raw};
use crate::harness::{config, echo, modes, Server};

/// Sizes across the 7-bit, 16-bit and 64-bit length encodings, and 1 MiB.
const SIZES: [usize; 8] = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20];

/// Messages up to 2 MiB, and an outbox that takes their echoes.
fn big_echo_config() -> melody_core::Config {
    config()
        .max_message_size(2 << 20)
        .message_buffer_bytes(Some(4 << 20))
}

fn text_of(n: usize) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

fn bytes_of(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

/// Text messages of 0, 1, 125, 126, 127, 65535, 65536 bytes and 1 MiB (with
/// `max_message_size` raised to 2 MiB, and the outbox's byte bound to 4 MiB: a 1 MiB
/// message and its header exceed the default one) come back intact. Both upgrade modes.
pub fn echo_text_sizes<B: Backend>() {
    for mode in modes() {
        let server = Server::<B>::start(big_echo_config(), mode, echo);
        let mut client = Client::connect(server.addr, "/");
        for n in SIZES {
            let text = text_of(n);
            client.send_text(&text);
            let back = client.recv_text();
            assert!(
                back == text,
                "text of {n} bytes came back as {} bytes, or changed",
                back.len()
            );
        }
    }
}

/// Binary messages of the same sizes come back intact. Both upgrade modes.
pub fn echo_binary_sizes<B: Backend>() {
    for mode in modes() {
        let server = Server::<B>::start(big_echo_config(), mode, echo);
        let mut client = Client::connect(server.addr, "/");
        for n in SIZES {
            let data = bytes_of(n);
            client.send(Message::binary(data.clone()));
            let back = client.recv_binary();
            assert!(
                back == data,
                "binary of {n} bytes came back as {} bytes, or changed",
                back.len()
            );
        }
    }
}

/// Fragmented client messages are reassembled: a text split inside a multi-byte UTF-8
/// character, with a ping between its fragments (answered at once), and a binary
/// message with an empty continuation.
pub fn echo_fragmented_messages<B: Backend>() {
    for mode in modes() {
        let server = Server::<B>::start(config(), mode, echo);
        let mut raw = Raw::upgrade(server.addr, "/");
        let text = "héllo wörld".as_bytes();
        // "h\xc3" | "\xa9llo w\xc3" | "\xb6rld": both splits fall inside a character.
        raw.send_frame(false, 0x1, &text[..2]);
        raw.send_frame(true, 0x9, b"between");
        raw.send_frame(false, 0x0, &text[2..9]);
        raw.send_frame(true, 0x0, &text[9..]);
        let pong = raw.read_frame();
        assert_eq!(
            (pong.opcode, &pong.payload[..]),
            (0xA, &b"between"[..]),
            "a ping between fragments must be answered"
        );
        let echoed = raw.read_frame();
        assert_eq!((echoed.opcode, echoed.fin), (0x1, true));
        assert_eq!(echoed.payload, text, "the fragments must be reassembled");

        raw.send_frame(false, 0x2, &[1, 2, 3]);
        raw.send_frame(false, 0x0, &[]);
        raw.send_frame(false, 0x0, &[4]);
        raw.send_frame(true, 0x0, &[5, 6]);
        let echoed = raw.read_frame();
        assert_eq!(
            (echoed.opcode, &echoed.payload[..]),
            (0x2, &[1, 2, 3, 4, 5, 6][..])
        );
    }
}

/// A ping is answered by a pong with the same payload (empty, short, 125 bytes). Of
/// a burst of pings, the last is answered, and every pong carries the payload of one
/// of them, in order (RFC 6455 §5.5.3 lets a pong answer only the latest ping).
pub fn ping_answered_with_same_payload<B: Backend>() {
    let server = Server::<B>::serve(config(), echo);
    let mut raw = Raw::upgrade(server.addr, "/");
    let payloads: Vec<Vec<u8>> = vec![Vec::new(), b"hello-123".to_vec(), vec![0x5a; 125]];
    for p in &payloads {
        raw.send_frame(true, 0x9, p);
        let pong = raw.read_frame();
        assert_eq!(pong.opcode, 0xA, "expected a pong, got {pong:?}");
        assert_eq!(&pong.payload, p, "the pong must carry the ping's payload");
    }
    let burst: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i) + 1]).collect();
    let mut bytes = Vec::new();
    for p in &burst {
        bytes.extend(crate::client::frame(true, 0x9, p, Some([9, 8, 7, 6])));
    }
    raw.send(&bytes);
    let mut next = 0;
    loop {
        let pong = raw.read_frame();
        assert_eq!(pong.opcode, 0xA, "expected a pong, got {pong:?}");
        let Some(at) = burst[next..].iter().position(|p| *p == pong.payload) else {
            panic!("a pong answers no ping of the burst, or is out of order: {pong:?}");
        };
        next += at + 1;
        if next == burst.len() {
            break;
        }
    }
}

/// 200 pipelined messages, text and binary alternating, are echoed in order. Both
/// upgrade modes.
pub fn echo_200_messages_in_order<B: Backend>() {
    for mode in modes() {
        let server = Server::<B>::start(config(), mode, echo);
        let mut client = Client::connect(server.addr, "/");
        for i in 0..200u32 {
            if i % 2 == 0 {
                client.write(Message::text(format!("msg-{i}")));
            } else {
                client.write(Message::binary(i.to_be_bytes().to_vec()));
            }
        }
        client.flush();
        for i in 0..200u32 {
            if i % 2 == 0 {
                assert_eq!(client.recv_text(), format!("msg-{i}"), "out of order");
            } else {
                assert_eq!(client.recv_binary(), i.to_be_bytes(), "out of order at {i}");
            }
        }
    }
}
