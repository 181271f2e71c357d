//! A broadcast chat server: melody-core's [`Hub`] inside a hand-written `mio` event loop,
//! with no async runtime.
//!
//! ```text
//! cargo run -p melody-core --example custom_loop [-- --addr 127.0.0.1:5001]
//! ```
//!
//! Open the printed URL in two tabs: every text message goes to everyone (`Target::All`).
//!
//! One port serves both the page and the WebSocket, so the page can simply open
//! `ws://` + `location.host` and pass the hub's same-origin check: the hub answers a
//! plain GET of `/` with the page (`Config::http_page`) and turns an upgrade into a session.
//! Each accepted connection gets a hub session at once, so the hub's handshake timeout
//! also bounds a peer that never sends a request.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use melody_core::{
    Batch, Config, ConnectionInfo, Event, HttpPage, Hub, Prepared, SessionId, Target, Transmit,
};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};

const LISTENER: Token = Token(0);

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8"><title>melody chat</title>
<pre id="chat"></pre>
<input id="text" placeholder="type, then Enter" autofocus>
<script>
const ws = new WebSocket("ws://" + location.host + "/ws");
const chat = document.getElementById("chat"), text = document.getElementById("text");
ws.onmessage = (e) => { chat.textContent += e.data + "\n"; };
ws.onclose = () => { chat.textContent += "(disconnected)\n"; };
text.onkeydown = (e) => {
  if (e.key === "Enter" && text.value) { ws.send(text.value); text.value = ""; }
};
</script>
"#;

struct Conn {
    socket: TcpStream,
    id: SessionId,
    /// Buffers from `poll_transmit` not yet written, in order; `handle_transmitted`
    /// takes the written bytes off it.
    batch: Batch,
    /// Registered for WRITABLE because the socket blocked.
    write_interest: bool,
    /// The `Disconnect` event was taken: the session is over.
    disconnected: bool,
}

/// Session slots are unique among live sessions and a `Conn` lives exactly as long as
/// its session, so the slot doubles as the mio token (0 is the listener).
fn token(id: SessionId) -> Token {
    Token(id.index() as usize + 1)
}

fn main() -> io::Result<()> {
    let addr = parse_addr()?;
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let config = Config::default().http_page(Some(HttpPage::at("/", PAGE)));
    let mut hub: Hub<()> = Hub::new(config, Instant::now())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    println!("melody chat on http://{}/", listener.local_addr()?);

    loop {
        let timeout = hub
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = Instant::now();
        for event in events.iter() {
            if event.token() == LISTENER {
                accept(&listener, poll.registry(), &mut hub, &mut conns, now);
                continue;
            }
            // A token can outlive its connection within one batch of events; the slot
            // may even be reused already, which only costs a read that would block.
            let Some(conn) = conns.get_mut(&event.token()) else {
                continue;
            };
            if event.is_readable() && read(&mut hub, conn, now, &mut buf) {
                if let Some(conn) = conns.remove(&event.token()) {
                    close(&mut hub, conn, poll.registry());
                }
                continue;
            }
            if event.is_writable() {
                flush(&mut hub, conn, poll.registry(), now);
            }
        }
        hub.handle_timeout(now);

        while let Some(id) = hub.poll_ready() {
            while let Some(event) = hub.poll_event(id) {
                match event {
                    Event::Connect => println!("{id} joined ({} online)", hub.len()),
                    Event::Text(text) => {
                        let delivery = hub.broadcast(now, &Prepared::text(&text), Target::All);
                        if delivery.dropped > 0 {
                            eprintln!("{} slow readers missed a message", delivery.dropped);
                        }
                    }
                    Event::Error(e) => eprintln!("{id}: {e}"),
                    Event::Disconnect { .. } => {
                        if let Some(conn) = conns.get_mut(&token(id)) {
                            conn.disconnected = true;
                        }
                    }
                    _ => {}
                }
            }
            let Some(conn) = conns.get_mut(&token(id)) else {
                continue;
            };
            flush(&mut hub, conn, poll.registry(), now);
            // `Disconnect` is the last event: the session is over and, whatever is still
            // held, nothing more will be written, so the socket goes now.
            if conn.disconnected {
                if let Some(conn) = conns.remove(&token(id)) {
                    close(&mut hub, conn, poll.registry());
                    println!("{id} closed ({} online)", hub.len());
                }
            }
        }
    }
}

