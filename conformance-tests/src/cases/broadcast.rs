//! Broadcast to all, to others, by filter, to a list, by topic; ordering; concurrency.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use melody_core::Delivery;
use melody_driver::{Melody, Runtime, Session};

use crate::backend::Backend;
use crate::client::Client;
use crate::harness::{config, Server};

/// Connects `paths.len()` clients and returns them with their sessions.
fn connect_all<B: Backend>(
    server: &Server<B>,
    paths: &[&str],
) -> (Vec<Client>, Vec<Session<B::Runtime>>) {
    let clients: Vec<Client> = paths
        .iter()
        .map(|p| Client::connect(server.addr, p))
        .collect();
    server.wait_len(paths.len());
    let sessions = clients.iter().map(|c| server.session(c.local)).collect();
    (clients, sessions)
}

/// Broadcasts a marker to everyone and checks it is each listed client's next message:
/// proof that they got nothing else before it.
fn expect_marker_next<R: Runtime>(m: &Melody<R>, clients: &mut [&mut Client]) {
    let _ = m.broadcast("marker");
    for c in clients.iter_mut() {
        assert_eq!(
            c.recv_text(),
            "marker",
            "client {} got a message meant for others",
            c.local
        );
    }
}

fn clean(d: Delivery, queued: usize) {
    assert_eq!(
        d,
        Delivery {
            queued,
            ..Delivery::default()
        },
        "unexpected delivery report"
    );
}

/// Subscribes on `sub:T`, unsubscribes on `unsub:T`, publishes to others on
/// `pub:T:text`; answers `ok` to each.
fn topic_handlers<R: Runtime>(m: &Melody<R>) {
    let m2 = m.clone();
    m.on_message(move |s, text| {
        if let Some(topic) = text.strip_prefix("sub:") {
            s.subscribe(topic);
        } else if let Some(topic) = text.strip_prefix("unsub:") {
            s.unsubscribe(topic);
        } else if let Some(rest) = text.strip_prefix("pub:") {
            if let Some((topic, body)) = rest.split_once(':') {
                let _ = m2.publish_others(topic, body, s);
            }
        }
        let _ = s.write("ok");
    });
}

/// `broadcast` and `broadcast_binary` reach every session, and the `Delivery` counts
/// them.
pub fn broadcast_reaches_all<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let (mut clients, _) = connect_all(&server, &["/0", "/1", "/2", "/3"]);
    clean(server.melody().broadcast("hello all"), 4);
    clean(server.melody().broadcast_binary(&[1, 2, 3]), 4);
    for c in &mut clients {
        assert_eq!(c.recv_text(), "hello all");
        assert_eq!(c.recv_binary(), [1, 2, 3]);
    }
}

/// `broadcast_others` and `broadcast_binary_others` reach every session but the one
/// named.
pub fn broadcast_others_skips_sender<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let (mut clients, sessions) = connect_all(&server, &["/0", "/1", "/2", "/3"]);
    let m = server.melody();
    clean(m.broadcast_others("not for 0", &sessions[0]), 3);
    clean(m.broadcast_binary_others(&[9], &sessions[0]), 3);
    for c in &mut clients[1..] {
        assert_eq!(c.recv_text(), "not for 0");
        assert_eq!(c.recv_binary(), [9]);
    }
    let (first, _) = clients.split_at_mut(1);
    expect_marker_next(m, &mut [&mut first[0]]);
}

/// A filter sees a connected session's peer address and request: the session's
/// handles keep them once it is connected, the hub no copy.
pub fn broadcast_filter_on_peer_and_request<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let (mut clients, _) = connect_all(&server, &["/a", "/b", "/a"]);
    let m = server.melody();
    let second = clients[1].local;
    clean(
        m.broadcast_filter("by peer", |r| r.remote_addr() == Some(second)),
        1,
    );
    assert_eq!(clients[1].recv_text(), "by peer");
    let on_a =
        |r: &melody_driver::SessionRef<'_>| r.request().is_some_and(|q| q.uri().path() == "/a");
    clean(m.broadcast_filter("by path", on_a), 2);
    for i in [0, 2] {
        assert_eq!(clients[i].recv_text(), "by path");
    }
    let mut all: Vec<&mut Client> = clients.iter_mut().collect();
    expect_marker_next(m, &mut all);
}

