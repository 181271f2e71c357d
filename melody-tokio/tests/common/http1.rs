//! A hand-written HTTP/1.1 client over a blocking loopback socket: enough to send a
//! request, read a response head, a sized body and a chunked (streamed) body.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::IO_TIMEOUT;

/// A response head: status and headers (names lowercase).
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Connects to `addr` and sends `method path` with `headers` and `body`
/// (`Content-Length` is added when there is a body).
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("read timeout");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    stream
}

/// Reads a response head, byte by byte so nothing past it is consumed.
pub fn read_head(stream: &mut TcpStream) -> Head {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read the response head");
        assert_eq!(
            n, 1,
            "the connection ended inside the response head: {raw:?}"
        );
        raw.push(byte[0]);
    }
    let text = String::from_utf8(raw).expect("an ASCII head");
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Head { status, headers }
}

/// Reads the `Content-Length` body that follows `head`.
pub fn read_sized_body(stream: &mut TcpStream, head: &Head) -> String {
    let length: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("a Content-Length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).expect("read the body");
    String::from_utf8(body).expect("a UTF-8 body")
}

/// Sends a request and reads its whole (sized) response.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (Head, String) {
    let mut stream = send(addr, method, path, headers, body);
    let head = read_head(&mut stream);
    let body = read_sized_body(&mut stream, &head);
    (head, body)
}

/// Reads one chunk of a chunked body: `Some(data)`, or `None` at the last chunk.
pub fn read_chunk(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let size_line = read_line(stream);
    let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
        .unwrap_or_else(|_| panic!("a chunk size, got {size_line:?}"));
    let mut data = vec![0u8; size];
    stream.read_exact(&mut data).expect("read a chunk");
    assert_eq!(read_line(stream), "", "a chunk ends with CRLF");
    (size > 0).then_some(data)
}

/// Reads chunks, appending their data to `body`, until `body` holds `needle`. Panics
/// if the body ends first.
pub fn read_chunks_until(stream: &mut TcpStream, body: &mut String, needle: &str) {
    while !body.contains(needle) {
        let chunk = read_chunk(stream)
            .unwrap_or_else(|| panic!("the stream ended before {needle:?}; got {body:?}"));
        body.push_str(std::str::from_utf8(&chunk).expect("a UTF-8 chunk"));
    }
}

fn read_line(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n") {
        let n = stream.read(&mut byte).expect("read a line");
        assert_eq!(n, 1, "the connection ended inside a line: {raw:?}");
        raw.push(byte[0]);
    }
    raw.truncate(raw.len() - 2);
    String::from_utf8(raw).expect("an ASCII line")
}
