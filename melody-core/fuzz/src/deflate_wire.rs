//! Compressed client traffic for the `inflate` target: messages a permessage-deflate
//! client would send (compressed by flate2 as a browser's zlib would, fragmented, with
//! pings between fragments), some damaged on purpose, and what a correct server must
//! deliver from them.

use arbitrary::Arbitrary;
use flate2::{Compress, Compression, FlushCompress};

/// One message as the client sends it.
#[derive(Debug, Clone, Arbitrary)]
pub struct ClientMessage {
    pub payload: Payload,
    /// Sent with RSV1, its payload deflated; otherwise as is.
    pub compressed: bool,
    /// Frames the (compressed) payload is cut into: `1 + fragments % 4`.
    pub fragments: u8,
    /// A ping after the first fragment.
    pub ping_between: bool,
    pub damage: Option<Damage>,
}

/// What a message carries.
#[derive(Debug, Clone, Arbitrary)]
pub enum Payload {
    Text(String),
    Binary(Vec<u8>),
    /// `len` copies of `byte`: compresses to almost nothing (a small bomb).
    Repeat {
        byte: u8,
        len: u16,
    },
}

/// Ways the bytes on the wire differ from a valid message.
#[derive(Debug, Clone, Arbitrary)]
pub enum Damage {
    /// One byte of the compressed payload xored.
    Flip { at: u16, xor: u8 },
    /// The compressed payload cut short.
    Truncate { at: u16 },
    /// These bytes instead of the compressed payload.
    Replace(Vec<u8>),
    /// RSV1 on the last frame too (a continuation, when there are several).
    Rsv1OnLast,
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Text(t) => t.as_bytes().to_vec(),
            Payload::Binary(b) => b.clone(),
            Payload::Repeat { byte, len } => vec![*byte; usize::from(*len) * 4],
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, Payload::Text(_))
    }
}

/// What the server must deliver for one message, as far as it can be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this text or binary message.
    Message { text: bool, data: Vec<u8> },
    /// The session fails on this message (too big).
    Failure,
    /// Anything may happen from here on (damaged bytes).
    Unknown,
}

/// The client's side of a compressing session.
pub struct Client {
    deflate: Compress,
    takeover: bool,
}

impl Client {
    pub fn new(takeover: bool) -> Self {
        Client {
            deflate: Compress::new(Compression::fast(), false),
            takeover,
        }
    }

    fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        if !self.takeover {
            self.deflate.reset();
        }
        if data.is_empty() {
            // An empty stored block, as browsers send an empty message (RFC 7692
            // §7.2.3.6): zlib's sync flush writes nothing when nothing came in since the
            // last one.
            return vec![0x00];
        }
        let mut out = Vec::with_capacity(data.len() + data.len() / 32 + 1024);
        let mut input = data;
        loop {
            let before = self.deflate.total_in();
            let written_before = out.len();
            if self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                return out;
            }
            let used = usize::try_from(self.deflate.total_in() - before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            if used == 0 && out.len() == written_before {
                // No progress is possible: what was written is all there is.
                break;
            }
            // Done when everything went in and the flush fit in the room left.
            if input.is_empty() && out.len() < out.capacity() && out.ends_with(&[0, 0, 0xff, 0xff])
            {
                break;
            }
            out.reserve(out.capacity());
        }
        if out.ends_with(&[0, 0, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
        }
        out
    }

    /// Appends `msg`'s frames to `wire` and says what the server must make of it.
    pub fn send(&mut self, msg: &ClientMessage, max: usize, wire: &mut Vec<u8>) -> Expect {
        let data = msg.payload.bytes();
        let mut body = if msg.compressed {
            self.compress(&data)
        } else {
            data.clone()
        };
        // Damage makes a compressed message's outcome unknowable; an uncompressed one
        // simply carries other bytes.
        let mut damaged = false;
        match &msg.damage {
            Some(Damage::Flip { at, xor }) if !body.is_empty() => {
                let i = usize::from(*at) % body.len();
                body[i] ^= xor;
                damaged = *xor != 0;
            }
            Some(Damage::Truncate { at }) => {
                let keep = usize::from(*at).min(body.len());
                damaged = keep < body.len();
                body.truncate(keep);
            }
            Some(Damage::Replace(bytes)) => {
                body = bytes.clone();
                damaged = true;
            }
            _ => {}
        }
        let damaged = damaged && msg.compressed;
        let opcode = if msg.payload.is_text() { 0x1 } else { 0x2 };
        let pieces = 1 + usize::from(msg.fragments % 4);
        let step = body.len().div_ceil(pieces).max(1);
        let mut chunks: Vec<&[u8]> = body.chunks(step).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.iter().enumerate() {
            let mut first = if i == 0 { opcode } else { 0x0 };
            if i == last {
                first |= 0x80;
            }
            let rsv1_last = matches!(msg.damage, Some(Damage::Rsv1OnLast));
            if msg.compressed && (i == 0 || (i == last && rsv1_last)) {
                first |= 0x40;
            }
            frame(wire, first, chunk);
            if i == 0 && msg.ping_between {
                // Empty: control frames count against `max_message_size` too.
                frame(wire, 0x89, b"");
            }
        }
        if damaged {
            return Expect::Unknown;
        }
        if msg.compressed && last > 0 && matches!(msg.damage, Some(Damage::Rsv1OnLast)) {
            return Expect::Failure;
        }
        // What arrives once inflated: the payload, or the (perhaps damaged) bytes sent.
        let data = if msg.compressed { data } else { body };
        let text = msg.payload.is_text();
        if data.len() > max || (text && std::str::from_utf8(&data).is_err()) {
            return Expect::Failure;
        }
        Expect::Message { text, data }
    }
}

/// A masked frame (a fixed, nonzero key) in the shortest length form.
fn frame(wire: &mut Vec<u8>, first: u8, payload: &[u8]) {
    const MASK: [u8; 4] = [0x3c, 0xa5, 0x0f, 0x96];
    wire.push(first);
    match payload.len() {
        n if n < 126 => wire.push(0x80 | n as u8),
        n if n <= 0xffff => {
            wire.push(0x80 | 126);
            wire.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            wire.push(0x80 | 127);
            wire.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    wire.extend_from_slice(&MASK);
    wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
}
