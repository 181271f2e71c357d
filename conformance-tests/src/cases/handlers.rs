//! Handlers: arguments, order, exactly-once disconnect, panics, re-entrancy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melody_core::SessionError;
use melody_driver::Error;
use tungstenite::Message;

use crate::backend::Backend;
use crate::client::{Client, RecvError};
use crate::harness::{config, Call, Recorder, Server};

/// What `on_connect` saw of the session handle.
#[derive(Debug, Clone, PartialEq)]
struct Handle {
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    path: String,
    closed: bool,
}

/// Every handler fires with the right arguments, in order per session:
/// `on_connect` first (with the peer and local addresses and the request), then
/// `on_message`, `on_message_binary` and `on_pong` as the client sent them, `on_sent`
/// and `on_sent_binary` for what the server wrote, `on_close` with the client's code
/// and reason, and `on_disconnect` exactly once, last. A client that vanishes without
/// a close gets `on_error` and then its single `on_disconnect`.
pub fn handlers_fire_in_order<B: Backend>() {
    let rec = Recorder::new();
    let handles = Arc::new(Mutex::new(Vec::new()));
    let server = Server::<B>::serve(config(), |m| {
        rec.lifecycle(m);
        let (r, h) = (rec.clone(), handles.clone());
        m.on_connect(move |s| {
            h.lock().unwrap().push(Handle {
                remote: s.remote_addr(),
                local: s.local_addr(),
                path: s.request().uri().to_string(),
                closed: s.is_closed(),
            });
            r.record(s, Call::Connect);
        });
        let r = rec.clone();
        m.on_message(move |s, text| {
            r.record(s, Call::Text(text.to_owned()));
            let _ = s.write(&format!("echo:{text}"));
        });
        let r = rec.clone();
        m.on_message_binary(move |s, data| {
            r.record(s, Call::Binary(data.to_vec()));
            let _ = s.write_binary(data);
        });
        let r = rec.clone();
        m.on_sent(move |s, text| r.record(s, Call::Sent(text.to_owned())));
        let r = rec.clone();
        m.on_sent_binary(move |s, data| r.record(s, Call::SentBinary(data.to_vec())));
    });

    let mut client = Client::connect(server.addr, "/handlers?x=1");
    client.send_text("one");
    client.send(Message::binary(vec![1, 2, 3]));
    client.send(Message::Pong(b"unsolicited".to_vec().into()));
    assert_eq!(client.recv_text(), "echo:one");
    assert_eq!(client.recv_binary(), [1, 2, 3]);
    let remote = client.local;
    // The pong has no answer to wait for; wait for its handler before closing.
    rec.wait(Duration::from_secs(5), "on_pong", |calls| {
        calls
            .iter()
            .any(|(a, c)| *a == Some(remote) && *c == Call::Pong)
    });
    client.close(1000, "bye");
    client.finish_close();
    rec.wait_disconnect(remote);
    // Let any (wrong) late call arrive before checking.
    std::thread::sleep(Duration::from_millis(100));

    let calls = rec.of(remote);
    let main: Vec<Call> = calls
        .iter()
        .filter(|c| !matches!(c, Call::Sent(_) | Call::SentBinary(_)))
        .cloned()
        .collect();
    assert_eq!(
        main,
        vec![
            Call::Connect,
            Call::Text("one".into()),
            Call::Binary(vec![1, 2, 3]),
            Call::Pong,
            Call::Close(1000, "bye".into()),
            Call::Disconnect,
        ],
        "handler calls out of order or with wrong arguments: {calls:?}"
    );
    let pos = |call: &Call| calls.iter().position(|c| c == call);
    let sent = pos(&Call::Sent("echo:one".into())).expect("on_sent for the echo");
    let sent_bin = pos(&Call::SentBinary(vec![1, 2, 3])).expect("on_sent_binary for the echo");
    assert!(sent > pos(&Call::Text("one".into())).unwrap_or(usize::MAX));
    assert!(sent_bin > pos(&Call::Binary(vec![1, 2, 3])).unwrap_or(usize::MAX));
    assert_eq!(
        calls.last(),
        Some(&Call::Disconnect),
        "disconnect last: {calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| **c == Call::Disconnect).count(),
        1,
        "disconnect exactly once"
    );
    assert_eq!(
        handles.lock().unwrap()[0],
        Handle {
            remote: Some(remote),
            local: Some(server.addr),
            path: "/handlers?x=1".into(),
            closed: false,
        },
        "on_connect's session handle"
    );

    // A peer that vanishes without a close handshake.
    let mut gone = Client::connect(server.addr, "/gone");
    gone.send_text("hi");
    assert_eq!(gone.recv_text(), "echo:hi");
    let gone_addr = gone.local;
    let _ = gone.socket().shutdown(std::net::Shutdown::Both);
    drop(gone);
    rec.wait_disconnect(gone_addr);
    std::thread::sleep(Duration::from_millis(100));
    let calls = rec.of(gone_addr);
    assert_eq!(calls.first(), Some(&Call::Connect));
    assert_eq!(calls.last(), Some(&Call::Disconnect), "{calls:?}");
    assert_eq!(
        calls.iter().filter(|c| **c == Call::Disconnect).count(),
        1,
        "disconnect exactly once: {calls:?}"
    );
    assert!(
        calls.iter().any(|c| matches!(
            c,
            Call::Error(Error::Session(
                SessionError::PeerGone | SessionError::Io { .. }
            ))
        )),
        "a vanished peer must be reported to on_error: {calls:?}"
    );
    assert!(
        !calls.iter().any(|c| matches!(c, Call::Close(..))),
        "{calls:?}"
    );
    server.wait_len(0);
}

