//! Parking, step by step: a hand-run executor and a scripted transport show each
//! wakeup bringing a parked connection back, and a wakeup racing the park keeping it.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use melody_core::{Config, ConnectionInfo};

use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::sync::lock;
use crate::Melody;

const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A masked text frame (zero key) from the client.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x81, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

/// The unmasked text frame the server sends for `payload`.
fn server_text(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81, payload.len() as u8];
    frame.extend_from_slice(payload);
    frame
}

type RunQueue = Arc<Mutex<VecDeque<Arc<Task>>>>;

struct Task {
    future: Mutex<Option<BoxFuture>>,
    queue: RunQueue,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        let queue = self.queue.clone();
        lock(&queue).push_back(self);
    }
}

/// Runs spawned tasks when told to; its clock stands still, its sleeps never end.
#[derive(Clone, Default)]
struct HandRun {
    queue: RunQueue,
}

impl Runtime for HandRun {
    fn spawn(&self, task: BoxFuture) {
        lock(&self.queue).push_back(Arc::new(Task {
            future: Mutex::new(Some(task)),
            queue: self.queue.clone(),
        }));
    }
    fn sleep_until(&self, _deadline: Instant) -> BoxFuture {
        Box::pin(std::future::pending())
    }
    fn now(&self) -> Instant {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *START.get_or_init(Instant::now)
    }
}

impl HandRun {
    /// Polls woken tasks until none is left to poll.
    fn run_until_idle(&self) {
        loop {
            let next = lock(&self.queue).pop_front();
            let Some(task) = next else { return };
            let mut slot = lock(&task.future);
            if let Some(future) = slot.as_mut() {
                let waker = Waker::from(task.clone());
                if future
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
                {
                    *slot = None;
                }
            }
        }
    }
}

/// The peer's side of a scripted connection.
#[derive(Default)]
struct Pipe {
    input: VecDeque<u8>,
    output: Vec<u8>,
    read_waker: Option<Waker>,
    /// After this many reads found nothing, the next one that does is raced: the
    /// input arrives (and wakes the reader) right after it registered its waker.
    race: Option<(usize, Vec<u8>)>,
    /// The peer leaves once it got a reply: with the input read and something written
    /// (since the output was last taken), reads find the end of the stream.
    leaves_after_reply: bool,
    /// Most bytes one read returns (unlimited if `None`).
    read_limit: Option<usize>,
}

#[derive(Clone, Default)]
struct Peer(Arc<Mutex<Pipe>>);

