//! The two synchronisation primitives every part of the driver uses: taking a lock, and
//! keeping one task's waker.

use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

/// Takes `m`'s lock. The driver's locks guard state that is consistent at every
/// operation boundary, and no user code runs under them, so a poisoning panic
/// elsewhere leaves nothing half-done: carry on.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The waker of the one task waiting on something, if it waits.
#[derive(Debug, Default)]
pub(crate) struct WakerSlot(Option<Waker>);

impl WakerSlot {
    /// Remembers `waker` to wake later. A waker that already wakes the same task is
    /// kept as it is: no clone. (A runtime that polls with a borrowed waker which
    /// never `will_wake`-matches its own clones costs one clone per call, as an empty
    /// slot does.)
    pub(crate) fn register(&mut self, waker: &Waker) {
        match &mut self.0 {
            Some(stored) => stored.clone_from(waker),
            None => self.0 = Some(waker.clone()),
        }
    }

    /// Whether a waker waits here (none: it was taken to be woken, or never given).
    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Takes the waker out, to wake it once no lock is held.
    pub(crate) fn take(&mut self) -> Option<Waker> {
        self.0.take()
    }
}
