//! What a WebSocket client puts on the wire: upgrade requests and masked frames, built
//! from fuzz input so the hub sees well-formed traffic as well as noise.

use arbitrary::Arbitrary;

/// The RFC 6455 sample key: valid, so the request is accepted when nothing else is wrong.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// An upgrade request for `host`, with extra header lines (each ending in `\r\n`).
pub fn upgrade_request(extra: &str) -> Vec<u8> {
    format!(
        "GET /ws?room=1 HTTP/1.1\r\nHost: fuzz.test\r\nConnection: keep-alive, Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n\
         {extra}\r\n"
    )
    .into_bytes()
}

/// The origins a browser request comes from: the same host, an allowed one, another.
pub const ORIGINS: [&str; 3] = [
    "http://fuzz.test",
    "http://allowed.test",
    "http://evil.test",
];

/// A request for an event stream (or one that looks like it but is not).
#[derive(Debug, Clone, Arbitrary)]
pub struct StreamRequest {
    /// Which `Accept` (and whether it also asks for a WebSocket upgrade).
    accept: u8,
    origin: Option<u8>,
    /// A reconnecting `EventSource`'s `Last-Event-ID`, whatever it holds.
    last_event_id: Option<String>,
}

impl StreamRequest {
    pub fn bytes(&self) -> Vec<u8> {
        const ACCEPTS: [&str; 5] = [
            "Accept: text/event-stream\r\n",
            "Accept: text/html;q=0.9, Text/Event-Stream ;q=1\r\n",
            "Accept: text/html\r\nAccept: text/event-stream\r\n",
            "Accept: */*\r\n",
            "Accept: text/event-stream\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n",
        ];
        let mut head = format!(
            "GET /events HTTP/1.1\r\nHost: fuzz.test\r\n{}",
            ACCEPTS[usize::from(self.accept) % ACCEPTS.len()]
        );
        if let Some(n) = self.origin {
            head.push_str(&format!(
                "Origin: {}\r\n",
                ORIGINS[usize::from(n) % ORIGINS.len()]
            ));
        }
        if let Some(id) = &self.last_event_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// The handshakes the session target opens connections with.
#[derive(Debug, Clone, Arbitrary)]
pub enum Handshake {
    /// A request the hub accepts (unless the session cap is reached).
    Valid,
    /// A request offering subprotocols.
    WithProtocols,
    /// A browser request from this `Origin` (the same host, an allowed one, or another).
    WithOrigin(u8),
    /// A plain `GET` that asks for no upgrade (answered by the page, if configured).
    PlainGet,
    /// Whatever bytes the input holds.
    Garbage(Vec<u8>),
}

impl Handshake {
    /// The request's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Handshake::Valid => upgrade_request(""),
            Handshake::WithProtocols => {
                upgrade_request("Sec-WebSocket-Protocol: superchat, chat, other\r\n")
            }
            Handshake::WithOrigin(n) => {
                let origin = ORIGINS[usize::from(*n) % ORIGINS.len()];
                upgrade_request(&format!("Origin: {origin}\r\n"))
            }
            Handshake::PlainGet => b"GET / HTTP/1.1\r\nHost: fuzz.test\r\n\r\n".to_vec(),
            Handshake::Garbage(bytes) => bytes.clone(),
        }
    }
}

/// One frame a client sends. Payloads come from the input; lengths are encoded
/// correctly unless [`PeerFrame::Raw`] says otherwise.
#[derive(Debug, Clone, Arbitrary)]
pub enum PeerFrame {
    /// A text frame (a whole message when `fin`, else the first fragment).
    Text { text: String, fin: bool },
    /// A binary frame.
    Binary { data: Vec<u8>, fin: bool },
    /// A continuation frame.
    Continuation { data: Vec<u8>, fin: bool },
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame: no payload, or a code and a reason.
    Close(Option<(u16, String)>),
    /// A close frame whose reason is arbitrary bytes (possibly invalid UTF-8).
    CloseRawReason(u16, Vec<u8>),
    /// Any first byte (FIN, RSV bits, opcode), masked or not, with a payload length
    /// that may lie about the payload.
    Raw {
        first_byte: u8,
        masked: bool,
        announced_len: Option<u64>,
        data: Vec<u8>,
    },
}

const FIN: u8 = 0x80;

impl PeerFrame {
    /// The frame's bytes, masked with `mask` (unless a raw frame says unmasked).
    pub fn encode(&self, mask: [u8; 4]) -> Vec<u8> {
        let fin = |f: bool| if f { FIN } else { 0 };
        match self {
            PeerFrame::Text { text, fin: f } => frame(fin(*f) | 0x1, mask, text.as_bytes()),
            PeerFrame::Binary { data, fin: f } => frame(fin(*f) | 0x2, mask, data),
            PeerFrame::Continuation { data, fin: f } => frame(fin(*f), mask, data),
            PeerFrame::Ping(data) => frame(FIN | 0x9, mask, data),
            PeerFrame::Pong(data) => frame(FIN | 0xA, mask, data),
            PeerFrame::Close(None) => frame(FIN | 0x8, mask, &[]),
            PeerFrame::Close(Some((code, reason))) => {
                frame(FIN | 0x8, mask, &close_payload(*code, reason.as_bytes()))
            }
            PeerFrame::CloseRawReason(code, reason) => {
                frame(FIN | 0x8, mask, &close_payload(*code, reason))
            }
            PeerFrame::Raw {
                first_byte,
                masked,
                announced_len,
                data,
            } => {
                let len = announced_len.unwrap_or(data.len() as u64);
                let mut out = vec![*first_byte];
                push_len(&mut out, *masked, len);
                if *masked {
                    out.extend_from_slice(&mask);
                    out.extend(masked_bytes(data, mask));
                } else {
                    out.extend_from_slice(data);
                }
                out
            }
        }
    }
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// A masked frame with an honest length.
pub fn frame(first_byte: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    push_len(&mut out, true, payload.len() as u64);
    out.extend_from_slice(&mask);
    out.extend(masked_bytes(payload, mask));
    out
}

/// The second byte (MASK bit and 7-bit length) and the extended length, if any.
fn push_len(out: &mut Vec<u8>, masked: bool, len: u64) {
    let mask_bit = if masked { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

fn masked_bytes(payload: &[u8], mask: [u8; 4]) -> impl Iterator<Item = u8> + '_ {
    payload
        .iter()
        .enumerate()
        .map(move |(i, b)| b ^ mask[i % 4])
}
