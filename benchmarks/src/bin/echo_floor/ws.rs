//! The WebSocket part, as little as an echo needs: the upgrade, then each data frame
//! back unmasked, pings answered, a close answered and ended.

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Most bytes held of a request or a frame not complete yet.
const INBOX_AT_MOST: usize = 64 * 1024;

/// One peer's protocol state: what it sent that is not handled yet.
#[derive(Default)]
pub struct Peer {
    inbox: Vec<u8>,
    upgraded: bool,
}

/// What the peer's bytes so far asked for.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Go on reading (replies, if any, were appended).
    Read,
    /// Send what was appended, then close.
    Close,
}

impl Peer {
    /// Takes `input`, appending every reply it calls for to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Next {
        self.inbox.extend_from_slice(input);
        let next = self.replies(out);
        if next == Next::Read && self.inbox.len() > INBOX_AT_MOST {
            return Next::Close;
        }
        next
    }

    fn replies(&mut self, out: &mut Vec<u8>) -> Next {
        let mut used = 0;
        if !self.upgraded {
            let Some(end) = self.inbox.windows(4).position(|w| w == b"\r\n\r\n") else {
                return Next::Read;
            };
            let Some(key) = websocket_key(&self.inbox[..end]) else {
                out.extend_from_slice(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                return Next::Close;
            };
            let accept = derive_accept_key(key);
            out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n");
            out.extend_from_slice(b"Connection: Upgrade\r\nSec-WebSocket-Accept: ");
            out.extend_from_slice(accept.as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            self.upgraded = true;
            used = end + 4;
        }
        let mut next = Next::Read;
        while let Some(frame) = Frame::parse(&self.inbox[used..]) {
            used += frame.len;
            let payload = &self.inbox[used - frame.payload_len..used];
            match frame.opcode {
                0x8 => {
                    reply(out, 0x88, payload, frame.mask);
                    next = Next::Close;
                    break;
                }
                0x9 => reply(out, 0x8a, payload, frame.mask),
                0xa => {}
                opcode => reply(out, frame.first_byte & 0x80 | opcode, payload, frame.mask),
            }
        }
        self.inbox.drain(..used);
        next
    }
}

/// The `Sec-WebSocket-Key` field's value in a request head.
fn websocket_key(head: &[u8]) -> Option<&[u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = line.split_at(colon);
        name.eq_ignore_ascii_case(b"sec-websocket-key")
            .then(|| value[1..].trim_ascii())
    })
}

/// A whole frame's header facts.
struct Frame {
    first_byte: u8,
    opcode: u8,
    mask: [u8; 4],
    payload_len: usize,
    /// Header and payload.
    len: usize,
}

impl Frame {
    /// The frame at the start of `bytes`, if all of it is there.
    fn parse(bytes: &[u8]) -> Option<Frame> {
        let (&first_byte, rest) = bytes.split_first()?;
        let (&second, rest) = rest.split_first()?;
        let (payload_len, rest) = match second & 0x7f {
            126 => (
                u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize,
                &rest[2..],
            ),
            127 => (
                u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) as usize,
                &rest[8..],
            ),
            len => (len as usize, rest),
        };
        let (mask, rest) = if second & 0x80 != 0 {
            (rest.get(..4)?.try_into().ok()?, &rest[4..])
        } else {
            ([0; 4], rest)
        };
        (rest.len() >= payload_len).then(|| Frame {
            first_byte,
            opcode: first_byte & 0x0f,
            mask,
            payload_len,
            len: bytes.len() - rest.len() + payload_len,
        })
    }
}

/// Appends an unmasked frame of `first_byte` carrying `payload` unmasked with `mask`.
fn reply(out: &mut Vec<u8>, first_byte: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(first_byte);
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

    #[test]
    fn upgrades_then_echoes_each_frame_unmasked_split_anywhere() {
        let mut peer = Peer::default();
        let mut input = UPGRADE.to_vec();
        input.extend_from_slice(&[0x82, 0x83, 1, 2, 3, 4, b'a' ^ 1, b'b' ^ 2, b'c' ^ 3]);
        let mut out = Vec::new();
        for byte in &input {
            assert_eq!(peer.feed(std::slice::from_ref(byte), &mut out), Next::Read);
        }
        let head = String::from_utf8_lossy(&out);
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(out.ends_with(&[0x82, 3, b'a', b'b', b'c']));
    }

    #[test]
    fn answers_a_close_and_refuses_a_request_without_key() {
        let mut peer = Peer::default();
        let mut out = Vec::new();
        peer.feed(UPGRADE, &mut out);
        out.clear();
        assert_eq!(
            peer.feed(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8], &mut out),
            Next::Close
        );
        assert_eq!(out, [0x88, 2, 0x03, 0xe8]);

        let mut out = Vec::new();
        assert_eq!(
            Peer::default().feed(b"GET / HTTP/1.1\r\n\r\n", &mut out),
            Next::Close
        );
        assert!(out.starts_with(b"HTTP/1.1 400"));
    }

    #[test]
    fn a_peer_that_never_completes_a_frame_is_closed_at_the_bound() {
        let mut peer = Peer::default();
        let mut out = Vec::new();
        peer.feed(UPGRADE, &mut out);
        assert_eq!(
            peer.feed(&[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0], &mut out),
            Next::Read
        );
        assert_eq!(peer.feed(&vec![0; INBOX_AT_MOST], &mut out), Next::Close);
    }
}
