//! What the client of an event stream received, read back as a browser would: the
//! HTTP head and a chunked body (for a stream we frame ourselves), then the body as a
//! WHATWG `text/event-stream`, decoded into the events an `EventSource` dispatches.

/// One event as the published side describes it, or as a client decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The data, with every line break as LF (what `MessageEvent.data` holds).
    pub data: String,
    /// The event type; `None` for the default `message` (an empty name included).
    pub name: Option<String>,
    /// The `id:` field of this event's own block, if it had one.
    pub id: Option<String>,
}

impl SseEvent {
    /// What a client must decode for an event published with these fields.
    pub fn expected(data: &str, name: Option<&str>, id: Option<&str>) -> Self {
        // The client splits data at CRLF, CR and LF and joins the lines with LF.
        let data = data.replace("\r\n", "\n").replace('\r', "\n");
        SseEvent {
            data,
            name: name.filter(|n| !n.is_empty()).map(str::to_owned),
            id: id.map(str::to_owned),
        }
    }
}

/// What an event stream's bytes held.
#[derive(Debug, Default)]
pub struct Stream {
    /// The HTTP status, if a whole head arrived (always 200 for a bare stream).
    pub status: Option<u16>,
    /// The events a client dispatched, in order (complete chunks only, for chunked).
    pub events: Vec<SseEvent>,
    /// The `retry:` values, in order.
    pub retries: Vec<u64>,
    /// The last chunk arrived.
    pub ended: bool,
}

/// Reads `written`: with `chunked`, an HTTP answer and (after a 200) its chunked body,
/// panicking at a malformed head or chunk, or at a byte after the last chunk; without,
/// the bare event stream. A cut anywhere (a transport that ended mid-write) is fine.
pub fn read(written: &[u8], chunked: bool) -> Stream {
    let mut stream = Stream::default();
    if !chunked {
        stream.status = Some(200);
        decode(written, &mut stream);
        return stream;
    }
    let Some(head_end) = find(written, b"\r\n\r\n") else {
        return stream;
    };
    let head = &written[..head_end];
    assert!(head.starts_with(b"HTTP/1.1 "), "not an HTTP answer");
    let status = head.get(9..12).and_then(|s| std::str::from_utf8(s).ok());
    let Some(status) = status.and_then(|s| s.parse::<u16>().ok()) else {
        panic!("an HTTP answer without a status");
    };
    stream.status = Some(status);
    if status != 200 {
        return stream;
    }
    let Ok(head) = std::str::from_utf8(head) else {
        panic!("a 200 head that is not UTF-8");
    };
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("\r\ncontent-type: text/event-stream\r\n"),
        "a stream's 200 without its content type: {head:?}"
    );
    assert!(
        lower.ends_with("\r\ntransfer-encoding: chunked"),
        "a stream's 200 not chunked: {head:?}"
    );
    assert!(
        !lower.contains("content-length"),
        "a chunked 200 with a content length: {head:?}"
    );
    let body = dechunk(&written[head_end + 4..], &mut stream.ended);
    decode(&body, &mut stream);
    stream
}

/// The payload of every complete chunk; `ended` once the last chunk is complete.
fn dechunk(mut rest: &[u8], ended: &mut bool) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            let digits = rest.strip_suffix(b"\r").unwrap_or(rest);
            assert!(
                digits.iter().all(u8::is_ascii_hexdigit),
                "a chunk size line with {rest:?}"
            );
            return body;
        };
        let size_line = &rest[..line_end];
        assert!(
            !size_line.is_empty() && size_line.iter().all(u8::is_ascii_hexdigit),
            "a bad chunk size line {:?}",
            String::from_utf8_lossy(size_line)
        );
        assert!(
            size_line.len() <= 16,
            "a chunk size of {} digits",
            size_line.len()
        );
        let Some(size) = std::str::from_utf8(size_line)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
        else {
            panic!("an unreadable chunk size");
        };
        let data_start = line_end + 2;
        if size == 0 {
            // The last chunk: no trailers, its CRLF, then nothing at all.
            let tail = &rest[data_start..];
            assert!(
                b"\r\n".starts_with(&tail[..tail.len().min(2)]),
                "trailers or garbage in the last chunk: {tail:?}"
            );
            if tail.len() >= 2 {
                *ended = true;
                assert_eq!(
                    tail.len(),
                    2,
                    "bytes after the last chunk: {:?}",
                    &tail[2..]
                );
            }
            return body;
        }
        let Some(data_end) = data_start.checked_add(size).filter(|&e| e <= rest.len()) else {
            return body; // cut mid-chunk
        };
        let crlf = &rest[data_end..rest.len().min(data_end + 2)];
        assert!(
            b"\r\n".starts_with(crlf),
            "a chunk not followed by CRLF: {crlf:?}"
        );
        if crlf.len() < 2 {
            return body; // cut before the chunk's CRLF
        }
        body.extend_from_slice(&rest[data_start..data_end]);
        rest = &rest[data_end + 2..];
    }
}

/// Decodes a `text/event-stream` body as the WHATWG parser does (UTF-8 throughout:
/// everything we write is; an event still open at the end is not dispatched).
fn decode(body: &[u8], stream: &mut Stream) {
    let Ok(text) = std::str::from_utf8(body) else {
        panic!("an event stream that is not UTF-8");
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut data = String::new();
    let mut name = String::new();
    let mut id: Option<String> = None;
    let mut rest = text;
    // Only whole lines: a line without its end is still being written.
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        if rest.as_bytes()[end] == b'\r' && end + 1 == rest.len() {
            // A CR at the very end may be the first half of a CRLF: wait for more.
            break;
        }
        rest = &rest[end + skip..];
        if line.is_empty() {
            if data.is_empty() {
                name.clear();
                id = None;
                continue;
            }
            data.pop(); // the LF after the last line
            stream.events.push(SseEvent {
                data: std::mem::take(&mut data),
                name: (!name.is_empty()).then(|| std::mem::take(&mut name)),
                id: id.take(),
            });
            name.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.find(':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match field {
            "event" => name = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" => {
                assert!(!value.contains('\0'), "an id with NUL on the wire");
                id = Some(value.to_owned());
            }
            "retry" => {
                assert!(
                    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
                    "a retry field the client ignores: {value:?}"
                );
                if let Ok(ms) = value.parse() {
                    stream.retries.push(ms);
                }
            }
            other => panic!("a field a client ignores: {other:?} in {line:?}"),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
