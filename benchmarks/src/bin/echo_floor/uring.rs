//! The floor with `io_uring`: one receive in flight per connection, one send at a time
//! (replies made meanwhile wait behind it), every submission of a round made by one
//! `io_uring_enter` that also waits for the next completions.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use slab::Slab;

use crate::ws::{Next, Peer};

const ACCEPT: u64 = u64::MAX;
const RECV: u64 = 0;
const SEND: u64 = 1;

struct Connection {
    socket: TcpStream,
    peer: Peer,
    /// Where the receive in flight writes: boxed, so it stays put while the slab grows.
    recv_buf: Box<[u8]>,
    /// The send in flight's bytes (its heap buffer stays put until it completes).
    sending: Vec<u8>,
    sent: usize,
    /// Replies made while a send is in flight.
    queued: Vec<u8>,
    receiving: bool,
    send_in_flight: bool,
    closing: bool,
}

impl Connection {
    fn recv(&mut self, key: usize) -> squeue::Entry {
        self.receiving = true;
        let fd = types::Fd(self.socket.as_raw_fd());
        let len = self.recv_buf.len() as u32;
        opcode::Recv::new(fd, self.recv_buf.as_mut_ptr(), len)
            .build()
            .user_data((key as u64) << 1 | RECV)
    }

    /// The send of what waits, if nothing is in flight and something waits.
    fn send(&mut self, key: usize) -> Option<squeue::Entry> {
        if self.send_in_flight {
            return None;
        }
        if self.sending.is_empty() {
            if self.queued.is_empty() {
                return None;
            }
            std::mem::swap(&mut self.sending, &mut self.queued);
            self.sent = 0;
        }
        self.send_in_flight = true;
        let fd = types::Fd(self.socket.as_raw_fd());
        let rest = &self.sending[self.sent..];
        Some(
            opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
                .build()
                .user_data((key as u64) << 1 | SEND),
        )
    }

    fn in_flight(&self) -> bool {
        self.receiving || self.send_in_flight
    }
}

/// Serves until the process is stopped.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    // Completions run when the loop asks for them, in its own `io_uring_enter`
    // (kernel 6.1 or later); the plain ring otherwise.
    let mut ring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(4096)
        .or_else(|_| IoUring::new(4096))?;
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .build()
        .user_data(ACCEPT);
    let mut pending = vec![accept.clone()];
    let mut connections: Slab<Connection> = Slab::new();
    let mut completed = Vec::new();
    loop {
        for entry in pending.drain(..) {
            // SAFETY: every buffer an entry points to lives in a connection that is
            // kept until its operations complete.
            while unsafe { ring.submission().push(&entry) }.is_err() {
                ring.submit()?;
            }
        }
        ring.submit_and_wait(1)?;
        completed.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for (user_data, result, flags) in completed.drain(..) {
            if user_data == ACCEPT {
                if result >= 0 {
                    // SAFETY: a completed accept hands over a new descriptor.
                    let socket = unsafe { TcpStream::from_raw_fd(result) };
                    let _ = socket.set_nodelay(true);
                    let entry = connections.vacant_entry();
                    let key = entry.key();
                    let connection = entry.insert(Connection {
                        socket,
                        peer: Peer::default(),
                        recv_buf: vec![0; 16 * 1024].into_boxed_slice(),
                        sending: Vec::new(),
                        sent: 0,
                        queued: Vec::new(),
                        receiving: false,
                        send_in_flight: false,
                        closing: false,
                    });
                    pending.push(connection.recv(key));
                }
                if !cqueue::more(flags) {
                    pending.push(accept.clone());
                }
                continue;
            }
            let key = (user_data >> 1) as usize;
            let Some(connection) = connections.get_mut(key) else {
                continue;
            };
            if user_data & 1 == RECV {
                connection.receiving = false;
                if result <= 0 {
                    connection.closing = true;
                } else {
                    let input = &connection.recv_buf[..result as usize];
                    if connection.peer.feed(input, &mut connection.queued) == Next::Close {
                        connection.closing = true;
                    }
                    if !connection.closing {
                        pending.push(connection.recv(key));
                    }
                }
            } else if result < 0 {
                connection.send_in_flight = false;
                connection.closing = true;
                connection.sending.clear();
                connection.queued.clear();
            } else {
                connection.send_in_flight = false;
                connection.sent += result as usize;
                if connection.sent == connection.sending.len() {
                    connection.sending.clear();
                }
            }
            if let Some(send) = connection.send(key) {
                pending.push(send);
            }
            if connection.closing && !connection.in_flight() {
                connections.remove(key);
            }
        }
    }
}
