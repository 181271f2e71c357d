//! The client side: blocking tungstenite clients and raw TCP peers on plain threads.
//! It shares no code with any adapter, and every read has a timeout, so a misbehaving
//! server fails a case instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// The longest any single read waits.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The RFC 6455 sample key, and the accept value it must produce.
pub(crate) const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub(crate) const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn try_tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn tcp(addr: SocketAddr) -> TcpStream {
    try_tcp(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A tungstenite client over a blocking socket with read and write timeouts.
pub(crate) struct Client {
    ws: WebSocket<TcpStream>,
    /// The client's address: the session's `remote_addr` on the server.
    pub(crate) local: SocketAddr,
}

/// A tungstenite read error, with "no message in time" told apart.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// Nothing arrived within the timeout.
    Timeout,
    /// The connection is over (after a close handshake, or reset).
    Closed(tungstenite::Error),
}

impl Client {
    /// Connects to `ws://{addr}{path}` and completes the handshake; panics on failure.
    pub(crate) fn connect(addr: SocketAddr, path: &str) -> Client {
        Client::try_connect(addr, path, &[])
            .unwrap_or_else(|e| panic!("handshake with {addr}{path} failed: {e}"))
            .0
    }

    /// Connects with extra request headers; returns the handshake error (e.g. an HTTP
    /// refusal) instead of panicking.
    pub(crate) fn try_connect(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(Client, tungstenite::handshake::client::Response), tungstenite::Error> {
        let mut request = format!("ws://{addr}{path}").into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                tungstenite::http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let stream = try_tcp(addr)?;
        let local = stream.local_addr()?;
        match tungstenite::client::client(request, stream) {
            Ok((ws, response)) => Ok((Client { ws, local }, response)),
            Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
            Err(tungstenite::HandshakeError::Interrupted(_)) => Err(tungstenite::Error::Io(
                io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"),
            )),
        }
    }

    /// Sends a message and flushes it.
    pub(crate) fn send(&mut self, message: Message) {
        self.ws
            .send(message)
            .unwrap_or_else(|e| panic!("client {} cannot send: {e}", self.local));
    }

    /// Sends a text message.
    pub(crate) fn send_text(&mut self, text: &str) {
        self.send(Message::text(text));
    }

    /// Queues a message without flushing (for pipelining many).
    pub(crate) fn write(&mut self, message: Message) {
        self.ws
            .write(message)
            .unwrap_or_else(|e| panic!("client {} cannot write: {e}", self.local));
    }

    /// Flushes queued messages.
    pub(crate) fn flush(&mut self) {
        self.ws
            .flush()
            .unwrap_or_else(|e| panic!("client {} cannot flush: {e}", self.local));
    }

    /// The next message of any kind, waiting at most `timeout`.
    pub(crate) fn try_recv(&mut self, timeout: Duration) -> Result<Message, RecvError> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.ws.get_mut().set_read_timeout(Some(timeout)).unwrap();
        let result = self.ws.read();
        let _ = self.ws.get_mut().set_read_timeout(Some(READ_TIMEOUT));
        match result {
            Ok(message) => Ok(message),
            Err(tungstenite::Error::Io(e)) if is_timeout(&e) => Err(RecvError::Timeout),
            Err(e) => Err(RecvError::Closed(e)),
        }
    }

    /// The next text, binary or close message, skipping pings and pongs.
    pub(crate) fn recv(&mut self) -> Message {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_recv(left) {
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(message) => return message,
                Err(RecvError::Timeout) => {
                    panic!("client {}: no message within {READ_TIMEOUT:?}", self.local)
                }
                Err(RecvError::Closed(e)) => {
                    panic!("client {}: connection ended: {e}", self.local)
                }
            }
        }
    }

    /// The next message, which must be text.
    pub(crate) fn recv_text(&mut self) -> String {
        match self.recv() {
            Message::Text(text) => text.as_str().to_owned(),
            other => panic!("client {}: expected text, got {other:?}", self.local),
        }
    }

    /// The next message, which must be binary.
    pub(crate) fn recv_binary(&mut self) -> Vec<u8> {
        match self.recv() {
            Message::Binary(data) => data.to_vec(),
            other => panic!(
                "client {}: expected binary, got {}",
                self.local,
                describe(&other)
            ),
        }
    }

    /// The next message, which must be a close frame; returns its code and reason.
    pub(crate) fn recv_close(&mut self) -> (u16, String) {
        match self.recv() {
            Message::Close(Some(frame)) => (u16::from(frame.code), frame.reason.to_string()),
            Message::Close(None) => (1005, String::new()),
            other => panic!(
                "client {}: expected a close frame, got {}",
                self.local,
                describe(&other)
            ),
        }
    }

    /// Asserts that no text or binary message arrives within `window`.
    pub(crate) fn expect_no_data(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            match self.try_recv(left) {
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(other) => panic!(
                    "client {}: expected nothing, got {}",
                    self.local,
                    describe(&other)
                ),
                Err(RecvError::Timeout) => return,
                Err(RecvError::Closed(e)) => {
                    panic!("client {}: connection ended: {e}", self.local)
                }
            }
        }
    }

    /// Sends a close frame with `code` and `reason`.
    pub(crate) fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        self.ws
            .close(Some(frame))
            .unwrap_or_else(|e| panic!("client {} cannot close: {e}", self.local));
    }

    /// Reads until the connection ends after a close handshake the client started or
    /// answered, failing on any data message. Returns how long it took.
    pub(crate) fn finish_close(&mut self) -> Duration {
        let start = Instant::now();
        loop {
            match self.try_recv(READ_TIMEOUT.saturating_sub(start.elapsed())) {
                Ok(Message::Close(_) | Message::Ping(_) | Message::Pong(_)) => {}
                Ok(other) => panic!(
                    "client {}: data after the close handshake: {}",
                    self.local,
                    describe(&other)
                ),
                Err(RecvError::Closed(_)) => return start.elapsed(),
                Err(RecvError::Timeout) => panic!(
                    "client {}: the server did not end the connection within {READ_TIMEOUT:?} of the close",
                    self.local
                ),
            }
        }
    }

    /// Closes with 1000 and waits until the connection is over.
    pub(crate) fn close_and_wait(mut self) {
        self.close(1000, "");
        self.finish_close();
    }

    /// The underlying socket.
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        self.ws.get_mut()
    }
}

