//! A simulated network and clock for the hub: virtual peers exchange bytes with it in
//! memory, and time moves only through `poll_timeout` / `handle_timeout`.
//!
//! Peers come in three kinds: a real tungstenite client (`Client`), a minimal raw peer
//! that answers pings without a WebSocket library (`Raw`, cheap enough for 100k
//! sessions), and whatever bytes a test writes by hand.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use melody_core::{Batch, Config, ConnectionInfo, Delivery, Event, Hub, Keys, SessionId, Transmit};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// Bytes flowing one way between a peer and the hub.
pub type Pipe = Rc<RefCell<VecDeque<u8>>>;

/// The client end of an in-memory connection: reads what the hub wrote, writes what
/// the hub will read. Reads end in `WouldBlock`, never `Ok(0)`, until the hub closes.
pub struct ClientStream {
    from_server: Pipe,
    to_server: Pipe,
    server_closed: Rc<RefCell<bool>>,
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.from_server.borrow_mut();
        if q.is_empty() {
            return if *self.server_closed.borrow() {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(q.len());
        for (slot, byte) in buf.iter_mut().zip(q.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.to_server.borrow_mut().extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How a peer behaves toward the bytes the hub sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// Takes every byte at once (an infinitely fast reader).
    All,
    /// Takes bytes up to a window, then blocks until the test drains it (a TCP buffer).
    Window(usize),
    /// Takes nothing (a peer that stopped reading, with full socket buffers).
    Stalled,
}

pub enum PeerKind {
    /// A tungstenite client (after the handshake).
    Client(Box<WebSocket<ClientStream>>),
    /// Raw bytes: answers empty pings with masked pongs, collects everything else.
    Raw,
}

pub struct Peer {
    pub id: SessionId,
    pub from_server: Pipe,
    pub to_server: Pipe,
    pub server_closed: Rc<RefCell<bool>>,
    pub kind: Option<PeerKind>,
    pub reading: Reading,
    /// Buffers handed out by `poll_transmit`, not yet taken by the peer's transport.
    batch: Batch,
    /// Every event the hub reported for this session, in order.
    pub events: Vec<Event>,
    /// Messages the client read, in order (client peers only).
    pub messages: Vec<Message>,
    /// Whether the hub finished this session and the harness released it.
    pub released: bool,
    /// Raw peers: how many pings they answered.
    pub pings_seen: usize,
    /// Raw peers: the handshake response was consumed.
    raw_upgraded: bool,
    /// Raw peers: keep answering pings.
    pub answer_pings: bool,
}

impl Peer {
    fn new(id: SessionId) -> Self {
        Peer {
            id,
            from_server: Pipe::default(),
            to_server: Pipe::default(),
            server_closed: Rc::new(RefCell::new(false)),
            kind: None,
            reading: Reading::All,
            batch: Batch::new(),
            events: Vec::new(),
            messages: Vec::new(),
            released: false,
            pings_seen: 0,
            raw_upgraded: false,
            answer_pings: true,
        }
    }

    /// Queues raw bytes for the hub to read.
    pub fn send_raw(&self, bytes: &[u8]) {
        self.to_server.borrow_mut().extend(bytes);
    }

    /// The bytes the hub wrote that nobody read yet.
    pub fn take_raw(&self) -> Vec<u8> {
        self.from_server.borrow_mut().drain(..).collect()
    }

    pub fn client(&mut self) -> &mut WebSocket<ClientStream> {
        match &mut self.kind {
            Some(PeerKind::Client(ws)) => ws,
            _ => panic!("peer {:?} is not a tungstenite client", self.id),
        }
    }

    /// The text messages the client received.
    pub fn texts(&self) -> Vec<String> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Message::Text(t) => Some(t.to_string()),
                _ => None,
            })
            .collect()
    }

    /// The close frame the client received, if any: (code, reason).
    pub fn close_received(&self) -> Option<(u16, String)> {
        self.messages.iter().find_map(|m| match m {
            Message::Close(Some(f)) => Some((u16::from(f.code), f.reason.to_string())),
            Message::Close(None) => Some((1005, String::new())),
            _ => None,
        })
    }

    pub fn count_events(&self, pred: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|e| pred(e)).count()
    }

    pub fn disconnected(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::Disconnect { .. }))
    }
}

