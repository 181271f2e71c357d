//! Slow consumers: they must not slow anyone else, and what they miss is exactly what
//! the API reports as dropped.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use melody_core::{Delivery, DropPolicy, SessionError};
use melody_driver::{Error, Runtime, Session};
use tungstenite::Message;

use crate::backend::Backend;
use crate::client::Client;
use crate::harness::{config, wait_until, Call, Recorder, Server};

/// Messages broadcast: 1024 of 16 KiB, 16 MiB in all — far more than the kernel's
/// socket buffers hold for a peer that does not read.
const COUNT: u32 = 1024;
const SIZE: usize = 16 * 1024;

fn message(i: u32) -> Vec<u8> {
    let mut m = vec![0u8; SIZE];
    m[..4].copy_from_slice(&i.to_be_bytes());
    m
}

/// Reads binary messages until the text `end`; returns their indices.
fn read_until_end(mut client: Client) -> (Client, Vec<u32>) {
    let mut got = Vec::new();
    loop {
        match client.recv() {
            Message::Binary(data) => {
                assert_eq!(data.len(), SIZE, "a message was cut");
                got.push(u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
            }
            Message::Text(t) if t.as_str() == "end" => return (client, got),
            other => panic!(
                "client {}: unexpected {}",
                client.local,
                crate::client::describe(&other)
            ),
        }
    }
}

fn spawn_reader(client: Client) -> JoinHandle<(Client, Vec<u32>, Instant)> {
    std::thread::spawn(move || {
        let (client, got) = read_until_end(client);
        (client, got, Instant::now())
    })
}

/// Waits until everything queued for `session` has been written, then writes `end`
/// behind it.
fn write_end<R: Runtime>(session: &Session<R>) {
    wait_until(
        Duration::from_secs(15),
        "the outbox to drain to the transport",
        || session.stats().queued == 0,
    );
    assert_eq!(
        session.write("end").queued,
        1,
        "the end marker must be queued"
    );
}

fn strictly_increasing(got: &[u32]) -> bool {
    got.windows(2).all(|w| w[0] < w[1])
}

/// The sum of the counts reported to `on_dropped` for a session.
fn reported_drops(rec: &Recorder, remote: std::net::SocketAddr) -> u64 {
    rec.of(remote)
        .iter()
        .map(|c| match c {
            Call::Dropped(n) => *n,
            _ => 0,
        })
        .sum()
}

/// Checks received + dropped == sent for one session, by every report the API gives:
/// `Session::stats`, and the `on_dropped` counts.
fn check_accounting<R: Runtime>(
    rec: &Recorder,
    session: &Session<R>,
    received: usize,
    sent: usize,
    what: &str,
) -> u64 {
    let stats = session.stats();
    assert_eq!(
        received as u64 + stats.dropped,
        sent as u64,
        "{what}: received {received} + reported dropped {} must equal sent {sent}",
        stats.dropped
    );
    let remote = session.remote_addr().unwrap_or_else(|| unreachable!());
    let mut reported = 0;
    let done = (0..200).any(|_| {
        reported = reported_drops(rec, remote);
        reported == stats.dropped || {
            std::thread::sleep(Duration::from_millis(10));
            false
        }
    });
    assert!(
        done,
        "{what}: on_error reported {reported} drops, stats say {}",
        stats.dropped
    );
    stats.dropped
}

/// With three fast clients and one that stops reading, broadcasting 16 MiB (1024 ×
/// 16 KiB, paced at about one per millisecond, `DropNewest`, 256-message outboxes):
/// no broadcast call waits on the slow peer, each fast client gets at least 90 % of
/// the messages, in order, within a few seconds of the last broadcast, and for every
/// client received + reported dropped == sent.
pub fn slow_consumer_does_not_slow_fast_clients<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config(), |m| rec.lifecycle(m));
    let fast: Vec<Client> = (0..3)
        .map(|i| Client::connect(server.addr, &format!("/fast{i}")))
        .collect();
    let slow = Client::connect(server.addr, "/slow");
    server.wait_len(4);
    let fast_sessions: Vec<_> = fast.iter().map(|c| server.session(c.local)).collect();
    let slow_session = server.session(slow.local);
    let readers: Vec<_> = fast.into_iter().map(spawn_reader).collect();

    let m = server.melody();
    let start = Instant::now();
    let mut total = Delivery::default();
    let mut slowest = Duration::ZERO;
    for i in 0..COUNT {
        let msg = message(i);
        let t = Instant::now();
        total.merge(m.broadcast_binary(&msg));
        slowest = slowest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    let broadcast_done = Instant::now();
    assert!(
        slowest < Duration::from_secs(1),
        "a broadcast call took {slowest:?}: broadcasting must never wait on a slow peer"
    );
    for s in &fast_sessions {
        write_end(s);
    }
    for (reader, session) in readers.into_iter().zip(&fast_sessions) {
        let (_client, got, finished) = reader.join().unwrap();
        let bound = Duration::from_secs(5);
        assert!(
            finished.saturating_duration_since(broadcast_done) < bound,
            "a fast client finished {:?} after the last broadcast (bound {bound:?})",
            finished - broadcast_done
        );
        assert!(
            got.len() * 10 >= COUNT as usize * 9,
            "a fast client got {} of {COUNT} messages (< 90 %) in {:?}",
            got.len(),
            finished - start
        );
        assert!(
            strictly_increasing(&got),
            "a fast client's messages out of order"
        );
        check_accounting(&rec, session, got.len(), COUNT as usize, "fast client");
    }
    // The slow client reads at last: still connected, in order, nothing unreported.
    assert!(!slow_session.is_closed(), "DropNewest must not disconnect");
    let reader = spawn_reader(slow);
    write_end(&slow_session);
    let (_slow, got, _) = reader.join().unwrap();
    assert!(
        strictly_increasing(&got),
        "the slow client's messages out of order"
    );
    let dropped = check_accounting(
        &rec,
        &slow_session,
        got.len(),
        COUNT as usize,
        "slow client",
    );
    assert!(
        dropped > 0,
        "16 MiB cannot fit in one outbox (1 MiB) and socket buffers"
    );
    let all: u64 = fast_sessions
        .iter()
        .chain([&slow_session])
        .map(|s| s.stats().dropped)
        .sum();
    assert_eq!(total.dropped as u64, all, "Delivery must count every drop");
    assert_eq!(m.stats().dropped, all, "HubStats must count every drop");
}

