//! Keepalive: pings on schedule, silent peers and stalled readers cut, answering peers
//! kept. Periods are short (100 ms ping, 300 ms pong wait, 300 ms write wait) and the
//! windows tolerant: exact timing is melody-core's simulated-clock tests' job.

use std::time::{Duration, Instant};

use melody_core::{Config, SessionError};
use melody_driver::Error;
use tungstenite::Message;

use crate::backend::Backend;
use crate::client::{Client, End, Raw, RecvError};
use crate::harness::{config, echo, Call, Recorder, Server};

const PING: Duration = Duration::from_millis(100);
const PONG_WAIT: Duration = Duration::from_millis(300);
const WRITE_WAIT: Duration = Duration::from_millis(300);
/// Slack for a loaded machine (two cores shared with the rest of the suite).
const TOLERANCE: Duration = Duration::from_millis(1500);
/// How long a client reading after its cut waits for more before giving up.
const READ_TIMEOUT_AFTER_CUT: Duration = Duration::from_secs(3);

fn keepalive() -> Config {
    config().ping_period(PING).pong_wait(PONG_WAIT)
}

fn has_error(rec: &Recorder, remote: std::net::SocketAddr, want: SessionError) -> bool {
    rec.of(remote)
        .iter()
        .any(|c| matches!(c, Call::Error(Error::Session(e)) if *e == want))
}

/// With a 100 ms ping period, a client receives a ping about every period (between 5
/// and 13 in 1.2 s), and each answered ping reaches `on_pong`. (The pong wait is 1 s
/// here: this case is about the pings.)
pub fn pings_sent_every_period<B: Backend>() {
    let rec = Recorder::new();
    let cfg = keepalive().pong_wait(Duration::from_secs(1));
    let server = Server::<B>::serve(cfg, |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let mut client = Client::connect(server.addr, "/");
    let window = Duration::from_millis(1200);
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < window {
        match client.try_recv(window.saturating_sub(start.elapsed())) {
            // tungstenite answers each ping on its next read or write.
            Ok(Message::Ping(_)) => pings += 1,
            Ok(other) => panic!("unexpected {}", crate::client::describe(&other)),
            Err(RecvError::Timeout) => break,
            Err(RecvError::Closed(e)) => panic!("an answering client was cut: {e}"),
        }
    }
    client.send_text("alive");
    assert_eq!(client.recv_text(), "alive");
    assert!(
        (5..=13).contains(&pings),
        "{pings} pings in {window:?} with a {PING:?} ping period"
    );
    let pongs = rec
        .of(client.local)
        .iter()
        .filter(|c| **c == Call::Pong)
        .count();
    assert!(
        pongs + 1 >= pings,
        "{pings} pings answered but {pongs} on_pong calls"
    );
}

/// A client that reads but never answers pings is disconnected about `pong_wait`
/// (300 ms) after the handshake — not before, and within the tolerance — and
/// `on_error` gets `PongTimeout`.
pub fn silent_client_cut_after_pong_wait<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(keepalive(), |m| rec.lifecycle(m));
    // Timed from before the handshake: the server's deadline starts after it.
    let start = Instant::now();
    let mut raw = Raw::upgrade(server.addr, "/");
    let remote = raw.local();
    let mut pings = 0;
    let cut = loop {
        match raw.try_read_frame(PONG_WAIT + TOLERANCE) {
            Ok(frame) if frame.opcode == 0x9 => pings += 1,
            // A close frame before the cut is acceptable; keep not answering.
            Ok(frame) if frame.opcode == 0x8 => {}
            Ok(frame) => panic!("unexpected frame {frame:?}"),
            Err(End::Closed) => break start.elapsed(),
            Err(End::Timeout) => panic!(
                "a client that never answers pings was still connected {:?} after the handshake (pong_wait {PONG_WAIT:?})",
                start.elapsed()
            ),
        }
    };
    assert!(pings >= 1, "pings must have been sent before the cut");
    assert!(
        cut >= PONG_WAIT - Duration::from_millis(10),
        "cut after {cut:?}, before pong_wait {PONG_WAIT:?}"
    );
    rec.wait_disconnect(remote);
    assert!(
        has_error(&rec, remote, SessionError::PongTimeout),
        "on_error must get PongTimeout: {:?}",
        rec.of(remote)
    );
    server.wait_len(0);
}

