//! The operations the session target applies to a [`World`]: the whole public API of
//! the hub, driven by the fuzz input, with the result of each call checked.

use std::time::Duration;

use arbitrary::Arbitrary;
use melody_core::sse::{self, EventError};
use melody_core::{
    Admission, Bytes, CloseCode, ConnectionInfo, Keys, MessageKind, Prepared, Publication, Refusal,
    SessionId, SessionState,
};

use crate::config::SUBPROTOCOLS;
use crate::delivery::{broadcast, send};
use crate::wire::{upgrade_request, Handshake, PeerFrame, StreamRequest, ORIGINS};
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

/// What the application publishes: a plain message, or a server-sent event whose
/// name and id may hold what the builder must refuse.
#[derive(Debug, Clone, Arbitrary)]
pub enum Pub {
    Plain(Msg),
    Event {
        data: String,
        /// Joins the data to itself with LF, CRLF or CR (or not).
        lines: u8,
        name: Option<String>,
        id: Option<String>,
        /// Appends LF, CR or NUL to the name (bits 0-1) and the id (bits 2-3).
        taint: u8,
    },
    /// A data-only event over bytes, UTF-8 or not.
    EventBytes(Vec<u8>),
}

const TAINTS: [Option<char>; 4] = [None, Some('\n'), Some('\r'), Some('\0')];

impl Pub {
    /// The publication, or `None` when the builder (rightly) refused the event.
    pub fn build(&self) -> Option<Publication> {
        match self {
            Pub::Plain(msg) => Some(Publication::from(msg.prepared())),
            Pub::Event {
                data,
                lines,
                name,
                id,
                taint,
            } => {
                let data = match lines % 4 {
                    0 => data.clone(),
                    n => format!("{data}{}{data}", ["\n", "\r\n", "\r"][usize::from(n) - 1]),
                };
                let taint_of = |s: &Option<String>, bits: u8| {
                    s.as_ref().map(|s| {
                        let mut s = s.clone();
                        s.extend(TAINTS[usize::from(bits % 4)]);
                        s
                    })
                };
                let name = taint_of(name, *taint);
                let id = taint_of(id, *taint >> 2);
                let expected = if name.as_deref().is_some_and(|n| n.contains(['\r', '\n'])) {
                    Some(EventError::LineBreakInName)
                } else if id.as_deref().is_some_and(|i| i.contains(['\r', '\n'])) {
                    Some(EventError::LineBreakInId)
                } else if id.as_deref().is_some_and(|i| i.contains('\0')) {
                    Some(EventError::NulInId)
                } else {
                    None
                };
                let mut event = Ok(sse::Event::new(data.clone()));
                if let Some(name) = &name {
                    event = event.and_then(|e| e.name(name));
                }
                if let Some(id) = &id {
                    event = event.and_then(|e| e.id(id));
                }
                match event {
                    Ok(event) => {
                        assert_eq!(expected, None, "{name:?} / {id:?} accepted");
                        assert_eq!(event.data(), data);
                        assert_eq!(event.event_name(), name.as_deref());
                        assert_eq!(event.event_id(), id.as_deref());
                        let msg = Publication::event(event);
                        assert_eq!(msg.kind(), MessageKind::Text);
                        assert_eq!(msg.event_name(), name.as_deref());
                        assert_eq!(msg.event_id(), id.as_deref());
                        assert_eq!(&msg.payload()[..], data.as_bytes());
                        Some(msg)
                    }
                    Err(err) => {
                        // Refused: there is no event, so nothing can be sent.
                        assert_eq!(Some(err), expected, "{name:?} / {id:?}");
                        None
                    }
                }
            }
            Pub::EventBytes(bytes) => {
                let event = sse::Event::from_utf8(Bytes::from(bytes.clone()));
                assert_eq!(event.is_some(), std::str::from_utf8(bytes).is_ok());
                let event = event?;
                assert_eq!(event.data().as_bytes(), &bytes[..]);
                Some(Publication::from(event))
            }
        }
    }
}

