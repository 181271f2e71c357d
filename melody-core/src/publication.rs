//! One message as every kind of session needs it: each wire form encoded at most once
//! per publish, on first need, and shared by reference among its recipients.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::deflate::{DeflatedCopies, SharedDeflaters};
use crate::history::Position;
use crate::prepared::{MessageKind, Prepared};
use crate::sse;

/// A message on its way to sessions of every kind.
///
/// A WebSocket session that writes text gets [`Publication::prepared`]; one that writes
/// binary (see [`Admission::binary_writes`](crate::Admission::binary_writes)) gets the
/// same data in a binary frame; an event-stream session gets it as a server-sent event,
/// with the name and id of the [`sse::Event`] it was built from, if any. Each of the
/// three is encoded the first time a recipient needs it and then shared: a publish to N
/// sessions of mixed kinds costs at most three encodes.
///
/// A binary message has no event-stream form (an event stream carries text only):
/// event-stream recipients are skipped and counted in
/// [`Delivery::skipped`](crate::Delivery::skipped).
///
/// ```
/// use melody_core::sse::Event;
/// use melody_core::{MessageKind, Prepared, Publication};
///
/// let event = Publication::event(Event::new("hi").name("greeting")?);
/// assert_eq!(event.kind(), MessageKind::Text);
/// assert_eq!(event.event_name(), Some("greeting"));
/// assert_eq!(&event.prepared().payload()[..], b"hi", "WebSocket sessions get the data");
///
/// let plain = Publication::from(Prepared::binary([1, 2, 3]));
/// assert_eq!(plain.kind(), MessageKind::Binary);
/// # Ok::<(), melody_core::sse::EventError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Publication {
    /// The frame of the message's own kind, encoded up front (most recipients are
    /// WebSocket sessions).
    frame: Prepared,
    name: Option<Box<str>>,
    id: Option<Box<str>>,
    /// Text data in a binary frame, for sessions that write binary.
    binary_frame: OnceLock<Prepared>,
    /// The event in one HTTP chunk, made on first need.
    event_chunk: OnceLock<Prepared>,
    /// The bare event (a slice of the chunk), made on first need: both are lent to
    /// every recipient, which copies a small one without taking a reference.
    event_bare: OnceLock<Prepared>,
    /// Set on a history topic (see [`crate::history`]).
    stamp: Option<Box<Stamp>>,
    /// permessage-deflate copies, for sessions that agreed to compression.
    deflated: OnceLock<Box<DeflatedCopies>>,
}

/// A history topic's mark on a message: its position, and the frames of sessions
/// that asked to see positions, each encoded once on first need.
#[derive(Debug, Clone)]
struct Stamp {
    position: Position,
    /// `[own kind, binary]`: see `positioned_frame_for`.
    frames: [OnceLock<Prepared>; 2],
}

impl Publication {
    /// A text message.
    ///
    /// ```
    /// use melody_core::{MessageKind, Publication};
    ///
    /// let msg = Publication::text("hello");
    /// assert_eq!(msg.kind(), MessageKind::Text);
    /// ```
    pub fn text(text: impl AsRef<str>) -> Self {
        Publication::from(Prepared::text(text))
    }

    /// A binary message (event-stream sessions skip it).
    ///
    /// ```
    /// use melody_core::{MessageKind, Publication};
    ///
    /// let msg = Publication::binary([0xca, 0xfe]);
    /// assert_eq!(msg.kind(), MessageKind::Binary);
    /// ```
    pub fn binary(data: impl AsRef<[u8]>) -> Self {
        Publication::from(Prepared::binary(data))
    }

    /// A server-sent event: its data goes to WebSocket sessions as a text frame.
    ///
    /// ```
    /// use melody_core::{sse, Publication};
    ///
    /// let msg = Publication::event(sse::Event::new("21.5").name("temperature")?.id("9")?);
    /// assert_eq!((msg.event_name(), msg.event_id()), (Some("temperature"), Some("9")));
    /// # Ok::<(), sse::EventError>(())
    /// ```
    pub fn event(event: sse::Event) -> Self {
        let frame = Prepared::text(event.data());
        Publication {
            frame,
            name: event.event_name().map(Into::into),
            id: event.event_id().map(Into::into),
            binary_frame: OnceLock::new(),
            event_chunk: OnceLock::new(),
            event_bare: OnceLock::new(),
            stamp: None,
            deflated: OnceLock::new(),
        }
    }

    /// The WebSocket frame in the message's own kind.
    ///
    /// ```
    /// use melody_core::Publication;
    ///
    /// let msg = Publication::text("hi");
    /// assert_eq!(&msg.prepared().payload()[..], b"hi");
    /// ```
    pub fn prepared(&self) -> &Prepared {
        &self.frame
    }

    /// The message's payload (an event's data), shared with the frame (no copy).
    ///
    /// ```
    /// use melody_core::{sse::Event, Publication};
    ///
    /// let msg = Publication::event(Event::new("data only").name("ignored here")?);
    /// assert_eq!(&msg.payload()[..], b"data only");
    /// # Ok::<(), melody_core::sse::EventError>(())
    /// ```
    pub fn payload(&self) -> Bytes {
        self.frame.payload()
    }

    /// Text or binary.
    ///
    /// ```
    /// use melody_core::{MessageKind, Prepared, Publication};
    ///
    /// assert_eq!(Publication::from(Prepared::binary([1])).kind(), MessageKind::Binary);
    /// ```
    pub fn kind(&self) -> MessageKind {
        self.frame.kind()
    }