/// One client stops reading while 1024 × 16 KiB are broadcast into a 16-message
/// outbox under `policy`; once it reads again, what it received plus what the API
/// reported as dropped (`Delivery`, `Session::stats`, `on_dropped`,
/// `HubStats`) equals what was sent, exactly.
fn drops_are_counted<B: Backend>(policy: DropPolicy) -> (Vec<u32>, Vec<Delivery>) {
    let rec = Recorder::new();
    let cfg = config().message_buffer_size(16).drop_policy(policy);
    let server = Server::<B>::serve(cfg, |m| rec.lifecycle(m));
    let slow = Client::connect(server.addr, "/slow");
    let session = server.session(slow.local);
    let m = server.melody();
    let deliveries: Vec<Delivery> = (0..COUNT)
        .map(|i| m.broadcast_binary(&message(i)))
        .collect();
    let mut total = Delivery::default();
    deliveries.iter().for_each(|d| total.merge(*d));
    assert_eq!(
        (total.closed, total.disconnected),
        (0, 0),
        "{policy:?} must not close the session: {total:?}"
    );
    let reader = spawn_reader(slow);
    write_end(&session);
    let (_client, got, _) = reader.join().unwrap();
    assert!(
        strictly_increasing(&got),
        "{policy:?}: messages out of order"
    );
    let dropped = check_accounting(&rec, &session, got.len(), COUNT as usize, "slow client");
    assert_eq!(
        total.dropped as u64, dropped,
        "{policy:?}: Delivery vs stats"
    );
    assert_eq!(m.stats().dropped, dropped, "{policy:?}: HubStats vs stats");
    assert!(
        dropped > 0,
        "16 MiB cannot fit in 16 messages and socket buffers"
    );
    assert!(
        !session.is_closed(),
        "{policy:?} must not close the session"
    );
    (got, deliveries)
}

