//! A shard: one hub behind a lock. Every operation on a session goes through
//! [`Shard::with`], which wakes the parked sessions it gave work once the lock is
//! released.

use std::cell::RefCell;
use std::sync::Mutex;
use std::task::Waker;

use melody_core::Hub;

use crate::clock::ClockSignal;
use crate::slot::Slot;
use crate::sync::lock;

pub(crate) struct Shard {
    hub: Mutex<Hub<Slot>>,
    /// Lock acquisitions, for the benchmarks' per-delivery figure (feature `lock-stats`).
    #[cfg(feature = "lock-stats")]
    acquisitions: std::sync::atomic::AtomicU64,
}

thread_local! {
    /// Wakers collected under a shard lock and woken after it; reused, so waking
    /// allocates nothing once warm.
    static WAKE_LIST: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

impl Shard {
    pub(crate) fn new(hub: Hub<Slot>) -> Self {
        Shard {
            hub: Mutex::new(hub),
            #[cfg(feature = "lock-stats")]
            acquisitions: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hub<Slot>> {
        #[cfg(feature = "lock-stats")]
        self.acquisitions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.hub)
    }

    /// How often this shard's lock was taken.
    #[cfg(feature = "lock-stats")]
    pub(crate) fn acquisitions(&self) -> u64 {
        self.acquisitions.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `op` on the hub under the lock; then, outside the lock, wakes every parked
    /// session that `op` gave work, and tells the clock of the hub's next deadline if it
    /// changed (the clock wakes early if it came earlier).
    pub(crate) fn with<T>(&self, clock: &ClockSignal, op: impl FnOnce(&mut Hub<Slot>) -> T) -> T {
        // The list is taken only when someone is woken: most operations wake nobody.
        let mut wakers: Option<Vec<Waker>> = None;
        let (result, next) = {
            let mut hub = self.lock();
            let result = op(&mut hub);
            while let Some(id) = hub.poll_ready() {
                if let Some(waker) = hub.user_mut(id).and_then(|slot| slot.waker.take()) {
                    wakers
                        .get_or_insert_with(|| {
                            WAKE_LIST.with(|w| std::mem::take(&mut *w.borrow_mut()))
                        })
                        .push(waker);
                }
            }
            (result, hub.poll_timeout_change())
        };
        if let Some(next) = next {
            clock.offer(next);
        }
        if let Some(mut wakers) = wakers {
            for waker in wakers.drain(..) {
                waker.wake();
            }
            WAKE_LIST.with(|w| *w.borrow_mut() = wakers);
        }
        result
    }

    /// Reads the hub without waking anyone.
    pub(crate) fn read<T>(&self, op: impl FnOnce(&Hub<Slot>) -> T) -> T {
        op(&self.lock())
    }

    /// Reads every hub at one moment: their locks taken in order and held together.
    /// (Read shard by shard, a sum could count bytes twice as the shared memory budget
    /// moves them between shards: released on one read first, reserved on one read
    /// after.) No operation holds two shard locks, so the order cannot deadlock.
    pub(crate) fn read_all<T>(shards: &[Shard], op: impl FnOnce(&[&Hub<Slot>]) -> T) -> T {
        let guards: Vec<_> = shards.iter().map(Shard::lock).collect();
        let hubs: Vec<&Hub<Slot>> = guards.iter().map(|guard| &**guard).collect();
        op(&hubs)
    }
}
