//! A shard: one hub behind a lock, and the wakers of its parked sessions.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Instant;

use crate::session::Info;
use melody_core::{Hub, Keys};

/// What the driver keeps per session inside the hub.
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) keys: Keys,
    /// The connection task's waker while it is parked.
    pub(crate) waker: Option<Waker>,
    /// Set at `Connect`: what session handles point to.
    pub(crate) info: Option<Arc<Info>>,
}

pub(crate) struct Shard {
    hub: Mutex<Hub<Slot>>,
}

thread_local! {
    /// Wakers collected under a shard lock and woken after it; reused, so waking
    /// allocates nothing once warm.
    static WAKE_LIST: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Poisoning only follows a panic inside the core, which runs no user code; the hub
/// stays consistent at operation boundaries, so carry on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shard {
    pub(crate) fn new(hub: Hub<Slot>) -> Self {
        Shard {
            hub: Mutex::new(hub),
        }
    }

    /// Runs `op` on the hub under the lock; then, outside the lock, wakes every parked
    /// session that `op` gave work, and tells the clock if a deadline came earlier.
    pub(crate) fn with<T>(&self, clock: &ClockSignal, op: impl FnOnce(&mut Hub<Slot>) -> T) -> T {
        let mut wakers = WAKE_LIST.with(|w| std::mem::take(&mut *w.borrow_mut()));
        let (result, next) = {
            let mut hub = lock(&self.hub);
            let result = op(&mut hub);
            while let Some(id) = hub.poll_ready() {
                if let Some(waker) = hub.user_mut(id).and_then(|slot| slot.waker.take()) {
                    wakers.push(waker);
                }
            }
            (result, hub.poll_timeout())
        };
        clock.offer(next);
        for waker in wakers.drain(..) {
            waker.wake();
        }
        WAKE_LIST.with(|w| *w.borrow_mut() = wakers);
        result
    }

    /// Reads the hub without waking anyone.
    pub(crate) fn read<T>(&self, op: impl FnOnce(&Hub<Slot>) -> T) -> T {
        op(&lock(&self.hub))
    }
}

/// The clock task's next wakeup, moved earlier when a new deadline needs it.
pub(crate) struct ClockSignal {
    origin: Instant,
    /// Nanoseconds after `origin` the clock sleeps until; `u64::MAX` when idle.
    target: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

impl ClockSignal {
    pub(crate) fn new(origin: Instant) -> Self {
        ClockSignal {
            origin,
            target: AtomicU64::new(u64::MAX),
            waker: Mutex::new(None),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// A hub's next deadline: wakes the clock if it sleeps past it.
    pub(crate) fn offer(&self, next: Option<Instant>) {
        let Some(at) = next else { return };
        let n = self.nanos(at);
        if n < self.target.fetch_min(n, Ordering::AcqRel) {
            if let Some(w) = lock(&self.waker).take() {
                w.wake();
            }
        }
    }

    /// Called by the clock before sleeping: the target it sleeps until.
    pub(crate) fn set_target(&self, at: Option<Instant>) {
        let n = at.map_or(u64::MAX, |at| self.nanos(at));
        self.target.store(n, Ordering::Release);
    }

    pub(crate) fn target(&self) -> Option<Instant> {
        match self.target.load(Ordering::Acquire) {
            u64::MAX => None,
            n => Some(self.origin + std::time::Duration::from_nanos(n)),
        }
    }

    pub(crate) fn register(&self, waker: &Waker) {
        let mut slot = lock(&self.waker);
        match slot.as_ref() {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
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
