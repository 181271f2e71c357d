//! The melody API over real loopback sockets: each of olahol/melody's functions, in
//! its Rust form, exercised once with an assertion on what a real client sees. The
//! edge cases of each live in the conformance suite; this file checks the wiring.

mod common;

use common::{recv, recv_close, recv_until, wait_until, Log, Server};
use melody_tokio::{CloseCode, Config, Error, SessionError};
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// on_connect, on_message, on_message_binary, on_sent, on_sent_binary, on_pong,
/// on_close and on_disconnect, in the order things happen to one session.
#[test]
fn handlers_see_one_session_in_order() {
    let server = Server::start(Config::default());
    let m = &server.melody;
    let log = Log::default();

    let l = log.clone();
    m.on_connect(move |_| l.push("connect"));
    let l = log.clone();
    m.on_message(move |s, text| {
        l.push(format!("message {text}"));
        let _ = s.write(&format!("echo {text}"));
    });
    let l = log.clone();
    m.on_message_binary(move |s, data| {
        l.push(format!("binary {data:?}"));
        let _ = s.write_binary(&[data, b"!"].concat());
    });
    let l = log.clone();
    m.on_sent(move |_, text| l.push(format!("sent {text}")));
    let l = log.clone();
    m.on_sent_binary(move |_, data| l.push(format!("sent binary {data:?}")));
    let l = log.clone();
    m.on_pong(move |_| l.push("pong"));
    let l = log.clone();
    m.on_close(move |_, code, reason| l.push(format!("close {code} {reason}")));
    let l = log.clone();
    m.on_disconnect(move |_| l.push("disconnect"));

    let mut client = server.connect("/");
    client.send(Message::text("hi")).unwrap();
    assert_eq!(recv(&mut client), "t:echo hi");
    client.send(Message::binary(vec![1, 2])).unwrap();
    assert_eq!(recv(&mut client), "b:\u{1}\u{2}!");
    // An unsolicited pong is legal (a heartbeat) and reaches on_pong.
    client.send(Message::Pong(Vec::new().into())).unwrap();
    log.wait_for("pong");
    client
        .close(Some(CloseFrame {
            code: CloseCode::from(4000),
            reason: "bye".into(),
        }))
        .unwrap();
    // The server echoes the close; reading on completes the handshake.
    while client.read().is_ok() {}
    log.wait_for("disconnect");

    assert_eq!(
        log.entries(),
        [
            "connect",
            "message hi",
            "sent echo hi",
            "binary [1, 2]",
            "sent binary [1, 2, 33]",
            "pong",
            "close 4000 bye",
            "disconnect",
        ]
    );
    wait_until("no sessions", || m.is_empty());
}

/// on_error gets the typed reason, and the client the matching close code.
#[test]
fn on_error_reports_a_too_big_message() {
    let server = Server::start(Config::default().max_message_size(16));
    let errors = Log::default();
    let e = errors.clone();
    server
        .melody
        .on_error(move |_, err| e.push(format!("{err:?}")));

    let mut client = server.connect("/");
    client.send(Message::text("x".repeat(32))).unwrap();
    let (code, _reason) = recv_close(&mut client);
    assert_eq!(code, 1009, "message too big");
    let expected = Error::Session(SessionError::MessageTooBig { size: 32, max: 16 });
    errors.wait_for(&format!("{expected:?}"));
}

/// Connects clients a, b and c; each session gets its name under the key "name".
fn three_named_clients(server: &Server) -> Vec<(common::Client, melody_tokio::Session)> {
    server.melody.on_connect(|s| {
        let name = s.request().uri().query().unwrap_or_default().to_owned();
        s.set("name", name);
    });
    ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let client = server.connect(&format!("/?{name}"));
            (client, server.session_with_query(name))
        })
        .collect()
}

