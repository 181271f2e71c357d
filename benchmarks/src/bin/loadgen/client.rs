//! A lean WebSocket client: raw frames over tokio sockets, no WebSocket library, so
//! that the load generator stays cheaper than the server it measures.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

/// Connections per loopback source address, below the ~28k ephemeral ports of one.
const PER_SOURCE_ADDR: usize = 16_000;

/// A connection just upgraded: its halves, and any bytes read past the 101 response.
pub type Conn = (OwnedReadHalf, OwnedWriteHalf, Vec<u8>);

/// A `ws://HOST:PORT/PATH` URL.
#[derive(Clone)]
pub struct Url {
    addr: SocketAddr,
    /// `HOST:PORT`, as the `Host` header gives it.
    pub host: String,
    /// The path, with its leading `/`.
    pub path: String,
}

/// Parses a `ws://` URL whose host is an IP address.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let addr = host.parse().map_err(|e| format!("{host}: {e}"))?;
    Ok(Url {
        addr,
        host: host.to_owned(),
        path,
    })
}

/// How to open one connection.
#[derive(Clone, Copy, Default)]
pub struct Dial {
    /// The last octet N of the loopback source address 127.0.0.N; used only when the
    /// server is on loopback.
    pub source_octet: u8,
    /// `SO_RCVBUF` to ask for before connecting, so that the advertised window is small
    /// from the first byte (a slow consumer pushes back sooner); `None`: the default.
    pub recv_buffer: Option<u32>,
    /// `TCP_MAXSEG` to announce, for the same reason: on loopback the server's kernel
    /// sizes its send buffer from the segment size (64 KiB there), to megabytes that
    /// would absorb a slow reader's backlog for minutes; `None`: the default.
    pub max_segment: Option<u32>,
}

impl Dial {
    /// The `index`th connection of a run, with default socket options.
    pub fn nth(index: usize) -> Dial {
        Dial {
            source_octet: source_in_blocks(index),
            ..Dial::default()
        }
    }
}

/// The source octet of the `index`th connection of a run: 16,000 connections per
/// address, from one that depends on the process id, so that back-to-back runs do
/// not collide with the previous run's TIME_WAIT ports.
pub fn source_in_blocks(index: usize) -> u8 {
    octet(index / PER_SOURCE_ADDR)
}

/// Round robin over `count` source addresses: for churn, so that each address keeps
/// far fewer than its ~28k ephemeral ports in TIME_WAIT at any moment.
pub fn source_round_robin(index: usize, count: usize) -> u8 {
    octet(index % count.max(1))
}

fn octet(n: usize) -> u8 {
    1 + ((n + std::process::id() as usize) % 250) as u8
}

/// Connects and upgrades; fails on anything but a 101.
pub async fn connect(url: &Url, dial: Dial) -> Result<Conn, String> {
    let (stream, leftover) = upgrade(url, dial).await?;
    let (r, w) = stream.into_split();
    Ok((r, w, leftover))
}

/// Connects and upgrades, keeping the stream whole (for modes that reset it).
pub async fn upgrade(url: &Url, dial: Dial) -> Result<(TcpStream, Vec<u8>), String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        url.path, url.host
    );
    let (stream, head, leftover) = request_head(url, dial, &request).await?;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("handshake refused: {head}"));
    }
    Ok((stream, leftover))
}

/// Connects as `dial` says, sends `request` and reads the response head: the stream,
/// the head (without its blank line) and any bytes read past it.
pub async fn request_head(
    url: &Url,
    dial: Dial,
    request: &str,
) -> Result<(TcpStream, String, Vec<u8>), String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(size) = dial.recv_buffer {
        socket
            .set_recv_buffer_size(size)
            .map_err(|e| e.to_string())?;
    }
    if let Some(mss) = dial.max_segment {
        socket2::SockRef::from(&socket)
            .set_tcp_mss(mss)
            .map_err(|e| e.to_string())?;
    }
    if url.addr.ip().is_loopback() {
        let source = SocketAddr::from((Ipv4Addr::new(127, 0, 0, dial.source_octet), 0));
        socket.bind(source).map_err(|e| e.to_string())?;
    }
    let mut stream: TcpStream = socket.connect(url.addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let end = loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed during handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    Ok((stream, head, buf[end + 4..].to_vec()))
}