/// A short description of a message (not its whole payload).
pub(crate) fn describe(message: &Message) -> String {
    match message {
        Message::Text(t) if t.len() > 64 => format!("text of {} bytes", t.len()),
        Message::Text(t) => format!("text {:?}", t.as_str()),
        Message::Binary(b) => format!("binary of {} bytes", b.len()),
        Message::Ping(p) => format!("ping of {} bytes", p.len()),
        Message::Pong(p) => format!("pong of {} bytes", p.len()),
        Message::Close(c) => format!("close {c:?}"),
        Message::Frame(f) => format!("frame {f:?}"),
    }
}

// ---- raw peers ---------------------------------------------------------------------

/// An HTTP response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    /// The value of header `name` (case-insensitive), if present.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A frame as the server sent it.
#[derive(Debug)]
pub(crate) struct RawFrame {
    pub(crate) fin: bool,
    /// RSV1: the message is compressed (permessage-deflate).
    pub(crate) rsv1: bool,
    pub(crate) opcode: u8,
    pub(crate) masked: bool,
    pub(crate) payload: Vec<u8>,
}

impl RawFrame {
    /// The code of a close frame (1005 when it has none).
    pub(crate) fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, 0x8, "expected a close frame, got {self:?}");
        if self.payload.len() >= 2 {
            u16::from_be_bytes([self.payload[0], self.payload[1]])
        } else {
            1005
        }
    }
}

/// What a raw read ended with.
#[derive(Debug)]
pub(crate) enum End {
    /// The peer closed the connection (EOF or reset).
    Closed,
    /// Nothing within the timeout.
    Timeout,
}

/// A raw TCP peer: hand-written requests and frames, for what a well-behaved client
/// library will not send.
pub(crate) struct Raw {
    pub(crate) stream: TcpStream,
    buf: Vec<u8>,
}

