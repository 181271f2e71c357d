//! The operations the session target applies to a [`World`]: the whole public API of
//! the hub, driven by the fuzz input, with the result of each call checked.

use std::time::Duration;

use arbitrary::Arbitrary;
use melody_core::{CloseCode, ConnectionInfo, Keys, Prepared, SessionId, SessionState};

use crate::config::SUBPROTOCOLS;
use crate::delivery::{broadcast, send};
use crate::wire::{upgrade_request, Handshake, PeerFrame};
use crate::world::{World, TOPICS};

/// A message the application sends: its kind, payload size and filler.
#[derive(Debug, Clone, Arbitrary)]
pub struct Msg {
    binary: bool,
    len: u16,
    fill: u8,
}

impl Msg {
    /// Up to a little over 1 KiB: past the largest `max_message_size` and byte bound
    /// the config picks, and across the 126-byte frame-header boundary.
    fn prepared(&self) -> Prepared {
        let len = usize::from(self.len % 1100);
        if self.binary {
            Prepared::binary(vec![self.fill; len])
        } else {
            let c = char::from(b'a' + self.fill % 26);
            Prepared::text(c.to_string().repeat(len))
        }
    }
}

/// The recipients of a broadcast; bytes pick connections and topics.
#[derive(Debug, Clone, Arbitrary)]
pub enum Recipients {
    All,
    AllExcept(u8),
    List(Vec<u8>),
    /// Sessions whose slot index is a multiple of `1 + n`.
    Filter(u8),
    Topic(u8),
    TopicExcept(u8, u8),
}

/// One step of the session target.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// A new connection: its request, then frames, cut in two at `split`.
    Open {
        handshake: Handshake,
        frames: Vec<(PeerFrame, [u8; 4])>,
        split: u16,
    },
    /// A connection an HTTP framework upgraded, with frames read past the request.
    OpenUpgraded {
        protocols: bool,
        leftover: Vec<u8>,
    },
    /// Raw bytes from a peer.
    PeerBytes {
        conn: u8,
        bytes: Vec<u8>,
    },
    /// A well-formed (or deliberately odd) frame from a peer, cut in two at `split`.
    PeerFrame {
        conn: u8,
        frame: PeerFrame,
        mask: [u8; 4],
        split: Option<u16>,
    },
    Send {
        conn: u8,
        msg: Msg,
    },
    Broadcast {
        msg: Msg,
        to: Recipients,
    },
    Subscribe {
        conn: u8,
        topic: u8,
    },
    Unsubscribe {
        conn: u8,
        topic: u8,
    },
    Close {
        conn: u8,
        code: u16,
        reason: String,
    },
    CloseAll {
        code: u16,
    },
    /// `poll_transmit`, normally only once the last batch is written.
    PollTransmit {
        conn: u8,
        even_if_pending: bool,
    },
    /// The transport wrote `n` bytes of what was handed out.
    Transmitted {
        conn: u8,
        n: u16,
    },
    /// A driver's round for one connection, writing at most `budget` bytes.
    Drive {
        conn: u8,
        budget: u16,
    },
    Eof {
        conn: u8,
    },
    IoError {
        conn: u8,
    },
    /// Time passes by this many milliseconds.
    Advance {
        millis: u16,
    },
    /// Time moves to the next deadline `poll_timeout` reports.
    AdvanceToDeadline,
    Release {
        conn: u8,
    },
    Trim {
        conn: u8,
    },
    /// Reads the session's view and moves its request out.
    Inspect {
        conn: u8,
    },
}

