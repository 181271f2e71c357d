//! The sockets of parked connections, watched outside their runtime's reactor (Unix).
//!
//! A parked connection (see `dormant.rs`) still holds its runtime's registration of its
//! socket. That is the largest thing left of it: tokio's is 256 bytes at 128-byte
//! alignment, and glibc's aligned allocation leaves about 160 more around each that
//! nothing else fits in; async-io's is about 200 with its waker lists. A transport that
//! can give the registration up ([`Transport::leave_reactor`](crate::Transport)) hands
//! its socket's descriptor over instead, and this watch (one `mio::Poll` per instance,
//! and a thread blocked on it, both made at the first use) wakes the connection when its
//! peer sends something or goes away. Everything else that wakes a parked connection
//! comes through its hub slot, as before. The connection deregisters here when it is
//! back in a task, and its transport rejoins the runtime's reactor at its next poll.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

use crate::sync::lock;

/// The token of the poll's own waker, which ends the thread.
const STOP: Token = Token(usize::MAX);

/// Watches parked connections' sockets for input, for one instance.
#[derive(Default)]
pub(crate) struct IdleWatch {
    /// Started at the first watch; `None` if the poll or its thread could not be made
    /// (the connections then stay in their runtime's reactor).
    watcher: OnceLock<Option<Watcher>>,
}

/// A socket being watched: what its connection needs to stop the watch.
#[derive(Debug)]
pub(crate) struct Watched {
    fd: RawFd,
    key: usize,
}

struct Watcher {
    registry: Registry,
    /// The parked connections' wakers, by token.
    wakers: Arc<Mutex<Slab<Waker>>>,
    stop: Arc<AtomicBool>,
    /// Wakes the thread so that it sees `stop`.
    stopper: mio::Waker,
}

impl IdleWatch {
    /// Wakes `waker` at the first input (or end, or error) on `fd`, until
    /// [`IdleWatch::unwatch`]. `None`: the socket cannot be watched, and its connection
    /// must not wait for input as a parked one.
    pub(crate) fn watch(&self, fd: RawFd, waker: &Waker) -> Option<Watched> {
        let watcher = self
            .watcher
            .get_or_init(|| Watcher::start().ok())
            .as_ref()?;
        let key = lock(&watcher.wakers).insert(waker.clone());
        // Edge-triggered, and epoll reports input that came before the registration.
        let registered =
            watcher
                .registry
                .register(&mut SourceFd(&fd), Token(key), Interest::READABLE);
        if registered.is_err() {
            lock(&watcher.wakers).remove(key);
            return None;
        }
        Some(Watched { fd, key })
    }

    /// Stops watching: the connection is back in a task.
    pub(crate) fn unwatch(&self, watched: Watched) {
        if let Some(Some(watcher)) = self.watcher.get() {
            // Fails only if the socket is gone, which deregisters it anyway.
            let _ = watcher.registry.deregister(&mut SourceFd(&watched.fd));
            lock(&watcher.wakers).try_remove(watched.key);
        }
    }

    /// Sockets watched now.
    pub(crate) fn len(&self) -> usize {
        match self.watcher.get() {
            Some(Some(watcher)) => lock(&watcher.wakers).len(),
            _ => 0,
        }
    }
}

impl Watcher {
    fn start() -> io::Result<Watcher> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let stopper = mio::Waker::new(poll.registry(), STOP)?;
        let wakers = Arc::new(Mutex::new(Slab::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_wakers, thread_stop) = (wakers.clone(), stop.clone());
        std::thread::Builder::new()
            .name("melody-idle-watch".into())
            .spawn(move || run(poll, &thread_wakers, &thread_stop))?;
        Ok(Watcher {
            registry,
            wakers,
            stop,
            stopper,
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // If this fails the thread stays blocked; it holds no connection.
        let _ = self.stopper.wake();
    }
}

/// The thread: wakes the connection of each socket that has something to read.
fn run(mut poll: Poll, wakers: &Mutex<Slab<Waker>>, stop: &AtomicBool) {
    let mut events = Events::with_capacity(256);
    let mut ready = Vec::new();
    while !stop.load(Ordering::Acquire) {
        if let Err(err) = poll.poll(&mut events, None) {
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        {
            let wakers = lock(wakers);
            ready.extend(
                events
                    .iter()
                    .filter(|event| event.token() != STOP)
                    .filter_map(|event| wakers.get(event.token().0).cloned()),
            );
        }
        // Outside the lock: a woken connection unwatches itself.
        for waker in ready.drain(..) {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::sync::mpsc;
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    struct Signal(Mutex<mpsc::Sender<()>>);

    impl Wake for Signal {
        fn wake(self: Arc<Self>) {
            let _ = lock(&self.0).send(());
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn input_on_a_watched_socket_wakes_its_connection_and_unwatching_deregisters_it() {
        let watch = IdleWatch::default();
        let (mut client, server) = pair();
        let (tx, rx) = mpsc::channel();
        let waker = Waker::from(Arc::new(Signal(Mutex::new(tx))));
        let watched = watch.watch(server.as_raw_fd(), &waker).expect("watched");
        assert_eq!(watch.len(), 1);
        client.write_all(b"x").unwrap();
        // A bound on a failure, not a timing goal: the wakeup comes from the thread.
        rx.recv_timeout(Duration::from_secs(10))
            .expect("woken by input");
        watch.unwatch(watched);
        assert_eq!(watch.len(), 0);
        // Deregistered: epoll takes the descriptor again (it refuses one it holds), and
        // reports the byte still unread.
        let again = watch
            .watch(server.as_raw_fd(), &waker)
            .expect("watched again");
        rx.recv_timeout(Duration::from_secs(10))
            .expect("woken again");
        watch.unwatch(again);
    }

    #[test]
    fn input_that_came_before_the_watch_still_wakes() {
        let watch = IdleWatch::default();
        let (mut client, server) = pair();
        client.write_all(b"early").unwrap();
        let (tx, rx) = mpsc::channel();
        let waker = Waker::from(Arc::new(Signal(Mutex::new(tx))));
        // The bytes may still be on their way through loopback: wait until they are in.
        let mut peek = [0; 8];
        server
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(server.peek(&mut peek).unwrap(), 5);
        let _watched = watch.watch(server.as_raw_fd(), &waker).expect("watched");
        rx.recv_timeout(Duration::from_secs(10)).expect("woken");
    }
}