/// `DropNewest`: received + reported dropped == sent, and each refused message is
/// reported by its own call: exactly the messages whose `Delivery` said `queued`
/// arrive, and none that said `dropped`.
pub fn drop_newest_drops_are_counted<B: Backend>() {
    let (got, deliveries) = drops_are_counted::<B>(DropPolicy::DropNewest);
    let mut accepted = Vec::new();
    for (i, d) in deliveries.iter().enumerate() {
        match (d.queued, d.dropped) {
            (1, 0) => accepted.push(i as u32),
            (0, 1) => {}
            _ => panic!("DropNewest: message {i} got {d:?}: queued or refused, never both"),
        }
    }
    assert_eq!(
        got, accepted,
        "DropNewest: the messages received must be exactly those reported queued"
    );
}

/// `DropOldest`: received + reported dropped == sent; each new message is queued
/// (evictions counted in the same call's `Delivery::dropped`) unless everything queued
/// is already in flight, in which case it is refused; what arrives was reported
/// queued, and the newest message accepted arrives.
pub fn drop_oldest_drops_are_counted<B: Backend>() {
    let (got, deliveries) = drops_are_counted::<B>(DropPolicy::DropOldest);
    let mut accepted = Vec::new();
    for (i, d) in deliveries.iter().enumerate() {
        match (d.queued, d.dropped) {
            (1, _) => accepted.push(i as u32),
            (0, 1) => {}
            _ => panic!("DropOldest: message {i} got {d:?}"),
        }
    }
    assert!(
        got.iter().all(|i| accepted.binary_search(i).is_ok()),
        "DropOldest: a message reported dropped arrived"
    );
    assert_eq!(
        got.last(),
        accepted.last(),
        "DropOldest must keep the newest accepted message"
    );
}

/// `Disconnect`: a client that stops reading is closed with 1008 once its outbox is
/// full (`Delivery::disconnected`, `on_error(SessionError::SlowConsumer)`), after what
/// was already written; received + reported dropped == sent; others are unaffected.
pub fn disconnect_policy_closes_1008<B: Backend>() {
    let rec = Recorder::new();
    let cfg = config()
        .message_buffer_size(16)
        .drop_policy(DropPolicy::Disconnect)
        .close_timeout(Duration::from_secs(1));
    let server = Server::<B>::serve(cfg, |m| rec.lifecycle(m));
    let mut fast = Client::connect(server.addr, "/fast");
    let slow = Client::connect(server.addr, "/slow");
    server.wait_len(2);
    let fast_session = server.session(fast.local);
    let m = server.melody();
    let slow_addr = slow.local;
    let mut total = Delivery::default();
    let mut sent = 0;
    for i in 0..COUNT {
        // Only the slow one: the fast one gets a copy it reads below.
        let d = m.broadcast_binary_others(&message(i), &fast_session);
        total.merge(d);
        sent += 1;
        if total.disconnected > 0 {
            break;
        }
    }
    assert_eq!(
        total.disconnected, 1,
        "the slow consumer must be disconnected: {total:?}"
    );
    let reader = std::thread::spawn(move || {
        let mut slow = slow;
        let mut got = Vec::new();
        loop {
            match slow.recv() {
                Message::Binary(data) => {
                    assert_eq!(data.len(), SIZE, "a message was cut");
                    got.push(u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
                }
                Message::Close(frame) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    slow.finish_close();
                    return (got, code);
                }
                other => panic!("unexpected {}", crate::client::describe(&other)),
            }
        }
    });
    let (got, code) = reader.join().unwrap();
    assert_eq!(code, 1008, "a slow consumer is closed with 1008");
    assert!(strictly_increasing(&got));
    assert_eq!(
        got.len() + total.dropped,
        sent,
        "received {} + dropped {} must equal sent {sent}: {total:?}",
        got.len(),
        total.dropped
    );
    rec.wait_disconnect(slow_addr);
    assert!(
        rec.of(slow_addr)
            .iter()
            .any(|c| matches!(c, Call::Error(Error::Session(SessionError::SlowConsumer)))),
        "on_error must get SlowConsumer: {:?}",
        rec.of(slow_addr)
    );
    let _ = m.broadcast("fine");
    assert_eq!(fast.recv_text(), "fine", "the other client is unaffected");
    server.wait_len(1);
}