/// A handler that panics closes only its own session, with 1011, and the panic is
/// reported to `on_error` as `Error::HandlerPanicked` with its message; other
/// sessions, and new ones, are served as before. A panic in `on_connect` is handled
/// the same way.
pub fn panicking_handler_closes_its_session_only<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config().close_timeout(Duration::from_secs(1)), |m| {
        rec.lifecycle(m);
        let r = rec.clone();
        m.on_connect(move |s| {
            r.record(s, Call::Connect);
            if s.request().uri().path() == "/panic-on-connect" {
                panic!("conformance: planned panic in on_connect");
            }
        });
        m.on_message(|s, text| {
            if text == "panic" {
                panic!("conformance: planned panic in on_message");
            }
            let _ = s.write(text);
        });
    });
    let mut a = Client::connect(server.addr, "/a");
    let mut b = Client::connect(server.addr, "/b");
    a.send_text("panic");
    assert_eq!(
        a.recv_close().0,
        1011,
        "a panicking handler closes with 1011"
    );
    a.finish_close();
    rec.wait_disconnect(a.local);
    let calls = rec.of(a.local);
    assert!(
        calls.iter().any(|c| matches!(
            c,
            Call::Error(Error::HandlerPanicked(m)) if m.contains("planned panic in on_message")
        )),
        "on_error must get the panic: {calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| **c == Call::Disconnect).count(),
        1,
        "{calls:?}"
    );
    b.send_text("b is fine");
    assert_eq!(b.recv_text(), "b is fine");

    let mut c = Client::connect(server.addr, "/panic-on-connect");
    assert_eq!(
        c.recv_close().0,
        1011,
        "a panic in on_connect closes with 1011"
    );
    c.finish_close();
    rec.wait_disconnect(c.local);
    assert!(rec.of(c.local).iter().any(|c| matches!(
        c,
        Call::Error(Error::HandlerPanicked(m)) if m.contains("planned panic in on_connect")
    )));

    let mut d = Client::connect(server.addr, "/d");
    d.send_text("new ones too");
    assert_eq!(d.recv_text(), "new ones too");
    b.send_text("still");
    assert_eq!(b.recv_text(), "still");
    server.wait_len(2);
}

