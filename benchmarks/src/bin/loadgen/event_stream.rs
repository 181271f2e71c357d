//! A lean event-stream (Server-Sent Events) client, as `client.rs` is for WebSocket:
//! a plain `GET` that accepts `text/event-stream`, the response head checked, then the
//! chunked body parsed in place and each event's data handed on.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::client::{request_head, Dial, Url};

/// An event stream just opened: the stream, and any bytes read past the response head.
pub type Stream = (TcpStream, Vec<u8>);

/// Sends the `GET` and checks the head: `200`, chunked, `text/event-stream`.
pub async fn connect(url: &Url, dial: Dial) -> Result<Stream, String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
        url.path, url.host
    );
    let (stream, head, leftover) = request_head(url, dial, &request).await?;
    let lower = head.to_ascii_lowercase();
    if !head.starts_with("HTTP/1.1 200")
        || !lower.contains("transfer-encoding: chunked")
        || !lower.contains("text/event-stream")
    {
        return Err(format!("not an event stream: {head}"));
    }
    Ok((stream, leftover))
}

/// Opens `n` event streams, 200 at a time, as `client::open_many` does.
pub async fn open_many(
    url: &Url,
    n: usize,
    dial: impl Fn(usize) -> Dial,
) -> Result<Vec<Stream>, String> {
    let mut streams = Vec::with_capacity(n);
    for chunk_start in (0..n).step_by(200) {
        let mut pending = Vec::new();
        for i in chunk_start..(chunk_start + 200).min(n) {
            pending.push(connect(url, dial(i)));
        }
        for p in pending {
            streams.push(p.await?);
        }
    }
    Ok(streams)
}

/// Parses a chunked event-stream body: chunks, then events (a block of lines ended by a
/// blank line), each event's `data:` lines joined with `\n`. Events without data (the
/// opening `retry:`, `:` keepalive comments) are not handed on.
#[derive(Default)]
pub struct Events {
    /// Body bytes not yet a whole chunk.
    body: Vec<u8>,
    /// Event text not yet a whole event (an event may span chunks).
    text: Vec<u8>,
    data: Vec<u8>,
    /// The last (empty) chunk came: the stream is over.
    pub ended: bool,
}

impl Events {
    /// Feeds body bytes; calls `each(data)` per complete event; an error on a body that
    /// is not well-formed chunking.
    pub fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(&[u8])) -> Result<(), String> {
        self.body.extend_from_slice(bytes);
        let mut at = 0;
        while !self.ended {
            let b = &self.body[at..];
            let Some(line) = b.windows(2).position(|w| w == b"\r\n") else {
                break;
            };
            let size_text = std::str::from_utf8(&b[..line]).map_err(|e| e.to_string())?;
            // A chunk extension (`;name=value`) may follow the size.
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|e| format!("chunk size {size_text:?}: {e}"))?;
            let start = line + 2;
            if b.len() < start + size + 2 {
                break;
            }
            if &b[start + size..start + size + 2] != b"\r\n" {
                return Err("a chunk without its CRLF".into());
            }
            let chunk = &b[start..start + size];
            if size == 0 {
                self.ended = true;
            } else if let Some(data) = self.text.is_empty().then(|| lone_data(chunk)).flatten() {
                // The usual case (one chunk, one data-only event): no copy.
                each(data);
            } else {
                self.text.extend_from_slice(chunk);
                self.dispatch(&mut each);
            }
            at += start + size + 2;
        }
        self.body.drain(..at);
        Ok(())
    }

    /// Hands on every complete event in `text`.
    fn dispatch(&mut self, each: &mut impl FnMut(&[u8])) {
        let mut at = 0;
        while let Some(end) = self.text[at..].windows(2).position(|w| w == b"\n\n") {
            let event = &self.text[at..at + end + 1];
            self.data.clear();
            let mut has_data = false;
            for line in event.split(|&c| c == b'\n') {
                let value = match line.strip_prefix(b"data") {
                    Some(rest) if rest.is_empty() => rest,
                    Some(rest) if rest[0] == b':' => {
                        rest[1..].strip_prefix(b" ").unwrap_or(&rest[1..])
                    }
                    _ => continue,
                };
                if has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                has_data = true;
            }
            if has_data {
                each(&self.data);
            }
            at += end + 2;
        }
        self.text.drain(..at);
    }
}

/// The data of `chunk` if it is exactly one event of one `data: ` line.
fn lone_data(chunk: &[u8]) -> Option<&[u8]> {
    let data = chunk.strip_prefix(b"data: ")?.strip_suffix(b"\n\n")?;
    (!data.contains(&b'\n')).then_some(data)
}

/// Reads events until the stream ends (or is not well-formed), calling `on_data(data)`
/// per event.
pub async fn read_loop(mut stream: TcpStream, leftover: Vec<u8>, mut on_data: impl FnMut(&[u8])) {
    let mut events = Events::default();
    if events.feed(&leftover, &mut on_data).is_err() {
        return;
    }
    let mut chunk = vec![0u8; 64 * 1024];
    while !events.ended {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if events.feed(&chunk[..n], &mut on_data).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Events;

    #[test]
    fn chunks_and_events_split_anywhere() {
        let mut body = Vec::new();
        for part in [
            "retry: 3000\n\n",
            "data: a\n\n",
            "event: e\nid: 1\ndata: b\n",
            "data:c\n\n",
            ":\n\n",
        ] {
            body.extend_from_slice(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
        }
        body.extend_from_slice(b"0\r\n\r\n");
        for split in 0..body.len() {
            let mut events = Events::default();
            let mut got = Vec::new();
            let (a, b) = body.split_at(split);
            events.feed(a, |d| got.push(d.to_vec())).unwrap();
            events.feed(b, |d| got.push(d.to_vec())).unwrap();
            assert_eq!(
                got,
                vec![b"a".to_vec(), b"b\nc".to_vec()],
                "split at {split}"
            );
            assert!(events.ended);
        }
    }
}