impl Op {
    /// Applies the operation, checking what each call returns.
    pub fn apply(&self, world: &mut World) {
        match self {
            Op::Open {
                handshake,
                frames,
                split,
            } => {
                let mut bytes = handshake.bytes();
                for (frame, mask) in frames {
                    bytes.extend(frame.encode(*mask));
                }
                let index = world.open();
                let at = usize::from(*split).min(bytes.len());
                world.feed(index, &bytes[..at]);
                world.feed(index, &bytes[at..]);
            }
            Op::OpenUpgraded {
                protocols,
                leftover,
            } => open_upgraded(world, *protocols, leftover),
            Op::PeerBytes { conn, bytes } => {
                if let Some(index) = world.pick(*conn) {
                    world.feed(index, bytes);
                }
            }
            Op::PeerFrame {
                conn,
                frame,
                mask,
                split,
            } => {
                if let Some(index) = world.pick(*conn) {
                    let bytes = frame.encode(*mask);
                    let at = split.map_or(bytes.len(), |s| usize::from(s).min(bytes.len()));
                    world.feed(index, &bytes[..at]);
                    world.feed(index, &bytes[at..]);
                }
            }
            Op::Send { conn, msg } => {
                if let Some(index) = world.pick(*conn) {
                    send(world, index, &msg.prepared());
                }
            }
            Op::Broadcast { msg, to } => broadcast(world, &msg.prepared(), to),
            Op::Subscribe { conn, topic } => {
                if let Some(index) = world.pick(*conn) {
                    subscribe(world, index, TOPICS[usize::from(*topic) % TOPICS.len()]);
                }
            }
            Op::Unsubscribe { conn, topic } => {
                if let Some(index) = world.pick(*conn) {
                    let topic = TOPICS[usize::from(*topic) % TOPICS.len()];
                    let id = world.conns[index].id;
                    let was = world.hub.topics(id).any(|t| t == topic);
                    assert_eq!(world.hub.unsubscribe(id, topic), was, "unsubscribe");
                    assert!(!world.hub.topics(id).any(|t| t == topic));
                }
            }
            Op::Close { conn, code, reason } => {
                if let Some(index) = world.pick(*conn) {
                    close(world, index, CloseCode::from(*code), reason);
                }
            }
            Op::CloseAll { code } => {
                let open = count_state(world, SessionState::Open);
                let started =
                    world
                        .hub
                        .close_all(world.now, CloseCode::from(*code), "shutting down");
                assert_eq!(
                    started, open,
                    "close_all counts the open sessions it closed"
                );
                assert_eq!(count_state(world, SessionState::Open), 0);
                assert_eq!(count_state(world, SessionState::Handshake), 0);
            }
            Op::PollTransmit {
                conn,
                even_if_pending,
            } => {
                if let Some(index) = world.pick(*conn) {
                    let conn = &mut world.conns[index];
                    let _ = conn.poll_transmit(
                        &mut world.hub,
                        world.now,
                        &world.config,
                        *even_if_pending,
                    );
                }
            }
            Op::Transmitted { conn, n } => {
                if let Some(index) = world.pick(*conn) {
                    let conn = &mut world.conns[index];
                    conn.write(&mut world.hub, world.now, usize::from(*n));
                }
            }
            Op::Drive { conn, budget } => {
                if let Some(index) = world.pick(*conn) {
                    world.drive(index, usize::from(*budget));
                }
            }
            Op::Eof { conn } => {
                if let Some(index) = world.pick(*conn) {
                    let id = world.conns[index].id;
                    let result = world.hub.handle_eof(id, world.now);
                    end_of_transport(world, index, result.is_err());
                }
            }
            Op::IoError { conn } => {
                if let Some(index) = world.pick(*conn) {
                    let id = world.conns[index].id;
                    let err = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                    let result = world.hub.handle_io_error(id, world.now, &err);
                    end_of_transport(world, index, result.is_err());
                    world.conns[index].drop_pending();
                }
            }
            Op::Advance { millis } => world.advance(Duration::from_millis(u64::from(*millis))),
            Op::AdvanceToDeadline => {
                if let Some(at) = world.hub.poll_timeout() {
                    let by = at.saturating_duration_since(world.now);
                    world.advance(by);
                }
            }
            Op::Release { conn } => {
                if let Some(index) = world.pick(*conn) {
                    world.release(index);
                }
            }
            Op::Trim { conn } => {
                if let Some(index) = world.pick(*conn) {
                    let _ = world.hub.trim(world.conns[index].id);
                }
            }
            Op::Inspect { conn } => {
                if let Some(index) = world.pick(*conn) {
                    inspect(world, world.conns[index].id);
                }
            }
        }
    }
}

fn count_state(world: &World, state: SessionState) -> usize {
    world
        .conns
        .iter()
        .filter(|c| world.hub.state(c.id) == Some(state))
        .count()
}

fn open_upgraded(world: &mut World, protocols: bool, leftover: &[u8]) {
    let mut builder = melody_core::Request::builder()
        .method("GET")
        .uri("/ws")
        .header("Host", "fuzz.test")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", crate::wire::KEY);
    if protocols {
        builder = builder.header("Sec-WebSocket-Protocol", "chat");
    }
    let Ok(request) = builder.body(()) else {
        panic!("the harness's request is well-formed");
    };
    let Ok(accept) = world.hub.check_upgrade(&request) else {
        // Refused (the session cap): the framework answers, no session is opened.
        world.upgrades_refused += 1;
        return;
    };
    let id = world.hub.open_upgraded(
        world.now,
        request,
        accept,
        leftover.to_vec(),
        ConnectionInfo::default(),
        Keys::new(),
    );
    let mut conn = crate::conn::Conn::new(id);
    conn.upgraded = true;
    world.conns.push(conn);
}

fn subscribe(world: &mut World, index: usize, topic: &str) {
    let conn = &world.conns[index];
    let already = world.hub.topics(conn.id).any(|t| t == topic);
    let live = !conn.released && world.hub.state(conn.id) != Some(SessionState::Finished);
    let subscribed = world.hub.subscribe(conn.id, topic);
    assert_eq!(subscribed, live && !already, "subscribe {:?}", conn.id);
    assert_eq!(world.hub.topics(conn.id).any(|t| t == topic), live);
}

fn close(world: &mut World, index: usize, code: CloseCode, reason: &str) {
    let id = world.conns[index].id;
    let before = world.hub.state(id);
    let started = world.hub.close(id, world.now, code, reason);
    let expected = matches!(before, Some(SessionState::Open | SessionState::Handshake));
    assert_eq!(started, expected, "close of {id:?} in {before:?}");
    if started {
        assert!(world.hub.is_closed(id), "closed but still open");
    }
}

fn end_of_transport(world: &mut World, index: usize, unknown: bool) {
    let conn = &world.conns[index];
    assert_eq!(unknown, conn.released, "end of transport on {:?}", conn.id);
    if !conn.released {
        assert_eq!(
            world.hub.state(conn.id),
            Some(SessionState::Finished),
            "a session outlived its transport"
        );
    }
}

fn inspect(world: &mut World, id: SessionId) {
    if let Some(view) = world.hub.session(id) {
        assert_eq!(view.id(), id);
        assert_eq!(Some(view.state()), world.hub.state(id));
        if let Some(protocol) = view.protocol() {
            assert!(SUBPROTOCOLS.contains(&protocol), "protocol {protocol:?}");
        }
        let _ = view.request().map(|r| r.uri().to_string());
        let _ = view.topics().count();
        assert_eq!(Some(view.stats()), world.hub.session_stats(id));
    }
    let _ = world.hub.take_request(id);
    assert!(world.hub.session(id).is_none_or(|v| v.request().is_none()));
}

/// The request of [`Op::Open`] with [`Handshake::Valid`], for targets that start with
/// open sessions.
pub fn valid_request() -> Vec<u8> {
    upgrade_request("")
}