/// Handlers that call back into melody — broadcast, broadcast to others, filtered
/// broadcast reading keys, write, set, sessions, len, close — do not deadlock, and
/// every message arrives.
pub fn reentrant_broadcast_does_not_deadlock<B: Backend>() {
    const CLIENTS: usize = 3;
    const MESSAGES: usize = 20;
    let server = Server::<B>::serve(config().message_buffer_size(1024), |m| {
        let m2 = m.clone();
        m.on_connect(move |s| {
            s.set("id", s.remote_addr());
            let _ = m2.sessions();
            let _ = m2.broadcast_others("joined", s);
        });
        let m2 = m.clone();
        m.on_message(move |s, text| {
            if text == "quit" {
                s.close_with(4000, "asked to");
                return;
            }
            let _ = m2.len();
            let _ = m2.sessions().len();
            let _ = m2.broadcast(&format!("all:{text}"));
            let _ = m2.broadcast_others(&format!("others:{text}"), s);
            let me = s.get::<Option<SocketAddr>>("id").flatten();
            let _ = m2.broadcast_filter(&format!("filter:{text}"), |r| {
                r.get::<Option<SocketAddr>>("id").copied().flatten() == me
            });
            let _ = s.write(&format!("self:{text}"));
            s.set("last", text.to_owned());
        });
        let m2 = m.clone();
        m.on_disconnect(move |s| {
            let _ = m2.broadcast_others("left", s);
            let _ = m2.len();
        });
        let m2 = m.clone();
        m.on_sent(move |_, _| {
            let _ = m2.len();
        });
    });
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|i| Client::connect(server.addr, &format!("/{i}")))
        .collect();
    server.wait_len(CLIENTS);
    // Each client sends its messages; each must then receive every `all:` message, the
    // `others:` of the other clients, and its own `filter:` and `self:` messages.
    let names: Vec<String> = (0..CLIENTS).map(|i| format!("c{i}")).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        for k in 0..MESSAGES {
            client.write(Message::text(format!("{}-{k}", names[i])));
        }
        client.flush();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            let names = names.clone();
            std::thread::spawn(move || {
                let mut want: HashMap<String, usize> = HashMap::new();
                for (j, name) in names.iter().enumerate() {
                    for k in 0..MESSAGES {
                        *want.entry(format!("all:{name}-{k}")).or_default() += 1;
                        if j != i {
                            *want.entry(format!("others:{name}-{k}")).or_default() += 1;
                        } else {
                            *want.entry(format!("filter:{name}-{k}")).or_default() += 1;
                            *want.entry(format!("self:{name}-{k}")).or_default() += 1;
                        }
                    }
                }
                while !want.is_empty() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match client.try_recv(left) {
                        Ok(Message::Text(t)) => {
                            let t = t.as_str().to_owned();
                            if t == "joined" || t == "left" {
                                continue;
                            }
                            match want.get_mut(&t) {
                                Some(n) if *n > 1 => *n -= 1,
                                Some(_) => {
                                    want.remove(&t);
                                }
                                None => panic!("client {i}: unexpected or duplicate {t:?}"),
                            }
                        }
                        Ok(_) => {}
                        Err(RecvError::Timeout) => panic!(
                            "client {i}: {} messages missing (a handler deadlocked?)",
                            want.values().sum::<usize>()
                        ),
                        Err(RecvError::Closed(e)) => panic!("client {i}: closed: {e}"),
                    }
                }
                client
            })
        })
        .collect();
    let mut clients: Vec<Client> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    clients[0].send_text("quit");
    loop {
        match clients[0].recv() {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 4000);
                break;
            }
            Message::Text(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    clients[0].finish_close();
    server.wait_len(CLIENTS - 1);
    // `on_disconnect` broadcast to the others.
    while clients[1].recv_text() != "left" {}
}
