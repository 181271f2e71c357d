//! The envelope around each message on a Redis channel: version, kind, node id, the
//! event fields, payload.
//!
//! ```text
//! byte 0      version (2)
//! byte 1      kind: 0 text, 1 binary
//! bytes 2..10 the sending node's id, big-endian
//! byte 10     fields: bit 0 an event name follows, bit 1 an event id follows
//! then        for each field present, in that order: its length (u32, big-endian)
//!             and its UTF-8 bytes
//! then        the payload, as the WebSocket message carries it (an event's data)
//! ```
//!
//! The topic is not repeated: it is the channel's name.
//!
//! Version 1 (no field byte, no event fields) is still read, so a node of this version
//! takes messages from older nodes during a rolling upgrade. An older node reads only
//! version 1: it counts a version-2 envelope as malformed (`malformed` in its stats)
//! and delivers nothing of it, so messages from upgraded nodes do not reach its
//! sessions until it is upgraded too.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use melody_core::sse::Event;
use melody_core::{MessageKind, Prepared, Publication};

/// The envelope version this crate writes.
pub const ENVELOPE_VERSION: u8 = 2;
/// The oldest envelope version this crate reads.
pub const OLDEST_READ_VERSION: u8 = 1;
/// Bytes before the payload of an envelope without event fields.
pub const ENVELOPE_HEADER_LEN: usize = 11;
/// Bytes before the payload of a version-1 envelope.
const V1_HEADER_LEN: usize = 10;

const KIND_TEXT: u8 = 0;
const KIND_BINARY: u8 = 1;
const HAS_NAME: u8 = 1;
const HAS_ID: u8 = 2;

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
pub(crate) fn encode(node: NodeId, message: &Publication, out: &mut Vec<u8>) {
    let payload = message.prepared().payload();
    let (name, id) = (message.event_name(), message.event_id());
    let fields_len = name.map_or(0, |n| 4 + n.len()) + id.map_or(0, |i| 4 + i.len());
    out.clear();
    out.reserve(ENVELOPE_HEADER_LEN + fields_len + payload.len());
    out.push(ENVELOPE_VERSION);
    out.push(match message.kind() {
        MessageKind::Text => KIND_TEXT,
        MessageKind::Binary => KIND_BINARY,
    });
    out.extend_from_slice(&node.0.to_be_bytes());
    let flags = if name.is_some() { HAS_NAME } else { 0 } | if id.is_some() { HAS_ID } else { 0 };
    out.push(flags);
    for field in [name, id].into_iter().flatten() {
        // Names and ids are short in practice; one past 4 GiB cannot be published,
        // since no message of that size fits the process either.
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&payload);
}

/// A decoded envelope, borrowing the payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    pub(crate) node: NodeId,
    pub(crate) kind: MessageKind,
    pub(crate) name: Option<&'a str>,
    pub(crate) id: Option<&'a str>,
    pub(crate) payload: &'a [u8],
}

impl Envelope<'_> {
    /// The message to deliver locally; `None` when the fields do not make one (text
    /// that is not UTF-8, an event name or id a publisher could not have sent).
    pub(crate) fn publication(&self) -> Option<Publication> {
        if self.name.is_none() && self.id.is_none() {
            return Prepared::new(self.kind, self.payload).map(Publication::from);
        }
        if self.kind != MessageKind::Text {
            return None;
        }
        let mut event = Event::from_utf8(melody_core::Bytes::copy_from_slice(self.payload))?;
        if let Some(name) = self.name {
            event = event.name(name).ok()?;
        }
        if let Some(id) = self.id {
            event = event.id(id).ok()?;
        }
        Some(Publication::event(event))
    }
}