/// What the application does with events: by default nothing (tests inspect them).
pub type App = Box<dyn FnMut(&mut Hub<Keys>, SessionId, &Event, Instant)>;

pub struct Sim {
    pub hub: Hub<Keys>,
    pub t0: Instant,
    pub now: Instant,
    pub peers: HashMap<SessionId, Peer>,
    pub app: Option<App>,
    /// Release finished sessions automatically after their `Disconnect`.
    pub auto_release: bool,
}

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A handshake request with the given extra header lines (each ending in \r\n).
pub fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /chat?room=1 HTTP/1.1\r\nHost: localhost:5000\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
    )
}

impl Sim {
    pub fn new(config: Config) -> Self {
        // The only clock read: the epoch of simulated time.
        let t0 = Instant::now();
        Sim {
            hub: Hub::new(config, t0).expect("valid config"),
            t0,
            now: t0,
            peers: HashMap::new(),
            app: None,
            auto_release: true,
        }
    }

    pub fn with_app(
        mut self,
        app: impl FnMut(&mut Hub<Keys>, SessionId, &Event, Instant) + 'static,
    ) -> Self {
        self.app = Some(Box::new(app));
        self
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Opens a connection without sending anything yet.
    pub fn open_raw(&mut self) -> SessionId {
        let id = self
            .hub
            .open(self.now, ConnectionInfo::default(), Keys::new());
        self.peers.insert(id, Peer::new(id));
        id
    }

    /// Opens a connection and completes the handshake with a tungstenite client.
    pub fn connect(&mut self) -> SessionId {
        self.connect_with(&upgrade_request(""))
    }

    /// Opens a connection with this handshake request and, if it is accepted, puts a
    /// tungstenite client on it. Panics if the handshake is refused.
    pub fn connect_with(&mut self, request: &str) -> SessionId {
        let id = self.open_raw();
        self.peer(id).send_raw(request.as_bytes());
        self.pump();
        self.attach_client(id);
        id
    }

    /// Reads the hub's answer to a peer's request and, if it is a 101, puts a
    /// tungstenite client on the connection. Returns the response head; panics if the
    /// answer is not a 101.
    pub fn attach_client(&mut self, id: SessionId) -> String {
        let peer = self.peers.get_mut(&id).expect("peer");
        let raw = peer.take_raw();
        let end = find(&raw, b"\r\n\r\n").expect("a complete HTTP response");
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "handshake refused: {head}"
        );
        let stream = ClientStream {
            from_server: peer.from_server.clone(),
            to_server: peer.to_server.clone(),
            server_closed: peer.server_closed.clone(),
        };
        let rest = raw[end + 4..].to_vec();
        let ws = WebSocket::from_partially_read(stream, rest, Role::Client, None);
        peer.kind = Some(PeerKind::Client(Box::new(ws)));
        self.pump();
        head
    }

    /// Opens a connection with a raw peer that answers pings (cheap: no WebSocket library).
    pub fn connect_raw(&mut self) -> SessionId {
        let id = self.open_raw();
        let peer = self.peers.get_mut(&id).expect("peer");
        peer.kind = Some(PeerKind::Raw);
        peer.send_raw(upgrade_request("").as_bytes());
        id
    }

    pub fn peer(&mut self, id: SessionId) -> &mut Peer {
        self.peers.get_mut(&id).expect("no such peer")
    }

    /// Sends a message from a client peer.
    pub fn client_send(&mut self, id: SessionId, msg: Message) {
        let ws = self.peer(id).client();
        ws.send(msg).expect("client send");
    }

    /// Moves bytes and events until nothing changes.
    pub fn pump(&mut self) {
        loop {
            let mut progress = false;
            let ids: Vec<SessionId> = self.peers.keys().copied().collect();
            for id in &ids {
                progress |= self.feed_hub(*id);
            }
            while let Some(id) = self.hub.poll_ready() {
                progress = true;
                self.service(id);
            }
            for id in &ids {
                progress |= self.flush_pending(*id);
                progress |= self.peer_reads(*id);
            }
            if !progress {
                break;
            }
        }
    }

    fn feed_hub(&mut self, id: SessionId) -> bool {
        let Some(peer) = self.peers.get_mut(&id) else {
            return false;
        };
        if peer.released {
            return false;
        }
        let input: Vec<u8> = peer.to_server.borrow_mut().drain(..).collect();
        if input.is_empty() {
            return false;
        }
        let _ = self.hub.handle_input(id, self.now, &input);
        true
    }

