//! Server-Sent Events: the event a publisher builds, and its wire form in the WHATWG
//! `text/event-stream` format.
//!
//! An event-stream session is a plain `GET` answered `200 text/event-stream` and kept
//! open; the hub writes events to it as it writes frames to a WebSocket. What differs
//! is only the encoding, which lives here.

use bytes::{BufMut, Bytes, BytesMut};

/// One server-sent event: data, and optionally a name (`event:`) and an id (`id:`).
///
/// WebSocket subscribers get the data alone, as one text frame; event-stream
/// subscribers get the whole event. A name or id must not hold a line break (it
/// would end the field early and let the rest pose as other fields), and an id must
/// not hold NUL (the browser would ignore it): the builder refuses both with an
/// [`EventError`], so such an event is never sent. Data may span lines: each line
/// becomes its own `data:` field and the client joins them with `\n`.
///
/// ```
/// use melody_core::sse::{Event, EventError};
///
/// let event = Event::new("line one\nline two").name("update")?.id("42")?;
/// assert_eq!(
///     event.to_wire(),
///     "event: update\nid: 42\ndata: line one\ndata: line two\n\n"
/// );
/// assert_eq!(Event::new("x").name("a\nb").unwrap_err(), EventError::LineBreakInName);
/// # Ok::<(), EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    data: Bytes,
    name: Option<Box<str>>,
    id: Option<Box<str>>,
}

/// Why an [`Event`] field was refused.
///
/// ```
/// use melody_core::sse::{Event, EventError};
///
/// let err = Event::new("x").id("1\n2").unwrap_err();
/// assert_eq!(err, EventError::LineBreakInId);
/// assert_eq!(err.to_string(), "an event id must not hold CR or LF");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The event name holds CR or LF.
    #[error("an event name must not hold CR or LF")]
    LineBreakInName,
    /// The event id holds CR or LF.
    #[error("an event id must not hold CR or LF")]
    LineBreakInId,
    /// The event id holds NUL, which makes browsers ignore it.
    #[error("an event id must not hold NUL")]
    NulInId,
}

impl Event {
    /// A data-only event (the browser dispatches it as `message`).
    ///
    /// ```
    /// use melody_core::sse::Event;
    ///
    /// let event = Event::new("hello");
    /// assert_eq!(event.to_wire(), "data: hello\n\n");
    /// ```
    pub fn new(data: impl Into<String>) -> Self {
        Event {
            data: Bytes::from(data.into()),
            name: None,
            id: None,
        }
    }

    /// A data-only event over text already held as bytes; `None` if not UTF-8.
    ///
    /// ```
    /// use melody_core::{sse::Event, Bytes};
    ///
    /// let event = Event::from_utf8(Bytes::from_static(b"shared")).expect("UTF-8");
    /// assert_eq!(event.data(), "shared");
    /// assert!(Event::from_utf8(Bytes::from_static(&[0xff])).is_none());
    /// ```
    pub fn from_utf8(data: Bytes) -> Option<Self> {
        std::str::from_utf8(&data).ok()?;
        Some(Event {
            data,
            name: None,
            id: None,
        })
    }

    /// Names the event (`event:`); the browser dispatches it under that name.
    ///
    /// ```
    /// use melody_core::sse::{Event, EventError};
    ///
    /// let event = Event::new("21.5").name("temperature")?;
    /// assert_eq!(event.to_wire(), "event: temperature\ndata: 21.5\n\n");
    /// assert_eq!(Event::new("x").name("two\nlines"), Err(EventError::LineBreakInName));
    /// # Ok::<(), EventError>(())
    /// ```
    pub fn name(mut self, name: impl AsRef<str>) -> Result<Self, EventError> {
        let name = name.as_ref();
        if name.contains(['\r', '\n']) {
            return Err(EventError::LineBreakInName);
        }
        self.name = Some(name.into());
        Ok(self)
    }

