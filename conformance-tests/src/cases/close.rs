//! Closing: client-initiated, server-initiated behind queued data, graceful shutdown,
//! and the instance's view of it all (`len`, `sessions`, `is_closed`).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melody_core::Delivery;
use melody_driver::ShutdownReport;
use tungstenite::Message;

use crate::backend::Backend;
use crate::client::{Client, End, Raw};
use crate::harness::{config, echo, modes, wait_until, Call, Recorder, Server};

/// A client's close 1000 is answered with close 1000 and the end of the connection,
/// with no data after it; `on_close` gets the client's code and reason, and a write
/// from `on_close` is refused as closed. Both upgrade modes.
pub fn client_close_answered_1000<B: Backend>() {
    for mode in modes() {
        let rec = Recorder::new();
        let refused = Arc::new(Mutex::new(Vec::<Delivery>::new()));
        let server = Server::<B>::start(config(), mode, |m| {
            rec.lifecycle(m);
            echo(m);
            let (r, refused) = (rec.clone(), refused.clone());
            m.on_close(move |s, code, reason| {
                r.record(s, Call::Close(code, reason.to_owned()));
                refused.lock().unwrap().push(s.write("after close"));
            });
        });
        let mut client = Client::connect(server.addr, "/");
        client.send_text("last");
        assert_eq!(client.recv_text(), "last");
        client.close(1000, "done");
        assert_eq!(client.recv_close().0, 1000, "a 1000 is answered with 1000");
        client.finish_close();
        rec.wait_disconnect(client.local);
        let calls = rec.of(client.local);
        assert!(
            calls.contains(&Call::Close(1000, "done".into())),
            "{calls:?}"
        );
        let refused = refused.lock().unwrap().clone();
        assert_eq!(refused.len(), 1);
        assert_eq!(
            (refused[0].queued, refused[0].closed),
            (0, 1),
            "a write after the peer's close must be refused as closed"
        );
        server.wait_len(0);
    }
}

/// `Session::close_with(4001, "bye now")` delivers the messages queued before it, then
/// the close frame with that code and reason; writes after it are refused, a second
/// close is refused, and the session ends once the client answers.
pub fn server_close_after_queued_data<B: Backend>() {
    for mode in modes() {
        let rec = Recorder::new();
        let server = Server::<B>::start(config(), mode, |m| rec.lifecycle(m));
        let mut client = Client::connect(server.addr, "/");
        let session = server.session(client.local);
        assert_eq!(session.write("a").queued, 1);
        assert_eq!(session.write_binary(&[1, 2]).queued, 1);
        assert_eq!(session.write(&"c".repeat(70_000)).queued, 1);
        assert!(
            session.close_with(4001, "bye now"),
            "the first close starts closing"
        );
        assert!(session.is_closed());
        let late = session.write("late");
        assert_eq!((late.queued, late.closed), (0, 1), "{late:?}");
        assert!(!session.close(), "a second close is refused");
        assert_eq!(client.recv_text(), "a");
        assert_eq!(client.recv_binary(), [1, 2]);
        assert_eq!(client.recv_text().len(), 70_000);
        assert_eq!(client.recv_close(), (4001, "bye now".into()));
        client.finish_close();
        rec.wait_disconnect(client.local);
        server.wait_len(0);
    }
}

