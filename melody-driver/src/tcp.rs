//! A TCP connection that leaves its runtime's reactor while its connection is parked
//! ([`Transport::leave_reactor`]), written once for every runtime: a runtime supplies
//! its registered stream through [`RegisteredTcp`].
//!
//! Back from a park, the socket is not registered again at once: reads and writes go
//! to it directly until one would block. A broadcast that wakes many parked
//! connections then has each write its message first; the registrations (a system call
//! and an allocation each) follow, in a later turn of each task, once the others have
//! written theirs. A runtime that knows nothing of a stream it has just registered
//! (tokio reports a socket's state only at its reactor's next turn) would also answer
//! `Pending` to the very input that woke the connection.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::task::{Context, Poll};

use crate::runtime::Transport;

/// A runtime's TCP stream registered with its reactor, as [`TcpTransport`] uses it:
/// a [`Transport`] (whose `poll_close` shuts the write side down) that can give its
/// socket back and take one again.
pub trait RegisteredTcp: Transport + Sized {
    /// Registers `socket` (connected, non-blocking) with the reactor.
    fn register(socket: TcpStream) -> io::Result<Self>;
    /// Deregisters, giving the socket back, still non-blocking.
    fn deregister(self) -> io::Result<TcpStream>;
}

/// A TCP connection as the driver's transport, on any runtime's reactor (`S`, its
/// registered stream), that leaves the reactor while its connection is parked, on Unix
/// (see [`Melody::parked_outside_reactor`](crate::Melody::parked_outside_reactor)).
/// What the tokio, smol and async-std adapters' `serve` use.
#[derive(Debug)]
pub struct TcpTransport<S>(Socket<S>);

#[derive(Debug)]
enum Socket<S> {
    Registered(S),
    /// Out of the reactor: since a park, and until a read or write would block.
    /// `rejoin` is set once a read would have blocked: the task was woken to come back
    /// for it, and registers then.
    Away {
        socket: TcpStream,
        rejoin: bool,
    },
    /// Leaving or rejoining the reactor failed: the socket is closed.
    Lost,
}

impl<S: RegisteredTcp> TcpTransport<S> {
    /// Wraps a stream registered with the runtime's reactor.
    pub fn new(stream: S) -> Self {
        TcpTransport(Socket::Registered(stream))
    }

    /// The stream, registered again if it was away.
    fn registered(&mut self) -> io::Result<&mut S> {
        if matches!(self.0, Socket::Away { .. }) {
            if let Socket::Away { socket, .. } = std::mem::replace(&mut self.0, Socket::Lost) {
                self.0 = Socket::Registered(S::register(socket)?);
            }
        }
        match &mut self.0 {
            Socket::Registered(stream) => Ok(stream),
            Socket::Away { .. } | Socket::Lost => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the socket was lost leaving or rejoining the reactor",
            )),
        }
    }
}

/// Tries `io` on a socket out of the reactor: `None` if it would block.
fn try_away(
    socket: &TcpStream,
    mut io: impl FnMut(&TcpStream) -> io::Result<usize>,
) -> Option<io::Result<usize>> {
    loop {
        match io(socket) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return None,
            done => return Some(done),
        }
    }
}

/// Polls `$call` on the registered stream, or fails with why it is not there.
macro_rules! on_stream {
    ($self:ident, $stream:ident => $call:expr) => {
        // Registered is the usual state: straight to the stream, without the call
        // that rejoins the reactor.
        match &mut $self.0 {
            Socket::Registered($stream) => $call,
            _ => match $self.registered() {
                Ok($stream) => $call,
                Err(err) => Poll::Ready(Err(err)),
            },
        }
    };
}