/// Every broadcast form and its binary twin reaches exactly its recipients, in order;
/// then `close` ends every session with 1001.
#[test]
fn broadcasts_reach_exactly_their_recipients() {
    let server = Server::start(Config::default());
    let m = &server.melody;
    let mut clients = three_named_clients(&server);
    let (a, b, c) = (
        clients[0].1.clone(),
        clients[1].1.clone(),
        clients[2].1.clone(),
    );
    assert_eq!(m.len(), 3);
    assert_eq!(m.sessions().len(), 3);
    assert_eq!(a.get::<String>("name").as_deref(), Some("a"));

    assert_eq!(m.broadcast("all").queued, 3);
    assert_eq!(m.broadcast_binary(b"all").queued, 3);
    assert_eq!(m.broadcast_others("others", &a).queued, 2);
    assert_eq!(m.broadcast_binary_others(b"others", &a).queued, 2);
    assert_eq!(
        m.broadcast_multiple("multiple", &[a.clone(), b.clone()])
            .queued,
        2
    );
    assert_eq!(
        m.broadcast_binary_multiple(b"multiple", &[b.clone(), c.clone()])
            .queued,
        2
    );
    let is_c = |s: &melody_tokio::SessionRef<'_>| s.get::<String>("name").unwrap() == "c";
    assert_eq!(m.broadcast_filter("filter", is_c).queued, 1);
    assert_eq!(m.broadcast_binary_filter(b"filter", |s| s.is(&a)).queued, 1);
    assert_eq!(m.broadcast("end").queued, 3);

    let expected = [
        // a: left out of the "others" pair.
        vec!["t:all", "b:all", "t:multiple", "b:filter", "t:end"],
        // b: everything but the filters.
        vec![
            "t:all",
            "b:all",
            "t:others",
            "b:others",
            "t:multiple",
            "b:multiple",
            "t:end",
        ],
        // c: not in the first list; the text filter picked it.
        vec![
            "t:all",
            "b:all",
            "t:others",
            "b:others",
            "b:multiple",
            "t:filter",
            "t:end",
        ],
    ];
    for ((client, _), want) in clients.iter_mut().zip(expected) {
        assert_eq!(recv_until(client, "t:end"), want);
    }

    assert!(!m.is_closed());
    assert_eq!(m.close(), 3);
    assert!(m.is_closed());
    for (client, _) in &mut clients {
        assert_eq!(recv_close(client).0, u16::from(CloseCode::Away));
    }
    wait_until("every session over", || m.is_empty());
}

/// Session: write, write_binary, keys, addresses, the request, close and close_with.
#[test]
fn session_handle_methods() {
    let server = Server::start(Config::default());
    let mut client = server.connect("/room/x?first");
    let s = server.session_with_query("first");

    assert_eq!(s.request().uri().path(), "/room/x");
    // The handshake's own fields were consumed; the rest of the request stays.
    assert!(s.request().headers().contains_key("host"));
    assert!(!s.request().headers().contains_key("sec-websocket-key"));
    assert_eq!(
        s.remote_addr(),
        Some(client.get_ref().local_addr().unwrap())
    );
    assert_eq!(s.local_addr(), Some(server.addr));

    s.set("count", 5u32);
    assert_eq!(s.get::<u32>("count"), Some(5));
    assert_eq!(s.get::<String>("count"), None, "typed: a u32 is no String");
    assert!(s.unset("count"));
    assert!(!s.unset("count"));
    assert_eq!(s.get::<u32>("count"), None);

    // Typed state: the type is the key, so it cannot be asked for as another type.
    #[derive(Clone, Debug, PartialEq)]
    struct Room(&'static str);
    assert_eq!(s.insert_state(Room("lobby")), None);
    assert_eq!(s.insert_state(Room("kitchen")), Some(Room("lobby")));
    assert_eq!(s.state::<Room>(), Some(Room("kitchen")));
    assert_eq!(
        s.with_state(|room: Option<&Room>| room.map(|r| r.0.len())),
        Some(7)
    );
    assert_eq!(s.state::<u32>(), None);
    let in_kitchen = server.melody.broadcast_filter("dinner", |peer| {
        peer.state::<Room>() == Some(&Room("kitchen"))
    });
    assert_eq!(in_kitchen.queued, 1);
    assert_eq!(recv(&mut client), "t:dinner");
    assert_eq!(s.remove_state::<Room>(), Some(Room("kitchen")));
    assert_eq!(s.state::<Room>(), None);

    s.set("name", String::from("ada"));
    assert_eq!(s.must_get::<String>("name"), "ada");
    let wrong_type =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.must_get::<u32>("name")));
    let message = wrong_type.expect_err("must_get panics on a type mismatch");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.contains("\"name\"") && message.contains("u32"),
        "{message}"
    );

    assert_eq!(s.write("text").queued, 1);
    assert_eq!(s.write_binary(b"bytes").queued, 1);
    assert_eq!(recv(&mut client), "t:text");
    assert_eq!(recv(&mut client), "b:bytes");

    assert!(!s.is_closed());
    assert!(s.close());
    assert!(s.is_closed());
    assert!(!s.close(), "already closing");
    assert_eq!(s.write("late").closed, 1, "a closing session takes nothing");
    assert_eq!(recv_close(&mut client), (1000, String::new()));

    let mut client = server.connect("/?second");
    let s = server.session_with_query("second");
    assert!(s.close_with(4001, "custom"));
    assert_eq!(recv_close(&mut client), (4001, "custom".to_owned()));
    wait_until("both sessions over", || server.melody.is_empty());
}