/// `shutdown(5 s)` sends 1001 to every session after the messages queued before it
/// (300 × 16 KiB each, far more than socket buffers hold), which all arrive in order;
/// it returns once the clients have answered, within the grace period, reporting
/// every session closed and none cut off. Afterwards the instance is closed, empty,
/// and accepts no new session.
pub fn shutdown_flushes_and_sends_1001<B: Backend>() {
    const MESSAGES: usize = 300;
    let rec = Recorder::new();
    // 300 × 16 KiB per session: over the default 1 MiB byte bound.
    let cfg = config()
        .message_buffer_size(MESSAGES + 16)
        .message_buffer_bytes(None);
    let server = Server::<B>::serve(cfg, |m| rec.lifecycle(m));
    let clients: Vec<Client> = (0..3)
        .map(|i| Client::connect(server.addr, &format!("/{i}")))
        .collect();
    server.wait_len(3);
    let m = server.melody();
    let filler = "x".repeat(16 * 1024 - 4);
    for i in 0..MESSAGES {
        let d = m.broadcast(&format!("{i:04}{filler}"));
        assert_eq!(d.queued, 3);
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                let mut n = 0;
                loop {
                    match c.recv() {
                        Message::Text(t) => {
                            assert_eq!(&t.as_str()[..4], format!("{n:04}"), "out of order");
                            n += 1;
                        }
                        Message::Close(frame) => {
                            let code = frame.map_or(1005, |f| u16::from(f.code));
                            c.finish_close();
                            return (n, code);
                        }
                        other => panic!("unexpected {}", crate::client::describe(&other)),
                    }
                }
            })
        })
        .collect();
    let grace = Duration::from_secs(5);
    let start = Instant::now();
    let report = server.block_on(m.shutdown(grace));
    let took = start.elapsed();
    for r in readers {
        assert_eq!(
            r.join().unwrap(),
            (MESSAGES, 1001),
            "(messages received, close code)"
        );
    }
    assert_eq!(report.closed, 3, "{report:?}");
    assert_eq!((report.cut_off, report.undelivered), (0, 0), "{report:?}");
    assert!(
        took < grace,
        "shutdown took {took:?} though every client answered"
    );
    assert!(m.is_closed());
    assert_eq!(m.len(), 0);
    assert!(m.sessions().is_empty());
    let calls = rec.all();
    assert_eq!(
        calls.iter().filter(|(_, c)| *c == Call::Disconnect).count(),
        3
    );
    assert!(
        Client::try_connect(server.addr, "/late", &[]).is_err(),
        "a closed instance must not accept new sessions"
    );
}

/// Reads until the close frame, answers it, and returns its code and reason.
fn read_close(mut client: Client) -> (u16, String) {
    loop {
        match client.recv() {
            Message::Close(frame) => {
                let close = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.as_str().to_owned())
                });
                client.finish_close();
                return close;
            }
            Message::Text(_) | Message::Binary(_) => continue,
            other => panic!("unexpected {}", crate::client::describe(&other)),
        }
    }
}

/// `shutdown_with(5 s, 4001, "maintenance")` closes every session with that code and
/// reason; once the three clients have answered it returns, within the grace period,
/// reporting all three closed and none cut off.
pub fn shutdown_with_sends_its_code_and_reason<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let clients: Vec<Client> = (0..3)
        .map(|i| Client::connect(server.addr, &format!("/{i}")))
        .collect();
    server.wait_len(3);
    let readers: Vec<_> = clients
        .into_iter()
        .map(|c| std::thread::spawn(move || read_close(c)))
        .collect();
    let grace = Duration::from_secs(5);
    let start = Instant::now();
    let report = server.block_on(server.melody().shutdown_with(grace, 4001, "maintenance"));
    let took = start.elapsed();
    expect_every_close_answered(readers, (4001, "maintenance"), report, took, grace);
    assert_eq!(server.melody().len(), 0);
}

/// Every client read `close`, and the shutdown ended all three sessions before
/// `grace`, cutting none off.
fn expect_every_close_answered(
    readers: Vec<std::thread::JoinHandle<(u16, String)>>,
    close: (u16, &str),
    report: ShutdownReport,
    took: Duration,
    grace: Duration,
) {
    for r in readers {
        assert_eq!(
            r.join().unwrap(),
            (close.0, close.1.to_owned()),
            "(close code, reason)"
        );
    }
    assert_eq!(
        (report.closed, report.cut_off, report.undelivered),
        (3, 0, 0),
        "{report:?}"
    );
    assert!(
        took < grace,
        "the shutdown took {took:?} though every client answered"
    );
}

/// `close_with(4000, "x")` and then `shutdown(5 s)`: the sessions, already closing,
/// keep the 4000 close, and the shutdown waits for them and counts them — closed 3,
/// none cut off — instead of reporting 0 because `close_with` started their close.
/// The clients answer only once the shutdown has begun, so that the sessions are
/// still closing when it counts them.
pub fn shutdown_after_close_with_counts_the_closing_sessions<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let clients: Vec<Client> = (0..3)
        .map(|i| Client::connect(server.addr, &format!("/{i}")))
        .collect();
    server.wait_len(3);
    let m = server.melody();
    assert_eq!(
        m.close_with(4000, "x"),
        3,
        "sessions close_with started closing"
    );
    let shutdown_began = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let began = shutdown_began.clone();
            std::thread::spawn(move || {
                wait_until(Duration::from_secs(5), "the shutdown to begin", || {
                    began.load(Ordering::SeqCst)
                });
                read_close(c)
            })
        })
        .collect();
    let grace = Duration::from_secs(5);
    let start = Instant::now();
    let mut shutdown = Box::pin(m.shutdown(grace));
    // The shutdown counts the sessions on its first poll; only then may clients answer.
    let report = server.block_on(std::future::poll_fn(|cx| {
        let poll = shutdown.as_mut().poll(cx);
        shutdown_began.store(true, Ordering::SeqCst);
        poll
    }));
    let took = start.elapsed();
    // The earlier close_with's code and reason.
    expect_every_close_answered(readers, (4000, "x"), report, took, grace);
    assert_eq!(m.len(), 0);
}

