//! Graceful shutdown in the middle of a stream of messages: what the API reported
//! queued for a peer that keeps reading arrives, and what the deadline cut off is
//! counted, exactly.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use melody_core::SessionError;
use melody_driver::{Error, Melody, Runtime, Session};
use tungstenite::Message;

use crate::backend::Backend;
use crate::client::{describe, Client, End, Raw};
use crate::harness::{config, wait_until, Call, Recorder, Server};

const READERS: usize = 3;
/// Messages to the stalled client: large, so that they fill its socket buffers and
/// then its outbox quickly.
const STALLED_MESSAGE: usize = 32 * 1024;
const BUFFER: usize = 64;
const GRACE: Duration = Duration::from_secs(1);
const MAX_ROUNDS: u32 = 20_000;

/// One round of the sender, as the API reported it.
struct Round {
    /// Per reader: whether `Session::write` reported its message queued.
    written: [bool; READERS],
    /// For how many readers `broadcast_others` reported its message queued.
    broadcast: usize,
    /// Whether the write to the stalled client was queued.
    stalled_queued: bool,
    /// Messages the stalled client's outbox dropped in that write.
    stalled_dropped: usize,
}

/// A message received by a reader: the round, and whether it came from the broadcast
/// (sent after the round's own write, so `(round, broadcast)` increases).
type Received = (u32, bool);

/// Sends round after round, about one per millisecond, until `stop`: a text
/// `w{round}` to each reader with `Session::write`, a text `b{round}` to every
/// reader with `broadcast_others` (skipping the stalled client), and a binary message
/// numbered `round` to the stalled client.
fn sender<R: Runtime>(
    melody: Melody<R>,
    readers: Vec<Session<R>>,
    stalled: Session<R>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Round>> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut blob = vec![0u8; STALLED_MESSAGE];
        let mut log = Vec::new();
        for round in 0..MAX_ROUNDS {
            if stop.load(Ordering::SeqCst) || start.elapsed() > Duration::from_secs(30) {
                break;
            }
            let mut written = [false; READERS];
            for (w, s) in written.iter_mut().zip(&readers) {
                *w = s.write(&format!("w{round}")).queued == 1;
            }
            let broadcast = melody
                .broadcast_others(&format!("b{round}"), &stalled)
                .queued;
            blob[..4].copy_from_slice(&round.to_be_bytes());
            let d = stalled.write_binary(&blob);
            log.push(Round {
                written,
                broadcast,
                stalled_queued: d.queued == 1,
                stalled_dropped: d.dropped,
            });
            std::thread::sleep(Duration::from_millis(1));
        }
        log
    })
}

/// Reads until the close frame; returns what arrived and the close code.
fn reader(mut client: Client, progress: Arc<AtomicUsize>) -> JoinHandle<(Vec<Received>, u16)> {
    std::thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match client.recv() {
                Message::Text(t) => {
                    let (kind, round) = t.as_str().split_at(1);
                    let round: u32 = round.parse().expect("a round number");
                    got.push((round, kind == "b"));
                    progress.fetch_add(1, Ordering::SeqCst);
                }
                Message::Close(frame) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    client.finish_close();
                    return (got, code);
                }
                other => panic!("reader: unexpected {}", describe(&other)),
            }
        }
    })
}

/// Reads what reached a client that never read before the cut, until the end of the
/// connection: the numbers of the complete binary messages.
fn drain_stalled(raw: &mut Raw) -> Vec<u32> {
    let mut got = Vec::new();
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match raw.try_read_frame(left) {
            Ok(f) if f.opcode == 0x2 && !closed => {
                assert_eq!(f.payload.len(), STALLED_MESSAGE, "a message was cut");
                got.push(u32::from_be_bytes([
                    f.payload[0],
                    f.payload[1],
                    f.payload[2],
                    f.payload[3],
                ]));
            }
            Ok(f) if f.opcode == 0x8 && !closed => closed = true,
            Ok(f) => panic!("stalled client: unexpected frame {f:?} (closed: {closed})"),
            Err(End::Closed) => return got,
            Err(End::Timeout) => panic!("the cut-off connection did not end"),
        }
    }
}