fn accept(
    listener: &TcpListener,
    registry: &Registry,
    hub: &mut Hub<()>,
    conns: &mut HashMap<Token, Conn>,
    now: Instant,
) {
    loop {
        let (mut socket, remote) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // E.g. out of file descriptors: the peer stays in the backlog for now.
            Err(e) => {
                eprintln!("accept: {e}");
                return;
            }
        };
        let info = ConnectionInfo {
            remote_addr: Some(remote),
            local_addr: socket.local_addr().ok(),
        };
        let id = hub.open(now, info, ());
        if let Err(e) = registry.register(&mut socket, token(id), Interest::READABLE) {
            eprintln!("register: {e}");
            hub.release(id);
            continue;
        }
        let conn = Conn {
            socket,
            id,
            batch: Batch::new(),
            write_interest: false,
            disconnected: false,
        };
        conns.insert(token(id), conn);
    }
}

/// Reads until the socket would block (mio is edge-triggered). Returns `true` when the
/// connection is to be closed at once: the hub no longer knows it.
fn read(hub: &mut Hub<()>, conn: &mut Conn, now: Instant, buf: &mut [u8]) -> bool {
    loop {
        let result = match conn.socket.read(buf) {
            Ok(0) => hub.handle_eof(conn.id, now),
            Ok(n) => hub.handle_input(conn.id, now, &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => hub.handle_io_error(conn.id, now, &e),
        };
        if result.is_err() {
            return true;
        }
        if hub.state(conn.id) == Some(melody_core::SessionState::Finished) {
            // Over (end of file, an error): the ready queue delivers its `Disconnect`.
            return false;
        }
    }
}

/// Writes what the session has to send until it is all written or the socket blocks;
/// only a blocked socket is registered for WRITABLE.
fn flush(hub: &mut Hub<()>, conn: &mut Conn, registry: &Registry, now: Instant) {
    let blocked = loop {
        match hub.poll_transmit(conn.id, now, &mut conn.batch) {
            Transmit::Write(_) => {}
            // Finished: the main loop closes the socket once it takes `Disconnect`.
            Transmit::Idle | Transmit::Finished => break false,
        }
        let mut slices = [IoSlice::new(&[]); 64];
        let count = conn.batch.io_slices(&mut slices);
        match conn.socket.write_vectored(&slices[..count]) {
            Ok(n) if n > 0 => {
                let _ = hub.handle_transmitted(conn.id, now, n, &mut conn.batch);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => {
                let e = result
                    .err()
                    .unwrap_or_else(|| io::ErrorKind::WriteZero.into());
                // The session ends; its `Disconnect` comes back through the ready queue.
                // The next `poll_transmit` answers `Finished` and empties the batch.
                let _ = hub.handle_io_error(conn.id, now, &e);
                break false;
            }
        }
    };
    if blocked != conn.write_interest {
        conn.write_interest = blocked;
        let interest = if blocked {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if let Err(e) = registry.reregister(&mut conn.socket, token(conn.id), interest) {
            let _ = hub.handle_io_error(conn.id, now, &e);
        }
    }
}

/// Forgets a connection: the socket closes on drop, the hub slot is freed.
fn close(hub: &mut Hub<()>, mut conn: Conn, registry: &Registry) {
    let _ = registry.deregister(&mut conn.socket);
    hub.release(conn.id);
}

fn parse_addr() -> io::Result<SocketAddr> {
    let usage = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: custom_loop [--addr HOST:PORT]",
        )
    };
    let mut args = std::env::args().skip(1);
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 5001));
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value.parse().map_err(|_| usage())?,
            _ => return Err(usage()),
        }
    }
    Ok(addr)
}
