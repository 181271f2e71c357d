//! An instance's lifecycle: whether it was closed, how many connection tasks still run,
//! and the tasks waiting for either; with the two small futures that wait on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::runtime::BoxFuture;
use crate::sync::lock;

/// Wakers waiting for the instance to close, or for its last connection to end.
#[derive(Default)]
pub(crate) struct Waiters {
    list: Mutex<Vec<Waker>>,
}

impl Waiters {
    pub(crate) fn register(&self, waker: &Waker) {
        // Compare a clone with the stored clones, not `waker` itself: a runtime may
        // poll with a borrowed waker whose vtable differs from its clones' (tokio's
        // `block_on` does), and `will_wake` never matches it. The list then grew by one
        // waker per poll (per accepted connection, for the accept loop) until the
        // instance next had no connection at all.
        let waker = waker.clone();
        let mut list = lock(&self.list);
        if !list.iter().any(|w| w.will_wake(&waker)) {
            list.push(waker);
        }
    }

    pub(crate) fn wake_all(&self) {
        let list = std::mem::take(&mut *lock(&self.list));
        for w in list {
            w.wake();
        }
    }
}

/// Closed or not, and the connection tasks still running.
#[derive(Default)]
pub(crate) struct Lifecycle {
    /// Set by `close`/`shutdown`: no new connection is served.
    closed: AtomicBool,
    /// Connection tasks still running.
    connections: AtomicUsize,
    /// Woken when `closed` is set, and when the last connection ends.
    pub(crate) waiters: Waiters,
}

impl Lifecycle {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the instance closed and wakes whoever waits for it.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waiters.wake_all();
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    pub(crate) fn connection_started(&self) {
        self.connections.fetch_add(1, Ordering::AcqRel);
    }

    /// A connection task ended.
    pub(crate) fn connection_done(&self) {
        if self.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waiters.wake_all();
        }
    }
}

/// Resolves once `close` or `shutdown` has been called on the instance.
pub struct Closed {
    pub(crate) lifecycle: Arc<Lifecycle>,
}

impl Future for Closed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.lifecycle.waiters.register(cx.waker());
        if self.lifecycle.is_closed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Resolves when no connection task is left, or when `deadline` fires: `true` if idle.
pub(crate) struct IdleOrDeadline {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) deadline: BoxFuture,
}

impl Future for IdleOrDeadline {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        self.lifecycle.waiters.register(cx.waker());
        if self.lifecycle.connections() == 0 {
            return Poll::Ready(true);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.lifecycle.connections() == 0),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_task_polled_many_times_is_listed_once_and_woken_once() {
        let waiters = Waiters::default();
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        for _ in 0..1000 {
            waiters.register(&waker);
            waiters.register(&waker.clone());
        }
        assert_eq!(lock(&waiters.list).len(), 1);
        waiters.wake_all();
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1);
        assert!(lock(&waiters.list).is_empty());
    }
}
