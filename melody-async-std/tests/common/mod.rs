//! The smoke tests' handlers and client side: the handlers each case installs, and
//! blocking tungstenite clients that share no code with the adapter. Every read gives
//! up after a few seconds. melody-smol's smoke tests have the same cases; each crate
//! keeps its own copy so that it builds and tests on its own (`cargo package`).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use melody_driver::{Melody, Runtime};
use tungstenite::{Message, WebSocket};

/// Every blocking read and write gives up after this long.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Echo: text back as text, binary back as binary, to the sender.
pub fn echo<R: Runtime>(melody: &Melody<R>) {
    melody.on_message(|session, text| {
        let _ = session.write(text);
    });
    melody.on_message_binary(|session, data| {
        let _ = session.write_binary(data);
    });
}

/// A room: every text message goes to every session.
pub fn room<R: Runtime>(melody: &Melody<R>) {
    let room = melody.clone();
    melody.on_message(move |_session, text| {
        let _ = room.broadcast(text);
    });
}

/// A client connected to `path` on `addr`.
pub fn connect(addr: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let (ws, _response) =
        tungstenite::client::client(format!("ws://{addr}{path}"), stream).expect("handshake");
    ws
}

/// The next data message (pings skipped: tungstenite answers them).
pub fn recv(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read().expect("a message within the timeout") {
            Message::Ping(_) | Message::Pong(_) => {}
            other => return other,
        }
    }
}

/// Polls `done` until it holds; panics naming `what` after a few seconds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Text and binary messages come back to their sender, in order, at every frame-length
/// encoding up to the default `max_message_size` (64 KiB).
pub fn echo_case(addr: SocketAddr) {
    let mut ws = connect(addr, "/echo");
    for size in [0, 1, 125, 126, 65_535, 65_536] {
        let text = "x".repeat(size);
        ws.send(Message::text(text.clone())).unwrap();
        assert!(recv(&mut ws) == Message::text(text), "text of {size} bytes");
        let data = vec![7u8; size];
        ws.send(Message::binary(data.clone())).unwrap();
        assert_eq!(
            recv(&mut ws),
            Message::binary(data),
            "binary of {size} bytes"
        );
    }
    ws.close(None).unwrap();
}

/// A message one of three clients sends reaches all three, once `len` says they are
/// all connected.
pub fn broadcast_case(addr: SocketAddr, len: impl Fn() -> usize) {
    let mut clients: Vec<_> = (0..3).map(|i| connect(addr, &format!("/ws?{i}"))).collect();
    wait_until("three sessions", || len() == 3);
    clients[1].send(Message::text("hello, all")).unwrap();
    for ws in &mut clients {
        assert_eq!(recv(ws), Message::text("hello, all"));
    }
}