    /// What a driver does for a ready session: take events, hand out bytes.
    fn service(&mut self, id: SessionId) {
        let now = self.now;
        while let Some(event) = self.hub.poll_event(id) {
            if let Some(app) = self.app.as_mut() {
                app(&mut self.hub, id, &event, now);
            }
            let done = matches!(event, Event::Disconnect { .. });
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.events.push(event);
            }
            if done && self.auto_release {
                // Whatever the hub handed out before finishing still reaches the wire.
                self.flush_pending(id);
                self.hub.release(id);
                if let Some(peer) = self.peers.get_mut(&id) {
                    peer.released = true;
                    *peer.server_closed.borrow_mut() = true;
                }
                return;
            }
        }
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        match self.hub.poll_transmit(id, now, &mut peer.batch) {
            Transmit::Write(_) => {
                self.flush_pending(id);
            }
            Transmit::Finished | Transmit::Idle => {}
        }
    }

    /// Writes pending buffers into the peer's pipe as far as its reading allows.
    fn flush_pending(&mut self, id: SessionId) -> bool {
        let Some(peer) = self.peers.get_mut(&id) else {
            return false;
        };
        let room = match peer.reading {
            Reading::All => usize::MAX,
            Reading::Window(w) => w.saturating_sub(peer.from_server.borrow().len()),
            Reading::Stalled => 0,
        };
        let mut written = 0;
        for chunk in peer.batch.iter() {
            let n = chunk.len().min(room - written);
            peer.from_server.borrow_mut().extend(&chunk[..n]);
            written += n;
            if written == room {
                break;
            }
        }
        if written > 0 {
            if peer.released {
                // A released id takes no reports: the driver lets the buffers go.
                peer.batch = Batch::new();
            } else {
                let _ = self
                    .hub
                    .handle_transmitted(id, self.now, written, &mut peer.batch);
            }
        }
        written > 0
    }

    /// The peer takes what arrived: a client reads messages, a raw peer answers pings.
    fn peer_reads(&mut self, id: SessionId) -> bool {
        let Some(peer) = self.peers.get_mut(&id) else {
            return false;
        };
        if peer.reading != Reading::All {
            // Window and Stalled peers read only when a test drains them.
            return false;
        }
        drain_peer(peer)
    }

    /// Lets a windowed or stalled peer read everything that arrived, once.
    pub fn drain(&mut self, id: SessionId) {
        let peer = self.peers.get_mut(&id).expect("peer");
        drain_peer(peer);
        self.pump();
    }

    /// Moves simulated time forward by `d`, firing deadlines on the way and letting
    /// peers answer between them.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        self.pump();
        while let Some(at) = self.hub.poll_timeout() {
            if at > target {
                break;
            }
            self.now = self.now.max(at);
            self.hub.handle_timeout(self.now);
            self.pump();
        }
        self.now = target;
        self.hub.handle_timeout(self.now);
        self.pump();
    }

    /// Advances in steps of `step` until `cond` holds or `limit` passes; returns the
    /// simulated time at which it held.
    pub fn advance_until(
        &mut self,
        step: Duration,
        limit: Duration,
        mut cond: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let end = self.now + limit;
        while self.now < end {
            if cond(self) {
                return Some(self.elapsed());
            }
            self.advance(step);
        }
        cond(self).then(|| self.elapsed())
    }
}