    /// The event name, for a publication built from a named event.
    ///
    /// ```
    /// use melody_core::{sse::Event, Publication};
    ///
    /// assert_eq!(Publication::event(Event::new("x").name("tick")?).event_name(), Some("tick"));
    /// assert_eq!(Publication::text("x").event_name(), None);
    /// # Ok::<(), melody_core::sse::EventError>(())
    /// ```
    pub fn event_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The event id, for a publication built from an event with an id.
    ///
    /// ```
    /// use melody_core::{sse::Event, Publication};
    ///
    /// assert_eq!(Publication::event(Event::new("x").id("42")?).event_id(), Some("42"));
    /// assert_eq!(Publication::text("x").event_id(), None);
    /// # Ok::<(), melody_core::sse::EventError>(())
    /// ```
    pub fn event_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The message's position in its topic's history, once published to a topic that
    /// keeps one (see [`crate::history`]).
    ///
    /// ```
    /// use melody_core::Publication;
    ///
    /// assert_eq!(Publication::text("x").position(), None, "not published to a history topic");
    /// ```
    pub fn position(&self) -> Option<Position> {
        self.stamp.as_ref().map(|s| s.position)
    }

    /// The same message at `position`: frames shared, the event id replaced by the
    /// position (what a client hands back as `Last-Event-ID`).
    pub(crate) fn at_position(&self, position: Position) -> Publication {
        Publication {
            frame: self.frame.clone(),
            name: self.name.clone(),
            id: Some(position.to_string().into()),
            binary_frame: self.binary_frame.clone(),
            event_chunk: OnceLock::new(),
            event_bare: OnceLock::new(),
            stamp: Some(Box::new(Stamp {
                position,
                frames: Default::default(),
            })),
            deflated: self.deflated.clone(),
        }
    }

    /// The frame a WebSocket session that asked for positions gets: the position, a
    /// line feed, then the data, in one frame; shared by every such session.
    /// Unstamped messages go out as they are.
    pub(crate) fn positioned_frame_for(&self, binary_writes: bool) -> &Prepared {
        let Some(stamp) = &self.stamp else {
            return self.frame_for(binary_writes);
        };
        let binary = binary_writes || self.frame.kind() == MessageKind::Binary;
        stamp.frames[usize::from(binary)].get_or_init(|| {
            let position = stamp.position.to_string();
            let payload = self.frame.payload();
            let mut data = Vec::with_capacity(position.len() + 1 + payload.len());
            data.extend_from_slice(position.as_bytes());
            data.push(b'\n');
            data.extend_from_slice(&payload);
            let kind = if binary {
                MessageKind::Binary
            } else {
                MessageKind::Text
            };
            // The position is ASCII and the data valid UTF-8 when the kind is text.
            Prepared::new(kind, &data).unwrap_or_else(|| Prepared::binary(&data))
        })
    }

    /// The frame a WebSocket session gets: binary-writing sessions get text data in a
    /// binary frame.
    pub(crate) fn frame_for(&self, binary_writes: bool) -> &Prepared {
        if binary_writes && self.frame.kind() == MessageKind::Text {
            self.binary_frame
                .get_or_init(|| Prepared::binary(self.frame.payload()))
        } else {
            &self.frame
        }
    }

    /// The compressed frame a compressing WebSocket session gets (one copy per window
    /// and frame kind, made on first need); `None` when compression would not make the
    /// message smaller, so it goes uncompressed.
    pub(crate) fn deflated_for(
        &self,
        binary_writes: bool,
        window_bits: u8,
        deflaters: &mut SharedDeflaters,
    ) -> Option<Bytes> {
        let frame = self.frame_for(binary_writes);
        self.deflated
            .get_or_init(Box::default)
            .frame_for(frame, window_bits, deflaters)
    }

    /// The event an event-stream session gets, chunked (`true`: the session writes its
    /// own HTTP framing) or bare; `None` for binary data.
    pub(crate) fn event_for(&self, chunked: bool) -> Option<&Prepared> {
        if self.frame.kind() == MessageKind::Binary {
            return None;
        }
        let chunk = self.event_chunk.get_or_init(|| {
            let (chunk, header) = sse::encode_chunked(
                self.name.as_deref(),
                self.id.as_deref(),
                &self.frame.payload(),
            );
            Prepared::from_parts(chunk, header, MessageKind::Text)
        });
        Some(if chunked {
            chunk
        } else {
            self.event_bare.get_or_init(|| {
                let whole = chunk.frame();
                let bare = whole.slice(usize::from(chunk.header_len())..whole.len() - 2);
                Prepared::from_parts(bare, 0, MessageKind::Text)
            })
        })
    }
}

impl From<Prepared> for Publication {
    fn from(frame: Prepared) -> Self {
        Publication {
            frame,
            name: None,
            id: None,
            binary_frame: OnceLock::new(),
            event_chunk: OnceLock::new(),
            event_bare: OnceLock::new(),
            stamp: None,
            deflated: OnceLock::new(),
        }
    }
}

impl From<sse::Event> for Publication {
    fn from(event: sse::Event) -> Self {
        Publication::event(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stream_form_is_made_once_and_lent_to_every_recipient() {
        let msg = Publication::from(Prepared::text("hello"));
        let chunked = msg.event_for(true).expect("text has an event form");
        assert!(std::ptr::eq(chunked, msg.event_for(true).expect("again")));
        let bare = msg.event_for(false).expect("bare form");
        assert!(std::ptr::eq(bare, msg.event_for(false).expect("again")));
        assert_eq!(&bare.frame()[..], b"data: hello\n\n");
        let whole = chunked.frame();
        let header = usize::from(chunked.header_len());
        assert_eq!(&whole[header..whole.len() - 2], &bare.frame()[..]);
        assert_eq!(&whole[whole.len() - 2..], b"\r\n");
        assert!(Publication::from(Prepared::binary(vec![1u8]))
            .event_for(true)
            .is_none());
    }
}