/// `broadcast_filter` (and its binary twin) reaches the sessions whose keys match.
pub fn broadcast_filter_on_keys<B: Backend>() {
    let server = Server::<B>::serve(config(), |m| {
        m.on_connect(|s| {
            let room = s
                .request()
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("room="))
                .unwrap_or("")
                .to_owned();
            s.set("room", room);
            let _ = s.write("ready");
        });
    });
    let (mut clients, _) = connect_all(&server, &["/?room=a", "/?room=b", "/?room=a", "/?room=b"]);
    for c in &mut clients {
        assert_eq!(c.recv_text(), "ready", "on_connect must have run");
    }
    let m = server.melody();
    let in_a = |r: &melody_driver::SessionRef<'_>| {
        r.get::<String>("room").map(String::as_str) == Some("a")
    };
    clean(m.broadcast_filter("room a", in_a), 2);
    clean(m.broadcast_binary_filter(&[0xa], in_a), 2);
    for i in [0, 2] {
        assert_eq!(clients[i].recv_text(), "room a");
        assert_eq!(clients[i].recv_binary(), [0xa]);
    }
    let (c1, rest) = clients[1..].split_at_mut(1);
    expect_marker_next(m, &mut [&mut c1[0], &mut rest[1]]);
}

/// `broadcast_multiple` (and its binary twin) reaches exactly the listed sessions; a
/// listed session that is over counts as closed.
pub fn broadcast_multiple_reaches_list<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let (mut clients, sessions) = connect_all(&server, &["/0", "/1", "/2", "/3"]);
    let m = server.melody();
    let list = [sessions[1].clone(), sessions[3].clone()];
    clean(m.broadcast_multiple("listed", &list), 2);
    clean(m.broadcast_binary_multiple(&[3], &list), 2);
    for i in [1, 3] {
        assert_eq!(clients[i].recv_text(), "listed");
        assert_eq!(clients[i].recv_binary(), [3]);
    }
    {
        let (c0, rest) = clients.split_at_mut(1);
        expect_marker_next(m, &mut [&mut c0[0], &mut rest[1]]);
    }
    let mut gone = clients.pop().unwrap_or_else(|| unreachable!());
    assert_eq!(gone.recv_text(), "marker");
    gone.close_and_wait();
    server.wait_len(3);
    let d = m.broadcast_multiple("late", &[sessions[3].clone()]);
    assert_eq!(
        (d.queued, d.closed),
        (0, 1),
        "a finished session counts as closed: {d:?}"
    );
}

/// `publish` and `publish_binary` reach a topic's subscribers only; unsubscribing and
/// disconnecting take a session out of the topic.
pub fn publish_reaches_subscribers<B: Backend>() {
    let server = Server::<B>::serve(config(), topic_handlers);
    let (mut clients, _) = connect_all(&server, &["/0", "/1", "/2", "/3"]);
    for (i, topic) in [(0, "news"), (1, "news"), (2, "sports")] {
        clients[i].send_text(&format!("sub:{topic}"));
        assert_eq!(clients[i].recv_text(), "ok");
    }
    let m = server.melody();
    assert_eq!(m.subscriber_count("news"), 2);
    clean(m.publish("news", "n1"), 2);
    clean(m.publish_binary("news", &[1]), 2);
    for i in [0, 1] {
        assert_eq!(clients[i].recv_text(), "n1");
        assert_eq!(clients[i].recv_binary(), [1]);
    }
    {
        let (_, rest) = clients.split_at_mut(2);
        let (c2, c3) = rest.split_at_mut(1);
        expect_marker_next(m, &mut [&mut c2[0], &mut c3[0]]);
    }
    for c in &mut clients[..2] {
        assert_eq!(c.recv_text(), "marker");
    }
    clients[1].send_text("unsub:news");
    assert_eq!(clients[1].recv_text(), "ok");
    clean(m.publish("news", "n2"), 1);
    assert_eq!(clients[0].recv_text(), "n2");
    let (c0, rest) = clients.split_at_mut(1);
    expect_marker_next(m, &mut [&mut rest[0]]);
    assert_eq!(c0[0].recv_text(), "marker");
    let first = clients.remove(0);
    first.close_and_wait();
    server.wait_len(3);
    assert_eq!(
        m.subscriber_count("news"),
        0,
        "a finished session leaves its topics"
    );
    clean(m.publish("news", "n3"), 0);
}

