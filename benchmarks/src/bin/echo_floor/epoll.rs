//! The floor with `epoll` (through `mio`): edge-triggered readiness, each socket read
//! until a read comes back short, each reply written at once.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpListener;

use mio::net::{TcpListener as MioListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::ws::{Next, Peer};

const LISTENER: Token = Token(usize::MAX);

struct Connection {
    stream: TcpStream,
    peer: Peer,
    /// Replies the socket did not take yet.
    unsent: Vec<u8>,
    closing: bool,
}

/// Serves until the process is stopped.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = MioListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut connections = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; 16 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == LISTENER {
                accept(&poll, &listener, &mut connections)?;
                continue;
            }
            let key = event.token().0;
            let Some(connection) = connections.get_mut(key) else {
                continue;
            };
            if !serve_one(connection, &mut buf) {
                let mut gone = connections.remove(key);
                let _ = poll.registry().deregister(&mut gone.stream);
            }
        }
    }
}

fn accept(
    poll: &Poll,
    listener: &MioListener,
    connections: &mut Slab<Connection>,
) -> io::Result<()> {
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
            // Out of descriptors, say: try again at the next connection's edge rather
            // than spin here.
            Err(_) => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let entry = connections.vacant_entry();
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(&mut stream, Token(entry.key()), interest)?;
        entry.insert(Connection {
            stream,
            peer: Peer::default(),
            unsent: Vec::new(),
            closing: false,
        });
    }
}

/// Reads and answers what one connection has; `false` once it is over.
fn serve_one(connection: &mut Connection, buf: &mut [u8]) -> bool {
    if !flush(connection) {
        return false;
    }
    while !connection.closing {
        let n = match connection.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        if connection.peer.feed(&buf[..n], &mut connection.unsent) == Next::Close {
            connection.closing = true;
        }
        if !flush(connection) {
            return false;
        }
        // A short read drained the socket: the next edge comes with new input.
        if n < buf.len() {
            break;
        }
    }
    !(connection.closing && connection.unsent.is_empty())
}

/// Writes what waits; `false` if the socket failed.
fn flush(connection: &mut Connection) -> bool {
    while !connection.unsent.is_empty() {
        match connection.stream.write(&connection.unsent) {
            Ok(n) => {
                connection.unsent.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}
