//! Messages encoded once into server frames, shared by reference among recipients.

use bytes::{Bytes, BytesMut};
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Whether a data message is text or binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A text message (valid UTF-8).
    Text,
    /// A binary message.
    Binary,
}

/// A message encoded once as an unmasked server frame.
///
/// Server frames carry no mask, so the same bytes go to every recipient: a broadcast
/// to N sessions costs one encode, then a reference-count increment per recipient (a
/// frame of up to 1 KiB is held once by the hub instead, and each outbox keeps its
/// position). Cloning is cheap.
///
/// ```
/// use melody_core::{MessageKind, Prepared};
///
/// let msg = Prepared::text("hello");
/// assert_eq!(msg.kind(), MessageKind::Text);
/// assert_eq!(&msg.payload()[..], b"hello");
/// assert_eq!(msg.wire_len(), 2 + 5, "two header bytes, then the payload");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Prepared {
    frame: Bytes,
    header_len: u8,
    kind: MessageKind,
}

impl Prepared {
    /// A text message.
    pub fn text(text: impl AsRef<str>) -> Self {
        Self::encode(MessageKind::Text, text.as_ref().as_bytes())
    }

    /// A binary message.
    pub fn binary(data: impl AsRef<[u8]>) -> Self {
        Self::encode(MessageKind::Binary, data.as_ref())
    }

    /// A message of the given kind. `None` when `kind` is text and `data` is not UTF-8.
    pub fn new(kind: MessageKind, data: &[u8]) -> Option<Self> {
        if kind == MessageKind::Text && std::str::from_utf8(data).is_err() {
            return None;
        }
        Some(Self::encode(kind, data))
    }

    /// A message already encoded: `frame` holds `header_len` bytes of framing, then
    /// the payload (for an event, what follows the chunk header).
    pub(crate) fn from_parts(frame: Bytes, header_len: u8, kind: MessageKind) -> Self {
        Prepared {
            frame,
            header_len,
            kind,
        }
    }

    /// Bytes of framing before the payload.
    pub(crate) fn header_len(&self) -> u8 {
        self.header_len
    }

    /// Frames `payload` as a message of `kind` (text must be UTF-8 already).
    pub(crate) fn encode(kind: MessageKind, payload: &[u8]) -> Self {
        let opcode = match kind {
            MessageKind::Text => OpCode::Data(Data::Text),
            MessageKind::Binary => OpCode::Data(Data::Binary),
        };
        let (frame, header_len) = encode_frame(opcode, payload);
        Prepared {
            frame,
            header_len,
            kind,
        }
    }

    /// Text or binary.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The message's payload (a view into the shared frame, no copy).
    pub fn payload(&self) -> Bytes {
        self.frame.slice(usize::from(self.header_len)..)
    }

    /// The payload's length in bytes.
    ///
    /// ```
    /// use melody_core::Prepared;
    ///
    /// assert_eq!(Prepared::text("hello").payload_len(), 5);
    /// ```
    pub fn payload_len(&self) -> usize {
        self.frame.len() - usize::from(self.header_len)
    }

    /// The frame's size on the wire, header included.
    pub fn wire_len(&self) -> usize {
        self.frame.len()
    }

    /// The encoded frame.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The encoded frame, without another reference-count increment.
    pub fn into_frame(self) -> Bytes {
        self.frame
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("kind", &self.kind)
            .field(
                "payload_len",
                &(self.frame.len() - usize::from(self.header_len)),
            )
            .finish()
    }
}

/// Encodes one unmasked final frame with tungstenite's header codec.
pub(crate) fn encode_frame(opcode: OpCode, payload: &[u8]) -> (Bytes, u8) {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let len = payload.len() as u64;
    let header_len = header.len(len);
    let mut buf = BytesMut::with_capacity(header_len + payload.len());
    let mut writer = bytes::BufMut::writer(buf);
    // Writing into memory cannot fail.
    let _ = header.format(len, &mut writer);
    buf = writer.into_inner();
    buf.extend_from_slice(payload);
    // A header is at most 14 bytes.
    (buf.freeze(), header_len as u8)
}

/// A close frame with `code` and `reason`, the reason cut to the 123 bytes a control
/// frame allows (at a character boundary).
pub(crate) fn close_frame(code: CloseCode, reason: &str) -> Bytes {
    let reason = truncate_reason(reason);
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&u16::from(code).to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    encode_frame(OpCode::Control(Control::Close), &payload).0
}

/// An empty ping, as olahol/melody sends.
pub(crate) fn ping_frame() -> Bytes {
    // FIN + ping, no payload: static, so a ping round allocates nothing.
    Bytes::from_static(&[0x89, 0x00])
}

pub(crate) fn truncate_reason(reason: &str) -> &str {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths_follow_rfc_6455() {
        assert_eq!(Prepared::binary(vec![0; 125]).wire_len(), 2 + 125);
        assert_eq!(Prepared::binary(vec![0; 126]).wire_len(), 4 + 126);
        assert_eq!(Prepared::binary(vec![0; 65535]).wire_len(), 4 + 65535);
        assert_eq!(Prepared::binary(vec![0; 65536]).wire_len(), 10 + 65536);
    }

    #[test]
    fn close_reason_is_cut_at_a_char_boundary() {
        let long = "é".repeat(100);
        let frame = close_frame(CloseCode::Normal, &long);
        // 2 header bytes, 2 code bytes, then at most 123 bytes of whole characters.
        assert_eq!(frame.len(), 2 + 2 + 122);
        assert!(std::str::from_utf8(&frame[4..]).is_ok());
    }

    #[test]
    fn new_refuses_invalid_utf8_text() {
        assert!(Prepared::new(MessageKind::Text, &[0xff]).is_none());
        assert!(Prepared::new(MessageKind::Binary, &[0xff]).is_some());
    }
}