/// `publish_others` (called from a handler, as a chat room does) reaches the topic's
/// subscribers but the publisher.
pub fn publish_others_skips_publisher<B: Backend>() {
    let server = Server::<B>::serve(config(), topic_handlers);
    let (mut clients, _) = connect_all(&server, &["/0", "/1", "/2", "/3"]);
    for c in &mut clients[..3] {
        c.send_text("sub:room");
        assert_eq!(c.recv_text(), "ok");
    }
    clients[0].send_text("pub:room:hello");
    assert_eq!(clients[0].recv_text(), "ok");
    for c in &mut clients[1..3] {
        assert_eq!(c.recv_text(), "hello");
    }
    let (c0, rest) = clients.split_at_mut(1);
    expect_marker_next(server.melody(), &mut [&mut c0[0], &mut rest[2]]);
}

/// 200 broadcasts interleaved with direct writes to one session arrive at every
/// session in the order they were made.
pub fn broadcast_keeps_per_session_order<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let (mut clients, sessions) = connect_all(&server, &["/0", "/1", "/2"]);
    let m = server.melody();
    let mut expected_0 = Vec::new();
    for i in 0..200 {
        clean(m.broadcast(&format!("b{i}")), 3);
        expected_0.push(format!("b{i}"));
        if i % 10 == 0 {
            clean(sessions[0].write(&format!("w{i}")), 1);
            expected_0.push(format!("w{i}"));
        }
    }
    for want in &expected_0 {
        assert_eq!(&clients[0].recv_text(), want, "session 0 out of order");
    }
    for c in &mut clients[1..] {
        for i in 0..200 {
            assert_eq!(c.recv_text(), format!("b{i}"), "out of order");
        }
    }
}

/// Broadcasts from 8 threads at once are all delivered to every session, each
/// thread's messages in the order it sent them.
pub fn concurrent_broadcasts_all_delivered<B: Backend>() {
    const THREADS: usize = 8;
    const EACH: usize = 100;
    const CLIENTS: usize = 4;
    let server = Server::<B>::serve(config().message_buffer_size(THREADS * EACH + 16), |_| {});
    let (clients, _) = connect_all(&server, &["/0", "/1", "/2", "/3"]);
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                let mut next = [0usize; THREADS];
                for _ in 0..THREADS * EACH {
                    let data = c.recv_binary();
                    let (t, i) = (
                        data[0] as usize,
                        u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize,
                    );
                    assert_eq!(
                        i, next[t],
                        "client {}: thread {t}'s messages out of order",
                        c.local
                    );
                    next[t] += 1;
                }
                c.expect_no_data(Duration::from_millis(100));
            })
        })
        .collect();
    let barrier = Arc::new(Barrier::new(THREADS));
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = server.melody().clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut total = Delivery::default();
                for i in 0..EACH {
                    let mut msg = vec![t as u8];
                    msg.extend_from_slice(&(i as u32).to_be_bytes());
                    total.merge(m.broadcast_binary(&msg));
                }
                total
            })
        })
        .collect();
    let mut total = Delivery::default();
    for s in senders {
        total.merge(s.join().unwrap());
    }
    clean(total, THREADS * EACH * CLIENTS);
    for r in readers {
        r.join().unwrap();
    }
}
