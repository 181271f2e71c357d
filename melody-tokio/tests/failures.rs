//! Failure cases over real sockets, each with its documented outcome: a panicking
//! handler, a client that vanishes mid-write, a full outbox, and shutdown (a broadcast
//! racing it, and a client too slow to finish before the grace period).
//!
//! The file-descriptor limit case lowers a process-wide limit, so it has its own test
//! binary: `fd_limit.rs`.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use common::{recv, recv_close, wait_until, Client, Log, Server};
use melody_tokio::{Config, Delivery, Error, Melody, ShutdownReport};
use tungstenite::Message;

/// Panics the tests cause on purpose carry this marker; the hook keeps them off stderr.
const DELIBERATE: &str = "deliberate test panic";

fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !text.contains(DELIBERATE) {
                default(info);
            }
        }));
    });
}

/// 200 binary messages of 128 KiB: 25 MiB, far more than loopback socket buffers hold,
/// so most of it stays queued while the client does not read.
const FLOOD: usize = 200;
const FLOOD_SIZE: usize = 128 * 1024;

/// A config whose outboxes take the whole flood (the default bound is 1 MiB).
fn flood_config() -> Config {
    Config::default().message_buffer_bytes(None)
}

/// On "flood", queues [`FLOOD`] big messages for the sender; echoes anything else.
/// Logs "flooded" when done, and each session's key on disconnect.
fn echo_or_flood(melody: &Melody, log: &Log) {
    let l = log.clone();
    melody.on_message(move |s, text| {
        if text == "flood" {
            let big = vec![0u8; FLOOD_SIZE];
            let queued: usize = (0..FLOOD).map(|_| s.write_binary(&big).queued).sum();
            assert_eq!(queued, FLOOD);
            l.push("flooded");
        } else {
            let _ = s.write(text);
        }
    });
    let l = log.clone();
    melody.on_disconnect(move |s| l.push(format!("disconnect {}", s.key())));
}

/// A fresh client gets its echo: the server is still serving.
fn assert_still_serving(server: &Server) {
    let mut client = server.connect("/");
    client.send(Message::text("still here")).unwrap();
    assert_eq!(recv(&mut client), "t:still here");
}

#[test]
fn a_panicking_handler_closes_only_its_session_with_1011() {
    quiet_deliberate_panics();
    let server = Server::start(Config::default());
    let m = &server.melody;
    let log = Log::default();
    m.on_message(|s, text| {
        if text == "boom" {
            panic!("{DELIBERATE}: boom");
        }
        let _ = s.write(text);
    });
    let l = log.clone();
    m.on_error(move |_, err| {
        if let Error::HandlerPanicked(message) = err {
            l.push(format!("panicked: {message}"));
        }
    });
    let l = log.clone();
    m.on_disconnect(move |_| l.push("disconnect"));

    let mut bystander = server.connect("/");
    let mut client = server.connect("/");
    wait_until("two sessions", || m.len() == 2);
    client.send(Message::text("boom")).unwrap();

    assert_eq!(recv_close(&mut client), (1011, "internal error".to_owned()));
    log.wait_for(&format!("panicked: {DELIBERATE}: boom"));
    wait_until("the session to be released", || m.len() == 1);
    assert_eq!(log.count("disconnect"), 1);
    // The other session, and new ones, carry on.
    bystander.send(Message::text("unaffected")).unwrap();
    assert_eq!(recv(&mut bystander), "t:unaffected");
    assert_still_serving(&server);
}

#[test]
fn a_client_vanishing_mid_write_is_cleaned_up_once() {
    let server = Server::start(flood_config());
    let m = &server.melody;
    let log = Log::default();
    echo_or_flood(m, &log);

    let mut client = server.connect("/?vanishing");
    let session = server.session_with_query("vanishing");
    client.send(Message::text("flood")).unwrap();
    log.wait_for("flooded");
    assert!(
        session.stats().queued > 0,
        "the server still has data queued for the client"
    );

    // Closing a socket with unread data sends a reset: the server's next write fails.
    drop(client);
    wait_until("the session to be released", || m.is_empty());
    let gone = format!("disconnect {}", session.key());
    // `len()` drops when the session ends; its `on_disconnect` runs just after.
    log.wait_for(&gone);
    assert_eq!(log.count(&gone), 1);
    assert!(session.is_closed());

    assert_still_serving(&server);
    assert_eq!(log.count(&gone), 1, "on_disconnect fires once");
}

