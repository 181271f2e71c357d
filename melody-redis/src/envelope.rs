//! The envelope around each message on a Redis channel: version, node id, kind, payload.
//!
//! ```text
//! byte 0      version (1)
//! byte 1      kind: 0 text, 1 binary
//! bytes 2..10 the sending node's id, big-endian
//! bytes 10..  the payload, as the WebSocket message carries it
//! ```
//!
//! The topic is not repeated: it is the channel's name.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use melody_core::{MessageKind, Prepared};

/// The envelope version this crate writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;
/// Bytes before the payload.
pub const ENVELOPE_HEADER_LEN: usize = 10;

const KIND_TEXT: u8 = 0;
const KIND_BINARY: u8 = 1;

/// A node's random identity: its messages carry it, and it ignores its own echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub u64);

impl NodeId {
    /// A fresh random id. The standard library seeds each `RandomState` from the
    /// operating system's randomness; the clock and the process id are mixed in too.
    pub fn random() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        NodeId(hasher.finish())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Writes `message` from `node` into `out` (cleared first).
pub(crate) fn encode(node: NodeId, message: &Prepared, out: &mut Vec<u8>) {
    let payload = message.payload();
    out.clear();
    out.reserve(ENVELOPE_HEADER_LEN + payload.len());
    out.push(ENVELOPE_VERSION);
    out.push(match message.kind() {
        MessageKind::Text => KIND_TEXT,
        MessageKind::Binary => KIND_BINARY,
    });
    out.extend_from_slice(&node.0.to_be_bytes());
    out.extend_from_slice(&payload);
}

/// A decoded envelope, borrowing the payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub(crate) node: NodeId,
    pub(crate) kind: MessageKind,
    pub(crate) payload: &'a [u8],
}

/// Why bytes from Redis are not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    TooShort,
    Version(u8),
    Kind(u8),
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, Malformed> {
    let Some((header, payload)) = bytes.split_first_chunk::<ENVELOPE_HEADER_LEN>() else {
        return Err(Malformed::TooShort);
    };
    let [version, kind, id @ ..] = header;
    if *version != ENVELOPE_VERSION {
        return Err(Malformed::Version(*version));
    }
    let kind = match *kind {
        KIND_TEXT => MessageKind::Text,
        KIND_BINARY => MessageKind::Binary,
        other => return Err(Malformed::Kind(other)),
    };
    Ok(Envelope {
        node: NodeId(u64::from_be_bytes(*id)),
        kind,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_node_kind_and_payload() {
        let node = NodeId(0x0102_0304_0506_0708);
        let mut buf = Vec::new();
        for message in [Prepared::text("héllo"), Prepared::binary([0u8, 255, 7])] {
            encode(node, &message, &mut buf);
            assert_eq!(buf.len(), ENVELOPE_HEADER_LEN + message.payload().len());
            let envelope = decode(&buf).expect("decodes");
            assert_eq!(envelope.node, node);
            assert_eq!(envelope.kind, message.kind());
            assert_eq!(envelope.payload, &message.payload()[..]);
        }
    }

    #[test]
    fn empty_payload_is_fine() {
        let mut buf = Vec::new();
        encode(NodeId(9), &Prepared::text(""), &mut buf);
        assert_eq!(decode(&buf).map(|e| e.payload.len()), Ok(0));
    }

    #[test]
    fn bad_bytes_are_refused_not_panicked_on() {
        assert_eq!(decode(&[]), Err(Malformed::TooShort));
        assert_eq!(decode(&[1; 9]), Err(Malformed::TooShort));
        assert_eq!(decode(&[2; 10]), Err(Malformed::Version(2)));
        let mut bad_kind = [0u8; 10];
        bad_kind[0] = ENVELOPE_VERSION;
        bad_kind[1] = 7;
        assert_eq!(decode(&bad_kind), Err(Malformed::Kind(7)));
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(NodeId::random(), NodeId::random());
    }
}
