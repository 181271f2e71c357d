//! Hostile upgrades: requests sent a byte at a time (slowloris) and requests whose
//! headers never end. Both must cost the server a bounded time and nothing else, and
//! must not delay anyone else. Only with [`Upgrade::Serve`](crate::Upgrade::Serve):
//! with an HTTP integration, the framework reads the request.

use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::client::{upgrade_request, Client, Raw};
use crate::flood::{flood, trickle, Stop};
use crate::harness::{config, echo, Recorder, Server};

/// Slack for a loaded machine (two cores shared with the rest of the suite).
const TOLERANCE: Duration = Duration::from_millis(1500);

/// Eight connections send a valid upgrade request one byte every 25 ms (it would
/// take them about 4 s); each is dropped at `handshake_timeout` (1 s here) after
/// connecting — not before, and within the tolerance — with no answer and no handler
/// call. A client connecting while they trickle is upgraded and echoed before the
/// first of them is dropped: they do not hold it up. Afterwards `HubStats` counts the
/// tricklers as opened and finished, and not as rejected (no HTTP answer was sent).
pub fn slowloris_handshakes_cut_at_timeout<B: Backend>() {
    const TRICKLERS: usize = 8;
    let timeout = Duration::from_secs(1);
    let pace = Duration::from_millis(25);
    let rec = Recorder::new();
    let server = Server::<B>::serve(config().handshake_timeout(timeout), |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let request = upgrade_request(server.addr, "/slow", &[], &[]).into_bytes();
    assert!(
        pace * request.len() as u32 > timeout * 2,
        "the trickle must be far slower than the timeout"
    );
    let tricklers: Vec<_> = (0..TRICKLERS)
        .map(|_| {
            let raw = Raw::connect(server.addr);
            (Instant::now(), trickle(raw.stream, request.clone(), pace))
        })
        .collect();

    let good_start = Instant::now();
    let mut good = Client::connect(server.addr, "/good");
    good.send_text("not held up");
    assert_eq!(good.recv_text(), "not held up");
    let good_done = Instant::now();

    for (i, (connected, trickler)) in tricklers.into_iter().enumerate() {
        let stop = trickler.join().unwrap();
        let Stop::Cut { written, at: cut } = stop else {
            panic!("trickler {i}: the server must drop it at handshake_timeout, got {stop:?}");
        };
        // The thread sees the end within one pace of it.
        let after = cut - connected;
        assert!(
            after >= timeout - Duration::from_millis(50),
            "trickler {i} was dropped {after:?} after connecting, before handshake_timeout {timeout:?}"
        );
        assert!(
            after <= timeout + TOLERANCE,
            "trickler {i} was dropped only {after:?} after connecting (handshake_timeout {timeout:?})"
        );
        assert!(
            written < request.len(),
            "trickler {i} sent its whole request"
        );
        assert!(
            good_done < cut,
            "the good client took {:?}, until after trickler {i} was dropped: held up",
            good_done - good_start
        );
    }
    let calls = rec.all();
    assert!(
        calls.iter().all(|(a, _)| *a == Some(good.local)),
        "an incomplete handshake must call no handler: {calls:?}"
    );
    good.send_text("still served");
    assert_eq!(good.recv_text(), "still served");
    let m = server.melody();
    assert_eq!(m.len(), 1);
    let stats = m.stats();
    assert_eq!(
        (
            stats.opened,
            stats.connected,
            stats.rejected,
            stats.finished
        ),
        (TRICKLERS as u64 + 1, 1, 0, TRICKLERS as u64),
        "(opened, connected, rejected, finished): {stats:?}"
    );
}

/// A client that sends a request line and then header lines without end (4 KiB at a
/// time, up to 64 MiB or 5 s) gets 431 once past `max_handshake_size` (4 KiB here),
/// and the server ends the connection: the client's writes fail and its reads reach
/// the end, within 3 s. No handler runs, `HubStats::rejected` counts the refusal, and
/// the server keeps serving.
pub fn header_flood_refused_431_and_cut<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config().max_handshake_size(4096), |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let mut raw = Raw::connect(server.addr);
    raw.send(format!("GET / HTTP/1.1\r\nHost: {}\r\n", server.addr).as_bytes());
    let line = format!("X-Flood: {}\r\n", "f".repeat(54));
    let chunk = line.repeat(4096 / line.len()).into_bytes();
    let start = Instant::now();
    let flooder = flood(
        &raw.stream,
        chunk,
        64 << 20,
        Duration::from_secs(5),
        Duration::from_secs(2),
    );
    let head = raw.read_head();
    // 431 whatever the read boundaries: the verdict rests on the first
    // `max_handshake_size` bytes only (a fuzzer once found 400 or 431 by timing).
    assert_eq!(
        head.status, 431,
        "a flood of headers must get 431, got {head:?}"
    );
    let ended = raw.wait_closed(Duration::from_secs(3));
    let stop = flooder.join().unwrap();
    assert!(
        ended.is_some(),
        "the connection was still open {:?} after the refusal ({stop:?})",
        start.elapsed()
    );
    assert!(
        matches!(stop, Stop::Cut { at, .. } if at - start < Duration::from_secs(3)),
        "the server must stop reading and end the connection: {stop:?}"
    );
    assert!(
        rec.all().is_empty(),
        "a refused handshake calls no handler: {:?}",
        rec.all()
    );
    let mut after = Client::connect(server.addr, "/after");
    after.send_text("still serving");
    assert_eq!(after.recv_text(), "still serving");
    let stats = server.melody().stats();
    assert_eq!(
        (stats.opened, stats.connected, stats.rejected),
        (2, 1, 1),
        "(opened, connected, rejected): {stats:?}"
    );
}