#[test]
fn a_full_outbox_counts_and_reports_its_drops() {
    let server = Server::start(Config::default().message_buffer_size(4));
    let m = &server.melody;
    let delivered = Arc::new(Mutex::new(None));
    let reported = Arc::new(AtomicU64::new(0));

    // Inside a handler the connection task is busy, so nothing drains the outbox: the
    // fifth message on finds it full (the default policy refuses the newest).
    let (d, room) = (delivered.clone(), m.clone());
    m.on_message(move |s, _| {
        let mut total = Delivery::default();
        for i in 0..10 {
            total.merge(s.write(&i.to_string()));
        }
        total.merge(room.broadcast("one more"));
        *d.lock().unwrap() = Some(total);
    });
    let r = reported.clone();
    m.on_dropped(move |_, n| {
        r.fetch_add(n, Ordering::Relaxed);
    });

    let mut client = server.connect("/?full");
    let session = server.session_with_query("full");
    client.send(Message::text("fill")).unwrap();
    wait_until("the handler to finish", || {
        delivered.lock().unwrap().is_some()
    });
    let total = delivered.lock().unwrap().unwrap();
    assert_eq!(
        total,
        Delivery {
            queued: 4,
            dropped: 7,
            ..Delivery::default()
        }
    );
    wait_until("on_dropped to report 7 drops", || {
        reported.load(Ordering::Relaxed) == 7
    });

    for i in 0..4 {
        assert_eq!(recv(&mut client), format!("t:{i}"));
    }
    assert_eq!(session.write("after").queued, 1);
    assert_eq!(recv(&mut client), "t:after", "nothing else was sent");
    assert_eq!(session.stats().dropped, 7);
    assert_eq!(m.stats().dropped, 7);
}

/// The first message a client reads must be the close frame: nothing slipped in.
fn assert_next_is_close(client: &mut Client, code: u16) {
    match client.read().expect("read the close frame") {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), code),
        other => panic!("expected a close frame, got {other:?}"),
    }
    let _ = client.flush();
}

#[test]
fn a_broadcast_during_shutdown_counts_closed_recipients() {
    let server = Server::start(Config::default());
    let m = &server.melody;
    let mut a = server.connect("/?a");
    let mut b = server.connect("/?b");
    let sessions = [
        server.session_with_query("a"),
        server.session_with_query("b"),
    ];

    // The clients do not read yet, so their sessions stay in the closing handshake.
    let stopping = m.clone();
    let shutdown = server
        .rt
        .spawn(async move { stopping.shutdown(Duration::from_secs(10)).await });
    wait_until("every session closing", || {
        sessions.iter().all(|s| s.is_closed())
    });
    assert_eq!(
        m.broadcast("too late"),
        Delivery {
            closed: 2,
            ..Delivery::default()
        }
    );

    assert_next_is_close(&mut a, 1001);
    assert_next_is_close(&mut b, 1001);
    let report = server.rt.block_on(shutdown).expect("shutdown task");
    assert_eq!(
        report,
        ShutdownReport {
            closed: 2,
            cut_off: 0,
            undelivered: 0,
        }
    );
    assert!(m.is_empty());
    wait_until("serve to return", || server.serving.is_finished());
}

#[test]
fn shutdown_cuts_off_a_client_that_does_not_read_and_reports_it() {
    let server = Server::start(flood_config());
    let m = &server.melody;
    let log = Log::default();
    echo_or_flood(m, &log);

    let mut client = server.connect("/?slow");
    let session = server.session_with_query("slow");
    client.send(Message::text("flood")).unwrap();
    log.wait_for("flooded");

    let report = server.rt.block_on(m.shutdown(Duration::from_millis(300)));
    assert_eq!(report.closed, 1);
    assert_eq!(report.cut_off, 1);
    assert!(
        report.undelivered > 0 && report.undelivered <= FLOOD,
        "{report:?}"
    );
    wait_until("the session to be released", || m.is_empty());
    assert_eq!(log.count(&format!("disconnect {}", session.key())), 1);
}
