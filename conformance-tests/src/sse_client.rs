//! An event-stream (Server-Sent Events) client on a plain blocking socket: it sends the
//! `GET` an `EventSource` sends, reads the response head, takes the body apart into
//! HTTP/1.1 chunks, and decodes the chunks' text as the WHATWG `text/event-stream`
//! parser does (fields `event`, `id`, `data`, `retry`; comments; lines ending in CRLF,
//! LF or CR). It shares no code with any adapter or melody crate, and every read is
//! bounded by a timeout.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::client::{End, READ_TIMEOUT};

/// A response head, as the client read it.
#[derive(Debug, Clone)]
pub(crate) struct SseHead {
    /// The status line, without its CRLF (`HTTP/1.1 200 OK`).
    pub(crate) status_line: String,
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
}

impl SseHead {
    /// The value of header `name` (case-insensitive), if present.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One unit of a chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// A chunk with its bytes (never empty).
    Data(Vec<u8>),
    /// The last chunk (`0\r\n\r\n`): the body is over.
    Last,
}

/// A dispatched event, as an `EventSource` would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, or `message` when there was none.
    pub(crate) name: String,
    /// The `id:` field of this event's block, if it had one.
    pub(crate) id: Option<String>,
    /// The `data:` fields joined with `\n`.
    pub(crate) data: String,
}

/// What a stream delivers, in order: events, reconnection times, comments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Event(SseEvent),
    /// A valid `retry:` field, in milliseconds.
    Retry(u64),
    /// A comment line (what follows the `:`), e.g. the empty keepalive comment.
    Comment(String),
}

/// The WHATWG event-stream parser: fed text, it yields records.
#[derive(Debug, Default)]
struct Decoder {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// The last byte fed was CR: a following LF belongs to the same line end.
    after_cr: bool,
    name: String,
    data: String,
    id: Option<String>,
    out: std::collections::VecDeque<Record>,
}

impl Decoder {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line();
                }
                b'\n' => self.end_line(),
                _ => self.line.push(b),
            }
        }
    }

    fn end_line(&mut self) {
        let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            self.out.push_back(Record::Comment(comment.to_owned()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.name = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                if let Ok(ms) = value.parse() {
                    self.out.push_back(Record::Retry(ms));
                }
            }
            _ => {} // ignored, as the parser ignores unknown fields
        }
    }

    fn dispatch(&mut self) {
        let name = std::mem::take(&mut self.name);
        let id = self.id.take();
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return; // nothing to dispatch (e.g. a block holding only `retry:`)
        }
        data.pop(); // the LF after the last data line
        let name = if name.is_empty() {
            "message".to_owned()
        } else {
            name
        };
        self.out
            .push_back(Record::Event(SseEvent { name, id, data }));
    }
}

/// An event-stream client on a blocking socket.
pub(crate) struct SseClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The client's address: the session's `remote_addr` on the server.
    pub(crate) local: SocketAddr,
    pub(crate) head: SseHead,
    decoder: Decoder,
    /// The last chunk arrived.
    ended: bool,
}

/// A response that was not an event stream: its head, its `Content-Length` body, and
/// the client, to see the connection end.
pub(crate) struct Refused {
    pub(crate) head: SseHead,
    pub(crate) body: String,
    pub(crate) client: Box<SseClient>,
}

impl std::fmt::Debug for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {:?}", self.head, self.body)
    }
}

