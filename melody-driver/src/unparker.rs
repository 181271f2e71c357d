//! The task that spawns the connection tasks of woken parked connections (see
//! `dormant.rs`): wakeups come from any thread (a reactor, a broadcast, a timer), and
//! only from a task of its own may a runtime be relied on to spawn.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use crate::runtime::{BoxFuture, Runtime};
use crate::sync::{lock, WakerSlot};

/// Spawns the tasks of woken parked connections, one instance's.
#[derive(Default)]
pub(crate) struct Unparker {
    queue: Mutex<Vec<BoxFuture>>,
    waker: Mutex<WakerSlot>,
    /// An unparker task is running (or about to).
    running: AtomicBool,
    /// Connections parked or parking; the task runs while there are any.
    parked: AtomicUsize,
}

impl Unparker {
    /// A connection starts to park: its wakeup may come before it settles.
    pub(crate) fn parking(&self) {
        self.parked.fetch_add(1, Ordering::SeqCst);
    }

    /// A connection that was parking goes on with its task after all.
    pub(crate) fn not_parked(&self) {
        if self.parked.fetch_sub(1, Ordering::SeqCst) == 1 {
            // The last one: the task, waiting while anything is parked, may end.
            self.wake_task();
        }
    }

    fn wake_task(&self) {
        let waker = lock(&self.waker).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Number of connections parked (or parking) now.
    pub(crate) fn parked(&self) -> usize {
        self.parked.load(Ordering::SeqCst)
    }

    /// Starts the unparker task unless it runs; called by a connection that parked.
    pub(crate) fn ensure_started<R: Runtime>(self: &Arc<Self>, rt: &R) {
        if !self.running.swap(true, Ordering::SeqCst) {
            rt.spawn(Box::pin(UnparkerTask {
                unparker: self.clone(),
                rt: rt.clone(),
            }));
        }
    }

    /// Queues a woken connection's task for spawning.
    pub(crate) fn resume(&self, task: BoxFuture) {
        lock(&self.queue).push(task);
        // After the push: the task exits only once nothing is parked, and by then
        // it sees this connection in the queue.
        self.parked.fetch_sub(1, Ordering::SeqCst);
        self.wake_task();
    }
}

struct UnparkerTask<R: Runtime> {
    unparker: Arc<Unparker>,
    rt: R,
}

impl<R: Runtime> Unpin for UnparkerTask<R> {}

impl<R: Runtime> Future for UnparkerTask<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let unparker = &this.unparker;
        loop {
            let woken = std::mem::take(&mut *lock(&unparker.queue));
            for task in woken {
                this.rt.spawn(task);
            }
            lock(&unparker.waker).register(cx.waker());
            if !lock(&unparker.queue).is_empty() {
                continue;
            }
            if unparker.parked() > 0 {
                return Poll::Pending;
            }
            // Nothing parked: end, unless a connection parked (and found this task
            // still running) meanwhile, or another task took over.
            unparker.running.store(false, Ordering::SeqCst);
            let idle = unparker.parked() == 0 && lock(&unparker.queue).is_empty();
            if idle || unparker.running.swap(true, Ordering::SeqCst) {
                return Poll::Ready(());
            }
        }
    }
}