    /// Gives the event an id (`id:`): the browser's `lastEventId`, sent back as
    /// `Last-Event-ID` when it reconnects.
    ///
    /// ```
    /// use melody_core::sse::{Event, EventError};
    ///
    /// let event = Event::new("21.5").id("1042")?;
    /// assert_eq!(event.to_wire(), "id: 1042\ndata: 21.5\n\n");
    /// assert_eq!(Event::new("x").id("nul\0"), Err(EventError::NulInId));
    /// # Ok::<(), EventError>(())
    /// ```
    pub fn id(mut self, id: impl AsRef<str>) -> Result<Self, EventError> {
        let id = id.as_ref();
        if id.contains(['\r', '\n']) {
            return Err(EventError::LineBreakInId);
        }
        if id.contains('\0') {
            return Err(EventError::NulInId);
        }
        self.id = Some(id.into());
        Ok(self)
    }

    /// The data, as given.
    ///
    /// ```
    /// use melody_core::sse::Event;
    ///
    /// assert_eq!(Event::new("line one\nline two").data(), "line one\nline two");
    /// ```
    pub fn data(&self) -> &str {
        // Built from a `String` or checked UTF-8 only.
        std::str::from_utf8(&self.data).unwrap_or_default()
    }

    /// The data as shared bytes (no copy).
    ///
    /// ```
    /// use melody_core::sse::Event;
    ///
    /// let event = Event::new("abc");
    /// assert_eq!(&event.data_bytes()[..], b"abc");
    /// ```
    pub fn data_bytes(&self) -> &Bytes {
        &self.data
    }

    /// The name, if one was set.
    ///
    /// ```
    /// use melody_core::sse::Event;
    ///
    /// assert_eq!(Event::new("x").name("tick")?.event_name(), Some("tick"));
    /// assert_eq!(Event::new("x").event_name(), None);
    /// # Ok::<(), melody_core::sse::EventError>(())
    /// ```
    pub fn event_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The id, if one was set.
    ///
    /// ```
    /// use melody_core::sse::Event;
    ///
    /// assert_eq!(Event::new("x").id("7")?.event_id(), Some("7"));
    /// assert_eq!(Event::new("x").event_id(), None);
    /// # Ok::<(), melody_core::sse::EventError>(())
    /// ```
    pub fn event_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The event as an event stream carries it, blank line included.
    ///
    /// ```
    /// use melody_core::sse::Event;
    ///
    /// let event = Event::new("a\nb").name("pair")?;
    /// assert_eq!(event.to_wire(), "event: pair\ndata: a\ndata: b\n\n");
    /// # Ok::<(), melody_core::sse::EventError>(())
    /// ```
    pub fn to_wire(&self) -> String {
        let mut out = BytesMut::new();
        write_event(
            &mut out,
            self.name.as_deref(),
            self.id.as_deref(),
            &self.data,
        );
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Writes one event: `event:`, `id:`, one `data:` per line of `data`, a blank line.
/// Lines end at CRLF, CR or LF, as the client splits them.
fn write_event(out: &mut BytesMut, name: Option<&str>, id: Option<&str>, data: &[u8]) {
    if let Some(name) = name {
        out.put_slice(b"event: ");
        out.put_slice(name.as_bytes());
        out.put_u8(b'\n');
    }
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(id.as_bytes());
        out.put_u8(b'\n');
    }
    let mut rest = data;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        out.put_slice(b"data: ");
        out.put_slice(&rest[..end]);
        out.put_u8(b'\n');
        if end == rest.len() {
            break;
        }
        let skip = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
    out.put_u8(b'\n');
}

/// How many bytes the event will take, for one allocation.
fn event_len(name: Option<&str>, id: Option<&str>, data: &[u8]) -> usize {
    // Each line costs `data: ` and `\n`; line breaks (CRLF being one) are not written.
    let (mut lines, mut break_bytes) = (1, 0);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                lines += 1;
                break_bytes += 2;
                i += 1;
            }
            b'\r' | b'\n' => {
                lines += 1;
                break_bytes += 1;
            }
            _ => {}
        }
        i += 1;
    }
    name.map_or(0, |n| 8 + n.len()) + id.map_or(0, |i| 5 + i.len()) + 7 * lines + data.len()
        - break_bytes
        + 1
}