/// The request an `EventSource` sends for `path`, plus `extra` header lines.
pub(crate) fn sse_request(addr: SocketAddr, path: &str, extra: &[(&str, &str)]) -> String {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Cache-Control: no-cache\r\n"
    );
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl SseClient {
    /// Opens an event stream on `path`; panics unless the server answers 200 with a
    /// chunked `text/event-stream`.
    pub(crate) fn connect(addr: SocketAddr, path: &str) -> SseClient {
        SseClient::try_connect(addr, path, &[])
            .unwrap_or_else(|r| panic!("event stream {path} refused: {r:?}"))
    }

    /// Sends the request with `extra` headers; a 200 is the stream (its head checked:
    /// `text/event-stream`, chunked), anything else is returned with its body.
    pub(crate) fn try_connect(
        addr: SocketAddr,
        path: &str,
        extra: &[(&str, &str)],
    ) -> Result<SseClient, Refused> {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let local = stream.local_addr().unwrap();
        let mut client = SseClient {
            stream,
            buf: Vec::new(),
            local,
            head: SseHead {
                status_line: String::new(),
                status: 0,
                headers: Vec::new(),
            },
            decoder: Decoder::default(),
            ended: false,
        };
        client.send(sse_request(addr, path, extra).as_bytes());
        client.head = client.read_head();
        if client.head.status != 200 {
            let body = client.read_body_by_length();
            return Err(Refused {
                head: client.head.clone(),
                body,
                client: Box::new(client),
            });
        }
        let head = &client.head;
        assert_eq!(
            head.header("content-type"),
            Some("text/event-stream"),
            "{head:?}"
        );
        assert!(
            head.header("transfer-encoding")
                .is_some_and(|v| v.eq_ignore_ascii_case("chunked")),
            "an event stream of unknown length is chunked: {head:?}"
        );
        Ok(client)
    }

    /// Writes raw bytes to the server.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("client {} cannot send: {e}", self.local));
    }

    /// Reads more bytes until `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), End> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(End::Timeout);
        }
        self.stream.set_read_timeout(Some(left)).unwrap();
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(End::Closed),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if is_timeout(&e) => Err(End::Timeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(_) => Err(End::Closed),
        }
    }

    fn read_head(&mut self) -> SseHead {
        let deadline = Instant::now() + READ_TIMEOUT;
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if let Err(end) = self.fill(deadline) {
                panic!(
                    "client {}: no complete response head ({end:?}); got {:?}",
                    self.local,
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("").to_owned();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        SseHead {
            status_line,
            status,
            headers,
        }
    }

    fn read_body_by_length(&mut self) -> String {
        let len: usize = self
            .head
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("a refusal without Content-Length: {:?}", self.head));
        let deadline = Instant::now() + READ_TIMEOUT;
        while self.buf.len() < len {
            if let Err(end) = self.fill(deadline) {
                panic!("refusal body cut short ({end:?})");
            }
        }
        let body = String::from_utf8_lossy(&self.buf[..len]).into_owned();
        self.buf.drain(..len);
        body
    }

    /// The next chunk of the body, or how the connection ended before one was whole.
    pub(crate) fn try_chunk(&mut self, timeout: Duration) -> Result<Chunk, End> {
        assert!(
            !self.ended,
            "client {}: read past the last chunk",
            self.local
        );
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line_end) = find(&self.buf, b"\r\n") {
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                // Chunk extensions (`;name=value`) are allowed and ignored.
                let size_hex = size_text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_hex, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {size_text:?}"));
                let start = line_end + 2;
                if size == 0 {
                    // No trailers are expected: the last chunk is `0\r\n\r\n`.
                    if self.buf.len() >= start + 2 {
                        assert_eq!(
                            &self.buf[start..start + 2],
                            b"\r\n",
                            "the last chunk must be 0 CRLF CRLF"
                        );
                        self.buf.drain(..start + 2);
                        self.ended = true;
                        return Ok(Chunk::Last);
                    }
                } else if self.buf.len() >= start + size + 2 {
                    assert_eq!(
                        &self.buf[start + size..start + size + 2],
                        b"\r\n",
                        "a chunk ends with CRLF"
                    );
                    let data = self.buf[start..start + size].to_vec();
                    self.buf.drain(..start + size + 2);
                    // Records decode as chunks arrive, whichever level the case reads at.
                    self.decoder.feed(&data);
                    return Ok(Chunk::Data(data));
                }
            }
            self.fill(deadline)?;
        }
    }

    /// The next chunk; panics if none arrives within [`READ_TIMEOUT`].
    pub(crate) fn chunk(&mut self) -> Chunk {
        self.try_chunk(READ_TIMEOUT)
            .unwrap_or_else(|end| panic!("client {}: no chunk ({end:?})", self.local))
    }

    /// The next record (event, retry or comment), waiting at most `timeout`.
    pub(crate) fn try_record(&mut self, timeout: Duration) -> Result<Record, End> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(record) = self.decoder.out.pop_front() {
                return Ok(record);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.try_chunk(left)? == Chunk::Last {
                return Err(End::Closed);
            }
        }
    }

    /// The next event, skipping `retry:` fields and comments; panics if none arrives
    /// within [`READ_TIMEOUT`] or the stream ends.
    pub(crate) fn event(&mut self) -> SseEvent {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_record(left) {
                Ok(Record::Event(event)) => return event,
                Ok(_) => {}
                Err(end) => panic!("client {}: no event ({end:?})", self.local),
            }
        }
    }

    /// Asserts that the connection ends (EOF or reset) within `within`, with nothing
    /// more on it.
    pub(crate) fn expect_eof(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            assert!(
                self.buf.is_empty(),
                "client {}: bytes after the end of the stream: {:?}",
                self.local,
                String::from_utf8_lossy(&self.buf)
            );
            match self.fill(deadline) {
                Ok(()) => {}
                Err(End::Closed) => return,
                Err(End::Timeout) => panic!(
                    "client {}: the connection was still open {within:?} after the stream ended",
                    self.local
                ),
            }
        }
    }

    /// Reads whole chunks until the connection ends (a chunk cut short by the end is
    /// not one); returns them and whether the last chunk came.
    pub(crate) fn drain(&mut self, within: Duration) -> (Vec<Vec<u8>>, bool) {
        let deadline = Instant::now() + within;
        let mut chunks = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_chunk(left) {
                Ok(Chunk::Data(data)) => chunks.push(data),
                Ok(Chunk::Last) => {
                    self.expect_eof(left);
                    return (chunks, true);
                }
                Err(End::Closed) => return (chunks, false),
                Err(End::Timeout) => panic!(
                    "client {}: the stream did not end within {within:?}",
                    self.local
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Vec<Record> {
        let mut d = Decoder::default();
        d.feed(text.as_bytes());
        d.out.into_iter().collect()
    }

    fn event(name: &str, id: Option<&str>, data: &str) -> Record {
        Record::Event(SseEvent {
            name: name.to_owned(),
            id: id.map(str::to_owned),
            data: data.to_owned(),
        })
    }

    #[test]
    fn decodes_fields_comments_and_line_ends_as_whatwg_says() {
        assert_eq!(
            decode("retry: 3000\n\n:\n\nevent: up\nid: 7\ndata: a\ndata: b\n\n"),
            vec![
                Record::Retry(3000),
                Record::Comment(String::new()),
                event("up", Some("7"), "a\nb"),
            ]
        );
        // CRLF and CR end lines too; no space after the colon is fine; a field without
        // a colon has an empty value; unknown fields and bad retries are ignored.
        assert_eq!(
            decode("data:x\r\ndata\rfoo: 1\nretry: 1a\n\ndata:  two\n\n"),
            vec![
                event("message", None, "x\n"),
                event("message", None, " two")
            ]
        );
        // A block with no data dispatches nothing.
        assert_eq!(decode("event: e\nid: 1\n\n"), Vec::<Record>::new());
    }

    #[test]
    fn decodes_across_arbitrary_splits() {
        let text = "event: e\r\ndata: 1\r\n\r\ndata: 2\r\r";
        for split in 0..text.len() {
            let mut d = Decoder::default();
            d.feed(&text.as_bytes()[..split]);
            d.feed(&text.as_bytes()[split..]);
            let got: Vec<Record> = d.out.into_iter().collect();
            assert_eq!(
                got,
                vec![event("e", None, "1"), event("message", None, "2")],
                "split at {split}"
            );
        }
    }
}