/// `shutdown(500 ms)` with a client that never answers the close returns at the
/// deadline (not long after), reporting that session cut off; the client got its
/// 1001 and then the end of the connection.
pub fn shutdown_cuts_off_at_deadline<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let mut raw = Raw::upgrade(server.addr, "/");
    server.wait_len(1);
    let grace = Duration::from_millis(500);
    let start = Instant::now();
    let report = server.block_on(server.melody().shutdown(grace));
    let took = start.elapsed();
    assert_eq!((report.closed, report.cut_off), (1, 1), "{report:?}");
    assert!(
        took >= grace - Duration::from_millis(50),
        "returned after {took:?}"
    );
    assert!(
        took <= grace + Duration::from_millis(1500),
        "shutdown({grace:?}) took {took:?}"
    );
    assert_eq!(raw.read_close_code(), 1001);
    match raw.try_read_frame(Duration::from_secs(3)) {
        Err(End::Closed) => {}
        other => panic!("the cut-off connection must end, got {other:?}"),
    }
    assert_eq!(server.melody().len(), 0);
}

/// `len`, `sessions`, `is_closed` (instance and session) are right before, during and
/// after sessions come and go, and after `close()`.
pub fn len_sessions_is_closed_track_state<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config(), |m| rec.lifecycle(m));
    let m = server.melody();
    assert_eq!((m.len(), m.sessions().len(), m.is_closed()), (0, 0, false));
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::connect(server.addr, &format!("/{i}")))
        .collect();
    server.wait_len(3);
    let mut listed: Vec<_> = m
        .sessions()
        .iter()
        .filter_map(|s| s.remote_addr())
        .collect();
    let mut want: Vec<_> = clients.iter().map(|c| c.local).collect();
    listed.sort();
    want.sort();
    assert_eq!(listed, want, "sessions() must list the connected peers");
    let first = server.session(clients[0].local);
    assert!(!first.is_closed());
    let c0 = clients.remove(0);
    let c0_addr = c0.local;
    c0.close_and_wait();
    rec.wait_disconnect(c0_addr);
    server.wait_len(2);
    assert!(
        first.is_closed(),
        "a finished session's handle reports closed"
    );
    assert_eq!(m.sessions().len(), 2);
    assert!(!m.sessions().contains(&first));
    assert_eq!(m.close(), 2, "close() closes the two open sessions");
    assert!(m.is_closed());
    for mut c in clients {
        assert_eq!(c.recv_close().0, 1001);
        c.finish_close();
    }
    server.wait_len(0);
    assert!(m.sessions().is_empty());
}

/// An upgrade still in progress when `close()` is called (here: while its keys are
/// being computed) does not leave a live session on the closed instance: the client
/// is refused, or gets its 101 followed at once by a 1001 close, and `len()` ends at
/// 0. ([`Upgrade::WithKeys`](crate::Upgrade::WithKeys).)
pub fn upgrade_racing_close_gets_no_session<B: Backend>() {
    let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = entered.clone();
    let keys: crate::KeysFn = Arc::new(move |_request| {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        melody_core::Keys::new()
    });
    let server = Server::<B>::start(config(), crate::Upgrade::WithKeys(keys), |_| {});
    let addr = server.addr;
    let client = std::thread::spawn(move || Client::try_connect(addr, "/late", &[]));
    crate::harness::wait_until(Duration::from_secs(5), "the upgrade to start", || {
        entered.load(std::sync::atomic::Ordering::SeqCst)
    });
    server.melody().close();
    match client.join().unwrap() {
        Err(_) => {}
        Ok((mut c, _)) => {
            assert_eq!(
                c.recv_close().0,
                1001,
                "a session upgraded while closing must be closed with 1001"
            );
            c.finish_close();
        }
    }
    server.wait_len(0);
}