impl Peer {
    fn send(&self, bytes: &[u8]) {
        let waker = {
            let mut pipe = lock(&self.0);
            pipe.input.extend(bytes);
            pipe.read_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn take_output(&self) -> Vec<u8> {
        std::mem::take(&mut lock(&self.0).output)
    }
}

struct Scripted(Peer);

impl Transport for Scripted {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.0 .0);
        if pipe.input.is_empty() && pipe.leaves_after_reply && !pipe.output.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if pipe.input.is_empty() {
            pipe.read_waker = Some(cx.waker().clone());
            match pipe.race.take() {
                Some((0, late)) => {
                    pipe.input.extend(late);
                    if let Some(waker) = pipe.read_waker.take() {
                        drop(pipe);
                        waker.wake();
                    }
                }
                Some((waits, late)) => pipe.race = Some((waits - 1, late)),
                None => {}
            }
            return Poll::Pending;
        }
        let n = buf
            .len()
            .min(pipe.input.len())
            .min(pipe.read_limit.unwrap_or(usize::MAX));
        for (slot, byte) in buf.iter_mut().zip(pipe.input.drain(..n)) {
            *slot = byte;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        &mut self,
        _cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.0 .0);
        let mut n = 0;
        for buf in bufs {
            pipe.output.extend_from_slice(buf);
            n += buf.len();
        }
        // A peer that leaves once answered: its end reaches the reader now.
        let leaving = pipe.leaves_after_reply.then(|| pipe.read_waker.take());
        drop(pipe);
        if let Some(Some(waker)) = leaving {
            waker.wake();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// An echoing instance and a peer whose upgrade request waits to be read.
fn echo_instance() -> (HandRun, Melody<HandRun>, Peer) {
    let rt = HandRun::default();
    let melody = Melody::with_runtime(rt.clone(), Config::default()).expect("valid config");
    melody.on_message(|s, text| {
        let _ = s.write(text);
    });
    let peer = Peer::default();
    peer.send(UPGRADE);
    (rt, melody, peer)
}

/// An echoing instance with one connection through its handshake.
fn echo_connected() -> (HandRun, Melody<HandRun>, Peer) {
    let (rt, melody, peer) = echo_instance();
    melody.spawn_connection(Scripted(peer.clone()), ConnectionInfo::default());
    rt.run_until_idle();
    let answer = peer.take_output();
    assert!(answer.starts_with(b"HTTP/1.1 101"), "{answer:?}");
    (rt, melody, peer)
}

#[test]
fn a_quiet_connection_parks_and_its_peers_input_brings_it_back() {
    let (rt, melody, peer) = echo_connected();
    assert_eq!(melody.parked_connections(), 1, "quiet since it opened");
    assert_eq!(melody.connection_tasks(), 1, "still counted");
    peer.send(&text_frame(b"hi"));
    rt.run_until_idle();
    assert_eq!(peer.take_output(), server_text(b"hi"));
    assert_eq!(melody.parked_connections(), 0, "data flowed: a task again");
    assert_eq!(melody.len(), 1);
}

#[test]
fn a_broadcast_brings_a_parked_connection_back() {
    let (rt, melody, peer) = echo_connected();
    assert_eq!(melody.parked_connections(), 1);
    assert_eq!(melody.broadcast("news").queued, 1);
    rt.run_until_idle();
    assert_eq!(peer.take_output(), server_text(b"news"));
    assert_eq!(melody.parked_connections(), 0);
}

#[test]
fn a_connection_parks_again_in_the_record_it_made_at_its_start() {
    let (rt, melody, peer) = echo_connected();
    assert_eq!(melody.parked_connections(), 1);
    let first = lock(&peer.0)
        .read_waker
        .clone()
        .expect("parked: its record waits");
    // A wakeup with nothing to read: back to a task, nothing to do, parked again.
    first.wake_by_ref();
    assert_eq!(melody.parked_connections(), 0, "woken");
    rt.run_until_idle();
    assert_eq!(melody.parked_connections(), 1, "quiet still: parked again");
    let again = lock(&peer.0)
        .read_waker
        .clone()
        .expect("parked: its record waits");
    assert!(
        again.will_wake(&first),
        "the same record, not a new allocation"
    );
    assert!(peer.take_output().is_empty());
    // And it still comes back for input.
    peer.send(&text_frame(b"hi"));
    rt.run_until_idle();
    assert_eq!(peer.take_output(), server_text(b"hi"));
}

#[test]
fn a_reply_written_just_before_the_peer_leaves_counts_as_sent() {
    let (rt, melody, peer) = echo_connected();
    {
        // Reads of one byte never find the input drained, so the task reads again
        // at the start of its next turn, before that turn's exchange; the peer leaves
        // once it has a reply. The echo of the first message is then written, and the
        // end read, before any exchange reported the write.
        let mut pipe = lock(&peer.0);
        pipe.leaves_after_reply = true;
        pipe.read_limit = Some(1);
    }
    let mut input = text_frame(b"a");
    input.extend(text_frame(b"b"));
    peer.send(&input);
    rt.run_until_idle();
    assert_eq!(peer.take_output(), server_text(b"a"), "one echo went out");
    let stats = melody.stats();
    // The second message's echo came after the end: refused, never queued.
    assert_eq!(
        (stats.finished, stats.dropped),
        (1, 0),
        "written: not dropped"
    );
}

#[test]
fn input_racing_the_park_keeps_the_task() {
    let (rt, melody, peer) = echo_instance();
    // The first wait is the task's own, after the handshake; the second is the
    // parking connection handing its read waker over: the input races that one.
    lock(&peer.0).race = Some((1, text_frame(b"raced")));
    melody.spawn_connection(Scripted(peer.clone()), ConnectionInfo::default());
    rt.run_until_idle();
    assert!(lock(&peer.0).race.is_none(), "the race was run");
    let out = peer.take_output();
    assert!(out.starts_with(b"HTTP/1.1 101"), "{out:?}");
    assert!(
        out.ends_with(&server_text(b"raced")),
        "the raced input was read and echoed: {out:?}"
    );
    assert_eq!(melody.parked_connections(), 0, "data flowed: a task");
    assert_eq!(melody.connection_tasks(), 1);
    assert_eq!(melody.len(), 1);
}

#[test]
fn closing_a_parked_session_ends_its_connection() {
    let (rt, melody, peer) = echo_connected();
    assert_eq!(melody.parked_connections(), 1);
    melody.close();
    rt.run_until_idle();
    let out = peer.take_output();
    assert_eq!(out.first(), Some(&0x88), "a close frame: {out:?}");
    // The peer answers the close; the connection ends and releases its slot.
    peer.send(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]);
    rt.run_until_idle();
    assert_eq!(melody.len(), 0);
    assert_eq!(melody.parked_connections(), 0);
    assert_eq!(melody.connection_tasks(), 0, "released, not leaked");
}