/// An admission's per-session settings, chosen by the input (zero bounds included).
#[derive(Debug, Clone, Arbitrary)]
pub struct FuzzAdmission {
    max_message_size: Option<u16>,
    buffer: Option<u8>,
    bytes: Option<Option<u8>>,
    binary_writes: Option<bool>,
}

impl FuzzAdmission {
    fn build(&self) -> Admission {
        let mut admission = Admission::new();
        if let Some(n) = self.max_message_size {
            admission = admission.max_message_size(1 + usize::from(n % 1100));
        }
        if let Some(n) = self.buffer {
            admission = admission.message_buffer_size(usize::from(n % 7));
        }
        if let Some(bytes) = self.bytes {
            admission = admission.message_buffer_bytes(bytes.map(|b| usize::from(b) * 2));
        }
        if let Some(on) = self.binary_writes {
            admission = admission.binary_writes(on);
        }
        admission
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
    /// A new connection asking for an event stream, then whatever else its client
    /// sends, cut in two at `split`.
    OpenStream {
        request: StreamRequest,
        trailing: Vec<u8>,
        split: u16,
    },
    /// An event stream an HTTP framework answers (`check_event_stream`, then
    /// `open_event_stream`), with an admission of its own or not.
    OpenFrameworkStream {
        origin: Option<u8>,
        admission: Option<FuzzAdmission>,
    },
    /// Holds requests for verdicts from now on (or stops).
    Verdicts {
        on: bool,
    },
    Admit {
        conn: u8,
        admission: FuzzAdmission,
    },
    Refuse {
        conn: u8,
        status: u16,
        reason: String,
    },
    /// `apply_admission` on any session, as a framework that judged the request does.
    ApplyAdmission {
        conn: u8,
        admission: FuzzAdmission,
    },
    /// `send_publication`: a message or an event.
    SendPublication {
        conn: u8,
        msg: Pub,
    },
    /// `publish`: a message or an event.
    Publish {
        msg: Pub,
        to: Recipients,
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
            Op::OpenStream {
                request,
                trailing,
                split,
            } => {
                let mut bytes = request.bytes();
                bytes.extend_from_slice(trailing);
                let index = world.open();
                let at = usize::from(*split).min(bytes.len());
                world.feed(index, &bytes[..at]);
                world.feed(index, &bytes[at..]);
            }
            Op::OpenFrameworkStream { origin, admission } => {
                open_framework_stream(world, *origin, admission.as_ref())
            }
            Op::Verdicts { on } => world.hub.set_request_verdicts(*on),
            Op::Admit { conn, admission } => {
                if let Some(index) = world.pick(*conn) {
                    admit(world, index, admission);
                }
            }
            Op::Refuse {
                conn,
                status,
                reason,
            } => {
                if let Some(index) = world.pick(*conn) {
                    refuse(world, index, *status, reason);
                }
            }
            Op::ApplyAdmission { conn, admission } => {
                if let Some(index) = world.pick(*conn) {
                    let id = world.conns[index].id;
                    let result = world.hub.apply_admission(id, &admission.build());
                    assert_eq!(result.is_err(), world.conns[index].released);
                    if result.is_ok() {
                        note_bounds(world, index, admission);
                    }
                }
            }
            Op::SendPublication { conn, msg } => {
                if let (Some(index), Some(msg)) = (world.pick(*conn), msg.build()) {
                    send(world, index, &msg, false);
                }
            }
            Op::Publish { msg, to } => {
                if let Some(msg) = msg.build() {
                    broadcast(world, &msg, to, false);
                }
            }
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
                    send(world, index, &Publication::from(msg.prepared()), true);
                }
            }
            Op::Broadcast { msg, to } => {
                broadcast(world, &Publication::from(msg.prepared()), to, true)
            }
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

fn open_framework_stream(world: &mut World, origin: Option<u8>, admission: Option<&FuzzAdmission>) {
    let mut builder = melody_core::Request::builder()
        .method("GET")
        .uri("/events")
        .header("Host", "fuzz.test")
        .header("Accept", "text/event-stream");
    if let Some(n) = origin {
        builder = builder.header("Origin", ORIGINS[usize::from(n) % ORIGINS.len()]);
    }
    let Ok(request) = builder.body(()) else {
        panic!("the harness's request is well-formed");
    };
    assert!(melody_core::is_event_stream_request(&request));
    let checked = world.hub.check_event_stream(&request);
    if origin.is_none() && world.config.max_sessions.is_none() {
        assert!(
            checked.is_ok(),
            "a plain event-stream request refused: {checked:?}"
        );
    }
    let Ok(accept) = checked else {
        world.upgrades_refused += 1;
        return;
    };
    let headers = accept.response_headers();
    assert!(headers.contains(&("content-type", "text/event-stream".to_owned())));
    let id =
        world
            .hub
            .open_event_stream(world.now, request, ConnectionInfo::default(), Keys::new());
    assert!(
        world.conns.iter().all(|c| c.id != id),
        "{id:?} was handed out twice"
    );
    let mut conn = crate::conn::Conn::new(id);
    conn.bare_stream = true;
    world.conns.push(conn);
    let index = world.conns.len() - 1;
    if let Some(admission) = admission {
        assert!(world.hub.apply_admission(id, &admission.build()).is_ok());
        note_bounds(world, index, admission);
    }
}

/// Records the bounds an admission set on `conns[index]`, with what was queued then.
fn note_bounds(world: &mut World, index: usize, admission: &FuzzAdmission) {
    let built = admission.build();
    let stats = world.hub.session_stats(world.conns[index].id);
    let conn = &mut world.conns[index];
    // An admission that sets either bound replaces both: a field it leaves `None`
    // goes back to the hub's value, even if an earlier admission had set it.
    if built.message_buffer_size.is_some() || built.message_buffer_bytes.is_some() {
        conn.max_queued = built.message_buffer_size;
        conn.max_bytes = built.message_buffer_bytes;
    }
    if let Some(max) = built.max_message_size {
        conn.largest_message_limit = Some(conn.largest_message_limit.unwrap_or(0).max(max));
    }
    if let Some(stats) = stats {
        conn.grace_queued = conn.grace_queued.max(stats.queued);
        conn.grace_bytes = conn.grace_bytes.max(stats.queued_bytes);
    }
}

fn admit(world: &mut World, index: usize, admission: &FuzzAdmission) {
    let id = world.conns[index].id;
    let result = world.hub.admit(id, world.now, admission.build());
    let conn = &world.conns[index];
    match result {
        Err(_) => assert!(conn.released, "admit of unreleased {id:?}"),
        Ok(admitted) => {
            assert!(!conn.released, "admit of released {id:?}");
            assert_eq!(admitted, conn.held, "admit of {id:?}");
            if admitted {
                world.conns[index].held = false;
                note_bounds(world, index, admission);
            }
        }
    }
}

fn refuse(world: &mut World, index: usize, status: u16, reason: &str) {
    let id = world.conns[index].id;
    let status = melody_core::http::StatusCode::from_u16(100 + status % 500)
        .unwrap_or(melody_core::http::StatusCode::INTERNAL_SERVER_ERROR);
    let result = world
        .hub
        .refuse(id, world.now, Refusal::new(status, reason));
    let conn = &world.conns[index];
    match result {
        Err(_) => assert!(conn.released, "refuse of unreleased {id:?}"),
        Ok(refused) => {
            assert!(!conn.released, "refuse of released {id:?}");
            assert_eq!(refused, conn.held, "refuse of {id:?}");
            if refused {
                world.conns[index].held = false;
            }
        }
    }
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