/// A client that answers pings stays connected over four pong waits (a 500 ms pong
/// wait here, leaving a loaded machine some slack), and is served.
pub fn answering_client_stays_connected<B: Backend>() {
    let rec = Recorder::new();
    let pong_wait = Duration::from_millis(500);
    let server = Server::<B>::serve(keepalive().pong_wait(pong_wait), |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let mut client = Client::connect(server.addr, "/");
    stays_connected_for(&mut client, pong_wait * 4, "an answering client");
    still_answered(&server, &rec, &mut client);
}

/// Reads for `span`, taking pings and silence; panics if the connection ends.
fn stays_connected_for(client: &mut Client, span: Duration, who: &str) {
    let start = Instant::now();
    while start.elapsed() < span {
        match client.try_recv(Duration::from_millis(50)) {
            Ok(Message::Ping(_)) | Err(RecvError::Timeout) => {}
            Ok(other) => panic!("unexpected {}", crate::client::describe(&other)),
            Err(RecvError::Closed(e)) => panic!("{who} was cut after {:?}: {e}", start.elapsed()),
        }
    }
}

/// The client's next message is echoed, its session is open, and its handlers saw no
/// error and no disconnect.
fn still_answered<B: Backend>(server: &Server<B>, rec: &Recorder, client: &mut Client) {
    client.send_text("still here");
    assert_eq!(client.recv_text(), "still here");
    assert!(!server.session(client.local).is_closed());
    let calls = rec.of(client.local);
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Error(_) | Call::Disconnect)),
        "{calls:?}"
    );
}

/// A client that sends messages, reads every answer and then falls quiet outlives
/// `write_wait` (300 ms) several times over: its answers were written, so no write
/// deadline stands. Its next message is answered as before, and the answers count as
/// sent.
pub fn answered_client_quiet_past_write_wait_stays_connected<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config().write_wait(WRITE_WAIT), |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let mut client = Client::connect(server.addr, "/");
    for i in 0..5 {
        let text = format!("message {i}");
        client.send_text(&text);
        assert_eq!(client.recv_text(), text);
    }
    stays_connected_for(&mut client, WRITE_WAIT * 4, "a quiet client");
    still_answered(&server, &rec, &mut client);
    let stats = server.session(client.local).stats();
    assert!(stats.sent >= 5, "{stats:?}");
}

/// A client that stops reading while 16 MiB are written to it is cut once no byte has
/// been taken for `write_wait` (300 ms), with `on_error(WriteTimeout)`, and not before
/// `write_wait` has passed since the writes started. When it reads at last, it gets
/// exactly the messages `SessionStats::sent` counts, then the end of the connection.
pub fn stalled_reader_cut_after_write_wait<B: Backend>() {
    let rec = Recorder::new();
    let cfg = config()
        .write_wait(WRITE_WAIT)
        .message_buffer_size(4096)
        // 16 MiB written: over the default 1 MiB byte bound.
        .message_buffer_bytes(None)
        .close_timeout(Duration::from_millis(300));
    let server = Server::<B>::serve(cfg, |m| rec.lifecycle(m));
    let client = Client::connect(server.addr, "/");
    let remote = client.local;
    let session = server.session(remote);
    let start = Instant::now();
    for i in 0..1024u32 {
        let mut msg = vec![0u8; 16 * 1024];
        msg[..4].copy_from_slice(&i.to_be_bytes());
        let d = session.write_binary(&msg);
        assert_eq!(d.dropped, 0, "the outbox holds 4096 messages");
    }
    rec.wait(
        Duration::from_secs(10),
        "on_disconnect of the stalled reader",
        |calls| {
            calls
                .iter()
                .any(|(a, c)| *a == Some(remote) && *c == Call::Disconnect)
        },
    );
    let at = start.elapsed();
    assert!(
        at >= WRITE_WAIT,
        "cut after {at:?}, before write_wait {WRITE_WAIT:?}"
    );
    assert!(
        at <= WRITE_WAIT + TOLERANCE + Duration::from_millis(500),
        "cut only after {at:?} (write_wait {WRITE_WAIT:?})"
    );
    assert!(
        has_error(&rec, remote, SessionError::WriteTimeout),
        "on_error must get WriteTimeout: {:?}",
        rec.of(remote)
    );
    server.wait_len(0);
    // Reading at last, the client gets what was fully written before the cut, and
    // then the end: nothing counted as undelivered goes out after it.
    let mut client = client;
    let mut complete = 0u64;
    loop {
        match client.try_recv(READ_TIMEOUT_AFTER_CUT) {
            Ok(Message::Binary(_)) => complete += 1,
            Ok(Message::Ping(_)) => {}
            Ok(other) => panic!("unexpected {}", crate::client::describe(&other)),
            Err(RecvError::Closed(_)) => break,
            Err(RecvError::Timeout) => panic!("the cut connection was not ended"),
        }
    }
    assert_eq!(
        complete,
        session.stats().sent,
        "messages received after the cut vs SessionStats::sent"
    );
}