/// A request head for `path` with the standard upgrade headers, minus those named in
/// `skip`, plus `extra` (each `Name: value`).
pub(crate) fn upgrade_request(
    addr: SocketAddr,
    path: &str,
    skip: &[&str],
    extra: &[&str],
) -> String {
    let standard = [
        format!("Host: {addr}"),
        "Connection: Upgrade".to_owned(),
        "Upgrade: websocket".to_owned(),
        "Sec-WebSocket-Version: 13".to_owned(),
        format!("Sec-WebSocket-Key: {SAMPLE_KEY}"),
    ];
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    for line in &standard {
        let name = line.split(':').next().unwrap_or("");
        if !skip.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            request.push_str(line);
            request.push_str("\r\n");
        }
    }
    for line in extra {
        request.push_str(line);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

impl Raw {
    /// Opens a TCP connection.
    pub(crate) fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: tcp(addr),
            buf: Vec::new(),
        }
    }

    /// Completes a WebSocket handshake on `path` and checks the 101.
    pub(crate) fn upgrade(addr: SocketAddr, path: &str) -> Raw {
        Raw::upgrade_on(tcp(addr), addr, path)
    }

    /// Completes a WebSocket handshake on `path` over a connected `stream` to `addr`,
    /// and checks the 101.
    pub(crate) fn upgrade_on(stream: TcpStream, addr: SocketAddr, path: &str) -> Raw {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        raw.send(upgrade_request(addr, path, &[], &[]).as_bytes());
        let head = raw.read_head();
        assert_eq!(head.status, 101, "handshake refused: {head:?}");
        raw
    }

    /// Completes a WebSocket handshake on `path` with `extra` request headers; returns
    /// the peer and the 101's head.
    pub(crate) fn upgrade_with(addr: SocketAddr, path: &str, extra: &[&str]) -> (Raw, Head) {
        let mut raw = Raw::connect(addr);
        raw.send(upgrade_request(addr, path, &[], extra).as_bytes());
        let head = raw.read_head();
        assert_eq!(head.status, 101, "handshake refused: {head:?}");
        (raw, head)
    }

    /// The client's address (the session's `remote_addr`).
    pub(crate) fn local(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// Writes `bytes`.
    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads more bytes into the buffer; `Err` on EOF, reset or timeout.
    fn fill(&mut self) -> Result<(), End> {
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

    /// Reads an HTTP response head (bytes after it stay buffered).
    pub(crate) fn read_head(&mut self) -> Head {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if let Err(end) = self.fill() {
                panic!(
                    "no complete HTTP response head ({end:?}); got {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
        };
        let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Head { status, headers }
    }

    /// Sends a masked frame.
    pub(crate) fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.send(&frame(fin, opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d])));
    }

    /// Reads one frame, or how the connection ended.
    pub(crate) fn try_read_frame(&mut self, timeout: Duration) -> Result<RawFrame, End> {
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        let deadline = Instant::now() + timeout;
        let result = loop {
            if let Some((frame, len)) = parse_frame(&self.buf) {
                self.buf.drain(..len);
                break Ok(frame);
            }
            if Instant::now() >= deadline {
                break Err(End::Timeout);
            }
            if let Err(end) = self.fill() {
                break Err(end);
            }
        };
        let _ = self.stream.set_read_timeout(Some(READ_TIMEOUT));
        result
    }

    /// Reads one frame; panics if none arrives within [`READ_TIMEOUT`].
    pub(crate) fn read_frame(&mut self) -> RawFrame {
        self.try_read_frame(READ_TIMEOUT)
            .unwrap_or_else(|end| panic!("expected a frame from the server, got {end:?}"))
    }

    /// Reads frames until a close frame, skipping pings; returns its code.
    pub(crate) fn read_close_code(&mut self) -> u16 {
        loop {
            let frame = self.read_frame();
            match frame.opcode {
                0x9 | 0xA => continue,
                0x8 => return frame.close_code(),
                _ => panic!(
                    "expected a close frame, got opcode {} with {} bytes",
                    frame.opcode,
                    frame.payload.len()
                ),
            }
        }
    }

    /// Waits until the server ends the connection, discarding frames; returns how long
    /// it took, or `None` if it was still open after `within`.
    pub(crate) fn wait_closed(&mut self, within: Duration) -> Option<Duration> {
        let start = Instant::now();
        loop {
            let left = within.saturating_sub(start.elapsed());
            if left.is_zero() {
                return None;
            }
            match self.try_read_frame(left) {
                Ok(_) => {}
                Err(End::Closed) => return Some(start.elapsed()),
                Err(End::Timeout) => return None,
            }
        }
    }
}

/// Encodes a frame; `mask` as a client must, `None` for an unmasked one.
pub(crate) fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Decodes one frame from the start of `buf`: the frame and its length.
fn parse_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let rsv1 = buf[0] & 0x40 != 0;
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let mut key = None;
    if masked {
        if buf.len() < at + 4 {
            return None;
        }
        key = Some([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        at += 4;
    }
    if buf.len() < at + len {
        return None;
    }
    let mut payload = buf[at..at + len].to_vec();
    if let Some(key) = key {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= key[i % 4]);
    }
    Some((
        RawFrame {
            fin,
            rsv1,
            opcode,
            masked,
            payload,
        },
        at + len,
    ))
}