impl<S: RegisteredTcp> Transport for TcpTransport<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if let Socket::Away { socket, rejoin } = &mut self.0 {
            if let Some(done) = try_away(socket, |mut s| s.read(buf)) {
                return Poll::Ready(done);
            }
            if !*rejoin {
                // Nothing to read: register in a later turn of this task, after the
                // other woken tasks had theirs.
                *rejoin = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        on_stream!(self, stream => stream.poll_read(cx, buf))
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Socket::Away { socket, .. } = &self.0 {
            if let Some(done) = try_away(socket, |mut s| s.write_vectored(bufs)) {
                return Poll::Ready(done);
            }
        }
        on_stream!(self, stream => stream.poll_write_vectored(cx, bufs))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Socket::Away { socket, .. } = &self.0 {
            if let Some(done) = try_away(socket, |mut s| s.write(buf)) {
                return Poll::Ready(done);
            }
        }
        on_stream!(self, stream => stream.poll_write(cx, buf))
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Socket::Away { socket, .. } = &self.0 {
            // Nothing is buffered on our side of a plain socket.
            return Poll::Ready(socket.shutdown(Shutdown::Write));
        }
        on_stream!(self, stream => stream.poll_close(cx))
    }

    #[cfg(unix)]
    fn leave_reactor(&mut self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match std::mem::replace(&mut self.0, Socket::Lost) {
            Socket::Registered(stream) => {
                // On failure the socket is closed: the parked connection ends at its
                // next wakeup (a ping at the latest), when the read finds it lost.
                let socket = stream.deregister().ok()?;
                let fd = socket.as_raw_fd();
                self.0 = Socket::Away {
                    socket,
                    rejoin: false,
                };
                Some(fd)
            }
            // Woken and parked again before it registered: still out.
            Socket::Away { socket, .. } => {
                let fd = socket.as_raw_fd();
                self.0 = Socket::Away {
                    socket,
                    rejoin: false,
                };
                Some(fd)
            }
            Socket::Lost => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use super::*;

    /// A "reactor" that counts registrations and never has anything ready.
    #[derive(Debug)]
    struct Counted(TcpStream);

    static REGISTRATIONS: AtomicUsize = AtomicUsize::new(0);

    impl RegisteredTcp for Counted {
        fn register(socket: TcpStream) -> io::Result<Self> {
            REGISTRATIONS.fetch_add(1, Ordering::SeqCst);
            Ok(Counted(socket))
        }
        fn deregister(self) -> io::Result<TcpStream> {
            Ok(self.0)
        }
    }

    impl Transport for Counted {
        fn poll_read(&mut self, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_write_vectored(
            &mut self,
            _: &mut Context<'_>,
            _: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_close(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[cfg(unix)]
    #[test]
    fn out_of_the_reactor_io_goes_to_the_socket_until_a_read_would_block_twice() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, _) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut transport = TcpTransport::new(Counted(socket));
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let before = REGISTRATIONS.load(Ordering::SeqCst);
        assert!(transport.leave_reactor().is_some());
        // Out: a write goes straight out, input is read straight in.
        assert!(matches!(
            transport.poll_write(&mut cx, b"ping"),
            Poll::Ready(Ok(4))
        ));
        let mut got = [0; 4];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        peer.write_all(b"pong").unwrap();
        if let Socket::Away { socket, .. } = &transport.0 {
            // Until the bytes have crossed loopback (a blocking peek), then as before.
            socket.set_nonblocking(false).unwrap();
            socket.peek(&mut [0; 4]).unwrap();
            socket.set_nonblocking(true).unwrap();
        }
        let mut buf = [0; 16];
        let read = match transport.poll_read(&mut cx, &mut buf) {
            Poll::Ready(done) => done.unwrap(),
            Poll::Pending => panic!("input waiting, read from the socket"),
        };
        assert_eq!(&buf[..read], b"pong");
        assert_eq!(
            REGISTRATIONS.load(Ordering::SeqCst),
            before,
            "no registration yet"
        );
        // Nothing more: the first `Pending` wakes the task to come back, the second
        // registers and waits through the reactor.
        assert!(transport.poll_read(&mut cx, &mut buf).is_pending());
        assert!(matches!(transport.0, Socket::Away { rejoin: true, .. }));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken to come back");
        assert!(transport.poll_read(&mut cx, &mut buf).is_pending());
        assert!(matches!(transport.0, Socket::Registered(_)));
        assert_eq!(REGISTRATIONS.load(Ordering::SeqCst), before + 1);
    }
}