/// Opens `n` connections, a few at a time so that the listen backlog never overflows;
/// `dial` says how to open the `i`th.
pub async fn open_many(
    url: &Url,
    n: usize,
    dial: impl Fn(usize) -> Dial,
) -> Result<Vec<Conn>, String> {
    let mut conns = Vec::with_capacity(n);
    for chunk_start in (0..n).step_by(200) {
        let mut pending = Vec::new();
        for i in chunk_start..(chunk_start + 200).min(n) {
            pending.push(connect(url, dial(i)));
        }
        for p in pending {
            conns.push(p.await?);
        }
    }
    Ok(conns)
}

/// A masked client frame (zero mask: the payload goes as is).
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Parses server frames from a byte stream without copying payloads out.
#[derive(Default)]
pub struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// Feeds bytes; calls `each(opcode, payload)` per complete frame.
    pub fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(u8, &[u8])) {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let b = &self.buf[at..];
            if b.len() < 2 {
                break;
            }
            let (header, len) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
                127 if b.len() >= 10 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&b[2..10]);
                    (10, u64::from_be_bytes(n) as usize)
                }
                126 | 127 => break,
                n => (2, n as usize),
            };
            if b.len() < header + len {
                break;
            }
            each(b[0] & 0x0f, &b[header..header + len]);
            at += header + len;
        }
        self.buf.drain(..at);
    }
}

/// Reads frames until the stream ends, answering pings, calling `on_data(payload)`
/// for data frames.
pub async fn read_loop(
    mut r: OwnedReadHalf,
    w: Rc<RefCell<Option<OwnedWriteHalf>>>,
    leftover: Vec<u8>,
    mut on_data: impl FnMut(&[u8]),
) {
    let mut frames = Frames::default();
    let mut pongs = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut first = Some(leftover);
    loop {
        let n = match first.take() {
            Some(l) if !l.is_empty() => {
                chunk[..l.len()].copy_from_slice(&l);
                l.len()
            }
            _ => match r.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        frames.feed(&chunk[..n], |op, payload| match op {
            0x1 | 0x2 => on_data(payload),
            0x9 => pongs.push(client_frame(0xA, payload)),
            _ => {}
        });
        for pong in pongs.drain(..) {
            let writer = w.borrow_mut().take();
            if let Some(mut writer) = writer {
                let _ = writer.write_all(&pong).await;
                *w.borrow_mut() = Some(writer);
            }
        }
    }
}

/// One connection's read side as a sequence of whole frames, for modes that wait for
/// a particular frame (an echo, a close) rather than count a stream.
pub struct FrameReader<R> {
    read: R,
    frames: Frames,
    ready: VecDeque<(u8, Vec<u8>)>,
    chunk: Box<[u8]>,
}

impl<R: tokio::io::AsyncRead + Unpin> FrameReader<R> {
    /// Reads from `read`, starting with `leftover` (bytes read past the 101).
    pub fn new(read: R, leftover: &[u8]) -> Self {
        let mut reader = FrameReader {
            read,
            frames: Frames::default(),
            ready: VecDeque::new(),
            chunk: vec![0; 4096].into_boxed_slice(),
        };
        reader.push(leftover);
        reader
    }

    fn push(&mut self, bytes: &[u8]) {
        let ready = &mut self.ready;
        self.frames
            .feed(bytes, |op, payload| ready.push_back((op, payload.to_vec())));
    }

    /// The next frame's opcode and payload; `None` at the end of the stream.
    pub async fn next(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(Some(frame));
            }
            let n = self.read.read(&mut self.chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            let chunk = std::mem::take(&mut self.chunk);
            self.push(&chunk[..n]);
            self.chunk = chunk;
        }
    }

    /// Skips frames up to the first with `opcode`; an error if the stream ends first.
    pub async fn until(&mut self, opcode: u8) -> Result<Vec<u8>, String> {
        loop {
            match self.next().await.map_err(|e| e.to_string())? {
                Some((op, payload)) if op == opcode => return Ok(payload),
                Some(_) => {}
                None => return Err(format!("stream ended before a frame {opcode:#x}")),
            }
        }
    }

    /// The underlying reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.read
    }
}