/// Why bytes from Redis are not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    TooShort,
    Version(u8),
    Kind(u8),
    Field,
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, Malformed> {
    let Some((header, rest)) = bytes.split_first_chunk::<V1_HEADER_LEN>() else {
        return Err(Malformed::TooShort);
    };
    let [version, kind, id @ ..] = header;
    if !(OLDEST_READ_VERSION..=ENVELOPE_VERSION).contains(version) {
        return Err(Malformed::Version(*version));
    }
    let kind = match *kind {
        KIND_TEXT => MessageKind::Text,
        KIND_BINARY => MessageKind::Binary,
        other => return Err(Malformed::Kind(other)),
    };
    let mut envelope = Envelope {
        node: NodeId(u64::from_be_bytes(*id)),
        kind,
        name: None,
        id: None,
        payload: rest,
    };
    if *version == 1 {
        return Ok(envelope);
    }
    let Some((&flags, mut rest)) = rest.split_first() else {
        return Err(Malformed::TooShort);
    };
    if flags & !(HAS_NAME | HAS_ID) != 0 {
        return Err(Malformed::Field);
    }
    let mut field = |present: bool| -> Result<Option<&[u8]>, Malformed> {
        if !present {
            return Ok(None);
        }
        let (len, after) = rest.split_first_chunk::<4>().ok_or(Malformed::TooShort)?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| Malformed::Field)?;
        if after.len() < len {
            return Err(Malformed::TooShort);
        }
        let (value, after) = after.split_at(len);
        rest = after;
        Ok(Some(value))
    };
    let name = field(flags & HAS_NAME != 0)?;
    let id = field(flags & HAS_ID != 0)?;
    envelope.name = utf8_field(name)?;
    envelope.id = utf8_field(id)?;
    envelope.payload = rest;
    Ok(envelope)
}

fn utf8_field(field: Option<&[u8]>) -> Result<Option<&str>, Malformed> {
    field
        .map(|v| std::str::from_utf8(v).map_err(|_| Malformed::Field))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_node_kind_and_payload() {
        let node = NodeId(0x0102_0304_0506_0708);
        let mut buf = Vec::new();
        for message in [Prepared::text("héllo"), Prepared::binary([0u8, 255, 7])] {
            encode(node, &Publication::from(message.clone()), &mut buf);
            assert_eq!(buf.len(), ENVELOPE_HEADER_LEN + message.payload().len());
            let envelope = decode(&buf).expect("decodes");
            assert_eq!(envelope.node, node);
            assert_eq!(envelope.kind, message.kind());
            assert_eq!((envelope.name, envelope.id), (None, None));
            assert_eq!(envelope.payload, &message.payload()[..]);
        }
    }

    #[test]
    fn events_keep_their_name_and_id() {
        let event = Event::new("a\nb").name("tick").and_then(|e| e.id("7"));
        let message = Publication::event(event.expect("valid"));
        let mut buf = Vec::new();
        encode(NodeId(1), &message, &mut buf);
        let envelope = decode(&buf).expect("decodes");
        assert_eq!((envelope.name, envelope.id), (Some("tick"), Some("7")));
        assert_eq!(envelope.payload, b"a\nb");
        let back = envelope.publication().expect("an event");
        assert_eq!(back.event_name(), Some("tick"));
        assert_eq!(back.event_id(), Some("7"));
        assert_eq!(&back.prepared().payload()[..], b"a\nb");
    }

    #[test]
    fn version_1_envelopes_are_still_read() {
        let mut v1 = vec![1, KIND_TEXT];
        v1.extend_from_slice(&5u64.to_be_bytes());
        v1.extend_from_slice(b"old");
        let envelope = decode(&v1).expect("decodes");
        assert_eq!((envelope.node, envelope.payload), (NodeId(5), &b"old"[..]));
    }

    #[test]
    fn forged_event_fields_are_refused() {
        let mut buf = vec![ENVELOPE_VERSION, KIND_TEXT];
        buf.extend_from_slice(&1u64.to_be_bytes());
        buf.push(HAS_NAME);
        buf.extend_from_slice(&3u32.to_be_bytes());
        buf.extend_from_slice(b"a\nb");
        let envelope = decode(&buf).expect("the frame decodes");
        assert!(
            envelope.publication().is_none(),
            "a name with a line break is never sent"
        );
        let mut long = buf[..11].to_vec();
        long.extend_from_slice(&100u32.to_be_bytes());
        assert_eq!(decode(&long), Err(Malformed::TooShort));
    }

    #[test]
    fn empty_payload_is_fine() {
        let mut buf = Vec::new();
        encode(NodeId(9), &Publication::text(""), &mut buf);
        assert_eq!(decode(&buf).map(|e| e.payload.len()), Ok(0));
    }

    #[test]
    fn bad_bytes_are_refused_not_panicked_on() {
        assert_eq!(decode(&[]), Err(Malformed::TooShort));
        assert_eq!(decode(&[1; 9]), Err(Malformed::TooShort));
        assert_eq!(decode(&[3; 10]), Err(Malformed::Version(3)));
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