fn drain_peer(peer: &mut Peer) -> bool {
    match &mut peer.kind {
        Some(PeerKind::Client(ws)) => {
            let mut progress = false;
            loop {
                match ws.read() {
                    Ok(msg) => {
                        progress = true;
                        peer.messages.push(msg);
                    }
                    Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Flush any pong or close reply tungstenite queued.
                        let _ = ws.flush();
                        break;
                    }
                    Err(_) => break,
                }
            }
            progress
        }
        Some(PeerKind::Raw) => {
            let bytes: Vec<u8> = peer.from_server.borrow_mut().drain(..).collect();
            if bytes.is_empty() {
                return false;
            }
            let mut rest = &bytes[..];
            if !peer.raw_upgraded {
                if let Some(end) = find(rest, b"\r\n\r\n") {
                    peer.raw_upgraded = true;
                    rest = &rest[end + 4..];
                }
            }
            // Server frames are unmasked; the pings we answer are empty.
            while rest.len() >= 2 {
                let len = (rest[1] & 0x7f) as usize;
                let (header, len) = match len {
                    126 if rest.len() >= 4 => (4, u16::from_be_bytes([rest[2], rest[3]]) as usize),
                    127 if rest.len() >= 10 => (
                        10,
                        u64::from_be_bytes(rest[2..10].try_into().unwrap_or([0; 8])) as usize,
                    ),
                    126 | 127 => break,
                    n => (2, n),
                };
                if rest[0] == 0x89 {
                    peer.pings_seen += 1;
                    if peer.answer_pings {
                        peer.to_server.borrow_mut().extend([0x8a, 0x80, 0, 0, 0, 0]);
                    }
                }
                rest = &rest[(header + len).min(rest.len())..];
            }
            true
        }
        None => false,
    }
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A masked client frame (zero mask key, so the payload is sent as is).
pub fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    masked_frame(first_byte, [0; 4], payload)
}

/// A masked client frame with the given mask key, its length in the shortest form.
pub fn masked_frame(first_byte: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first_byte];
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
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// An echo server: text and binary messages go back to their sender.
pub fn echo_app(hub: &mut Hub<Keys>, id: SessionId, event: &Event, now: Instant) {
    let msg = match event {
        Event::Text(t) => melody_core::Prepared::text(t.as_str()),
        Event::Binary(b) => melody_core::Prepared::binary(b),
        _ => return,
    };
    let d = hub.send(id, now, &msg);
    assert_eq!(d.queued, 1, "echo was not queued: {d:?}");
}

/// One thing a hand-driven session did, in order (see [`drive`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `poll_event` returned this event.
    Event(Event),
    /// `poll_transmit` handed out these bytes (all buffers joined), which were then
    /// written in full and reported with `handle_transmitted`.
    Write(Vec<u8>),
    /// `poll_transmit` answered `Transmit::Finished`.
    Finished,
}

/// Drives one session by hand, as a driver whose transport takes every byte at once:
/// takes its events, writes what it hands out, until it is idle or finished. Returns
/// every step in order, so tests can check what came before what.
pub fn drive(hub: &mut Hub<Keys>, id: SessionId, now: Instant) -> Vec<Step> {
    let mut steps = Vec::new();
    loop {
        let mut progress = false;
        while let Some(event) = hub.poll_event(id) {
            steps.push(Step::Event(event));
            progress = true;
        }
        let mut batch = Batch::new();
        match hub.poll_transmit(id, now, &mut batch) {
            Transmit::Write(n) => {
                assert_eq!(n, batch.len(), "Write(n) must count the buffers handed out");
                let bytes: Vec<u8> = batch.iter().flatten().copied().collect();
                let _ = hub.handle_transmitted(id, now, bytes.len(), &mut batch);
                assert!(batch.is_empty(), "every written byte leaves the batch");
                steps.push(Step::Write(bytes));
            }
            Transmit::Finished => {
                steps.push(Step::Finished);
                return steps;
            }
            Transmit::Idle if !progress => return steps,
            Transmit::Idle => {}
        }
    }
}

/// The events among `steps`, in order.
pub fn step_events(steps: &[Step]) -> Vec<Event> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The bytes written among `steps`, joined.
pub fn step_bytes(steps: &[Step]) -> Vec<u8> {
    steps
        .iter()
        .flat_map(|s| match s {
            Step::Write(b) => b.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// A `Delivery` of `n` queued messages and nothing else.
pub fn queued(n: usize) -> Delivery {
    Delivery {
        queued: n,
        ..Delivery::default()
    }
}

/// A `Delivery` of `n` dropped messages and nothing else.
pub fn dropped(n: usize) -> Delivery {
    Delivery {
        dropped: n,
        ..Delivery::default()
    }
}

/// A `Delivery` of `n` messages to closed sessions and nothing else.
pub fn closed(n: usize) -> Delivery {
    Delivery {
        closed: n,
        ..Delivery::default()
    }
}

/// A tungstenite client that has stopped reading: everything sent to it stays held.
pub fn stalled(s: &mut Sim) -> SessionId {
    let id = s.connect();
    s.peer(id).reading = Reading::Stalled;
    id
}