/// A handle outlives its session: once the session is over and released, `stats`
/// gives its last counters, not zeros.
#[test]
fn stats_outlive_the_session() {
    let server = Server::start(Config::default());
    let mut client = server.connect("/?counted");
    let s = server.session_with_query("counted");
    client.send(Message::text("one")).unwrap();
    client.send(Message::text("two")).unwrap();
    wait_until("two messages received", || s.stats().received == 2);
    drop(client);
    // Shutdown returns once every connection task is over, its session released.
    let _ = server
        .rt
        .block_on(server.melody.shutdown(std::time::Duration::from_secs(5)));
    assert!(s.is_closed());
    assert_eq!(s.stats().received, 2, "the last counters, after release");
}

/// subscribe, unsubscribe, topics, subscriber_count, publish and publish_others (and
/// the binary forms).
#[test]
fn topics_publish_to_subscribers() {
    let server = Server::start(Config::default());
    let m = &server.melody;
    let mut clients = three_named_clients(&server);
    let (a, b, c) = (
        clients[0].1.clone(),
        clients[1].1.clone(),
        clients[2].1.clone(),
    );

    assert!(a.subscribe("news"));
    assert!(!a.subscribe("news"), "already subscribed");
    assert!(b.subscribe("news"));
    assert!(c.subscribe("sports"));
    assert_eq!(a.topics(), ["news"]);
    assert_eq!(m.subscriber_count("news"), 2);

    assert_eq!(m.publish("news", "n1").queued, 2);
    assert_eq!(m.publish_others("news", "n2", &a).queued, 1);
    assert_eq!(m.publish_binary("sports", b"s1").queued, 1);
    assert_eq!(m.publish_binary_others("news", b"n3", &b).queued, 1);
    assert!(b.unsubscribe("news"));
    assert!(!b.unsubscribe("news"), "no longer subscribed");
    assert_eq!(m.publish("news", "n4").queued, 1);
    assert_eq!(m.publish("nobody", "n5").queued, 0);
    assert_eq!(m.broadcast("end").queued, 3);

    let expected = [
        vec!["t:n1", "b:n3", "t:n4", "t:end"],
        vec!["t:n1", "t:n2", "t:end"],
        vec!["b:s1", "t:end"],
    ];
    for ((client, _), want) in clients.iter_mut().zip(expected) {
        assert_eq!(recv_until(client, "t:end"), want);
    }
}

/// `close_with` closes every session with its code, and stops `serve`.
#[test]
fn melody_close_with_stops_serving() {
    let server = Server::start(Config::default());
    let m = &server.melody;
    let mut one = server.connect("/");
    let mut two = server.connect("/");
    wait_until("two sessions", || m.len() == 2);

    assert_eq!(m.close_with(4002, "maintenance"), 2);
    assert!(m.is_closed());
    for client in [&mut one, &mut two] {
        assert_eq!(recv_close(client), (4002, "maintenance".to_owned()));
    }
    wait_until("every session over", || m.is_empty());
    wait_until("serve to return", || server.serving.is_finished());
    let served = server.rt.block_on(server.serving).expect("serve task");
    assert!(served.is_ok(), "serve returns Ok after close: {served:?}");
    assert!(
        common::try_connect(server.addr, "/").is_err(),
        "nobody serves the port after close"
    );
}