/// Three clients keep reading while, from another thread, each gets a `Session::write`
/// and a `broadcast_others` every millisecond; a fourth never reads and gets 32 KiB
/// messages until its outbox (64 messages) overflows. `shutdown(1 s)` is called in
/// the middle of the stream, and the stream goes on (refused) until it returns.
///
/// Each reader receives exactly the writes reported queued for it, each broadcast
/// reaches exactly as many readers as its `Delivery::queued` said, in order, and then
/// the 1001 close. The stalled client is cut off at the deadline: the report says
/// `closed` 4, `cut_off` 1, and `undelivered` (not 0) plus the complete messages it
/// received equals the writes reported queued for it — which it received as a
/// prefix. Its `SessionStats::sent` is what it received, its `dropped` is the
/// refusals plus the undelivered, and `HubStats::dropped` sums every session's drops.
/// Its `on_error` gets the cut as `SessionError::Io` of kind `TimedOut`; the readers'
/// reports no error but drops.
pub fn shutdown_mid_stream_delivers_what_was_queued<B: Backend>() {
    let cfg = config()
        .message_buffer_size(BUFFER)
        .write_wait(Duration::from_secs(20));
    let rec = Recorder::new();
    let server = Server::<B>::serve(cfg, |m| rec.lifecycle(m));
    let clients: Vec<Client> = (0..READERS)
        .map(|i| Client::connect(server.addr, &format!("/reader{i}")))
        .collect();
    let mut stalled = Raw::upgrade(server.addr, "/stalled");
    server.wait_len(READERS + 1);
    let reader_sessions: Vec<_> = clients.iter().map(|c| server.session(c.local)).collect();
    let stalled_session = server.session(stalled.local());
    let progress: Vec<_> = (0..READERS)
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    let readers: Vec<_> = clients
        .into_iter()
        .zip(&progress)
        .map(|(c, p)| reader(c, p.clone()))
        .collect();
    let m = server.melody();
    let stop = Arc::new(AtomicBool::new(false));
    let sending = sender(
        m.clone(),
        reader_sessions.clone(),
        stalled_session.clone(),
        stop.clone(),
    );
    wait_until(
        Duration::from_secs(10),
        "the stalled client's outbox to overflow while the readers read",
        || {
            stalled_session.stats().dropped > 0
                && progress.iter().all(|p| p.load(Ordering::SeqCst) >= 20)
        },
    );
    let report = server.block_on(m.shutdown(GRACE));
    stop.store(true, Ordering::SeqCst);
    let log = sending.join().unwrap();
    let last = log.last().expect("rounds were sent");
    assert!(
        !last.written.iter().any(|w| *w) && last.broadcast == 0 && !last.stalled_queued,
        "the stream went on after the shutdown, refused"
    );

    let mut received: Vec<Vec<Received>> = Vec::new();
    for (j, r) in readers.into_iter().enumerate() {
        let (got, code) = r.join().unwrap();
        assert_eq!(code, 1001, "reader {j}: the close after the data");
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "reader {j}: messages out of order"
        );
        let writes: Vec<u32> = got.iter().filter(|m| !m.1).map(|m| m.0).collect();
        let queued: Vec<u32> = (0u32..)
            .zip(&log)
            .filter(|(_, round)| round.written[j])
            .map(|(r, _)| r)
            .collect();
        assert_eq!(
            writes,
            queued,
            "reader {j}: received {} writes, the API reported {} queued",
            writes.len(),
            queued.len()
        );
        let stats = reader_sessions[j].stats();
        assert_eq!(
            (stats.sent, stats.queued),
            (got.len() as u64, 0),
            "reader {j}: (sent, queued) vs {} received",
            got.len()
        );
        received.push(got);
    }
    for (r, round) in (0u32..).zip(&log) {
        let reached = received
            .iter()
            .filter(|got| got.binary_search(&(r, true)).is_ok())
            .count();
        assert_eq!(
            reached, round.broadcast,
            "broadcast {r}: reached {reached} readers, the API reported {} queued",
            round.broadcast
        );
    }

    let got = drain_stalled(&mut stalled);
    let queued: Vec<u32> = (0u32..)
        .zip(&log)
        .filter(|(_, round)| round.stalled_queued)
        .map(|(r, _)| r)
        .collect();
    assert_eq!(
        (report.closed, report.cut_off),
        (READERS + 1, 1),
        "{report:?}"
    );
    assert!(
        report.undelivered > 0,
        "the stalled client's outbox was full at the deadline: {report:?}"
    );
    assert_eq!(
        got.len() + report.undelivered,
        queued.len(),
        "stalled client: received {} + undelivered {} must equal queued {}",
        got.len(),
        report.undelivered,
        queued.len()
    );
    assert_eq!(
        got,
        queued[..got.len()],
        "stalled client: what it received must be the first of what was queued"
    );
    let refused: usize = log.iter().map(|round| round.stalled_dropped).sum();
    let stats = stalled_session.stats();
    assert_eq!(
        (stats.sent, stats.dropped),
        (got.len() as u64, (refused + report.undelivered) as u64),
        "stalled client: (sent, dropped)"
    );
    let all_drops: u64 = reader_sessions
        .iter()
        .chain([&stalled_session])
        .map(|s| s.stats().dropped)
        .sum();
    assert_eq!(m.stats().dropped, all_drops, "HubStats::dropped");
    rec.wait_disconnect(stalled.local());
    let cut = |c: &Call| {
        matches!(c, Call::Error(Error::Session(SessionError::Io { kind, .. }))
            if *kind == std::io::ErrorKind::TimedOut)
    };
    let calls = rec.of(stalled.local());
    assert!(
        calls.iter().any(cut),
        "stalled client: on_error must report the cut: {calls:?}"
    );
    for s in &reader_sessions {
        let remote = s.remote_addr().unwrap_or_else(|| unreachable!());
        let calls = rec.of(remote);
        assert!(
            !calls.iter().any(|c| matches!(c, Call::Error(_))),
            "reader {remote}: {calls:?}"
        );
    }
    assert_eq!(m.len(), 0);
}