/// An event wrapped in one HTTP/1.1 chunk: `{len:x}\r\n`, the event, `\r\n`. Returns
/// the bytes and the length of the chunk header; the bare event is the slice between
/// the header and the trailing CRLF (what an HTTP framework, doing its own chunking,
/// writes).
pub(crate) fn encode_chunked(name: Option<&str>, id: Option<&str>, data: &[u8]) -> (Bytes, u8) {
    let len = event_len(name, id, data);
    let header = format!("{len:x}\r\n");
    let mut out = BytesMut::with_capacity(header.len() + len + 2);
    out.put_slice(header.as_bytes());
    write_event(&mut out, name, id, data);
    out.put_slice(b"\r\n");
    // A chunk header of a `usize` length is at most 18 bytes.
    (out.freeze(), header.len() as u8)
}

/// The data of an encoded (bare) event: its `data:` lines joined with `\n`.
pub(crate) fn data_of(event: &[u8]) -> Bytes {
    let mut data = Vec::with_capacity(event.len());
    let mut first = true;
    for line in event.split(|&b| b == b'\n') {
        if let Some(value) = line.strip_prefix(b"data: ") {
            if !first {
                data.push(b'\n');
            }
            data.extend_from_slice(value);
            first = false;
        }
    }
    Bytes::from(data)
}

/// A comment line: proxies and clients see traffic, no event is dispatched.
pub(crate) const KEEPALIVE: &[u8] = b":\n\n";
/// [`KEEPALIVE`] as one chunk.
pub(crate) const KEEPALIVE_CHUNKED: &[u8] = b"3\r\n:\n\n\r\n";
/// The chunk that ends a chunked body.
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The `retry:` field that opens a stream, chunked or bare.
pub(crate) fn retry_field(retry: std::time::Duration, chunked: bool) -> Bytes {
    let field = format!("retry: {}\n\n", retry.as_millis());
    if chunked {
        Bytes::from(format!("{:x}\r\n{field}\r\n", field.len()))
    } else {
        Bytes::from(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_ending_splits_data() {
        let event = Event::new("a\r\nb\rc\nd\n");
        assert_eq!(
            event.to_wire(),
            "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
        assert_eq!(Event::new("").to_wire(), "data: \n\n");
    }

    #[test]
    fn the_length_estimate_is_exact() {
        for (name, id, data) in [
            (None, None, ""),
            (Some("n"), Some("7"), "x\r\ny\nz"),
            (Some(""), None, "\r\r\n\n"),
        ] {
            let mut out = BytesMut::new();
            write_event(&mut out, name, id, data.as_bytes());
            assert_eq!(out.len(), event_len(name, id, data.as_bytes()), "{data:?}");
        }
    }

    #[test]
    fn chunk_framing_wraps_the_bare_event() {
        let (wire, header) = encode_chunked(Some("tick"), None, b"1\n2");
        let bare = &wire[usize::from(header)..wire.len() - 2];
        assert_eq!(bare, b"event: tick\ndata: 1\ndata: 2\n\n");
        assert_eq!(
            &wire[..usize::from(header)],
            format!("{:x}\r\n", bare.len()).as_bytes()
        );
        assert!(wire.ends_with(b"\r\n"));
        assert_eq!(&data_of(bare)[..], b"1\n2");
    }

    #[test]
    fn names_and_ids_with_line_breaks_or_nul_are_refused() {
        assert_eq!(
            Event::new("").name("a\rb"),
            Err(EventError::LineBreakInName)
        );
        assert_eq!(Event::new("").id("1\n"), Err(EventError::LineBreakInId));
        assert_eq!(Event::new("").id("1\0"), Err(EventError::NulInId));
        assert!(Event::new("").name("ok").and_then(|e| e.id("9")).is_ok());
    }
}
