//! The hub's memory budget: the bytes all its sessions together may hold in outboxes
//! and in partial inbound messages ([`Config::memory_budget`](crate::Config::memory_budget)).
//!
//! A session reserves before it holds and releases what it no longer holds. Hubs
//! (shards) of one instance may share the count, so the bound is the instance's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes held against a limit, by this hub and by every hub sharing its counter.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    /// `None`: unbounded (the count is still kept, for the stats).
    limit: Option<usize>,
    /// What the hubs sharing the counter hold together.
    shared: Arc<AtomicUsize>,
    /// What this hub's sessions hold (for its stats: a sum over shards stays exact).
    local: usize,
    /// Messages dropped because they did not fit.
    refused: u64,
    /// Outbox bytes claimed by `claim` since the last `settle`, which must not count
    /// them again.
    claimed: usize,
}

impl MemoryBudget {
    pub(crate) fn new(limit: Option<usize>) -> Self {
        MemoryBudget {
            limit,
            shared: Arc::new(AtomicUsize::new(0)),
            local: 0,
            refused: 0,
            claimed: 0,
        }
    }

    /// Counts against `counter` from now on, carrying over what this hub holds.
    pub(crate) fn share(&mut self, counter: Arc<AtomicUsize>) {
        self.shared.fetch_sub(self.local, Ordering::Relaxed);
        counter.fetch_add(self.local, Ordering::Relaxed);
        self.shared = counter;
    }

    /// Bytes still free under the limit (`usize::MAX` when unbounded).
    pub(crate) fn room(&self) -> usize {
        match self.limit {
            Some(limit) => limit.saturating_sub(self.shared.load(Ordering::Relaxed)),
            None => usize::MAX,
        }
    }

    /// Takes `n` bytes if they fit under the limit; `false` (and nothing taken) if
    /// they do not. The caller refuses the data then (see `Config::memory_budget`).
    /// Partial inbound messages reserve as their bytes arrive.
    pub(crate) fn reserve(&mut self, n: usize) -> bool {
        let fits = self
            .shared
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                let after = held.checked_add(n)?;
                self.limit
                    .is_none_or(|limit| after <= limit)
                    .then_some(after)
            })
            .is_ok();
        if fits {
            self.local += n;
        }
        fits
    }

    /// Takes `n` bytes whatever the limit: for data already admitted against
    /// [`MemoryBudget::room`] (the outboxes settle their count after each operation).
    pub(crate) fn force_reserve(&mut self, n: usize) {
        self.shared.fetch_add(n, Ordering::Relaxed);
        self.local += n;
    }

    /// Gives back `n` bytes taken earlier.
    pub(crate) fn release(&mut self, n: usize) {
        let n = n.min(self.local);
        self.local -= n;
        self.shared.fetch_sub(n, Ordering::Relaxed);
    }

    /// Claims `n` bytes of a message about to be queued, atomically: shards share the
    /// count, and a check followed by a later settle would let two of them take the
    /// same last free bytes. The next `settle` counts them as already held; `unclaim`
    /// gives them back if the message was not queued after all.
    pub(crate) fn claim(&mut self, n: usize) -> bool {
        let claimed = self.reserve(n);
        if claimed {
            self.claimed += n;
        }
        claimed
    }

    /// Gives back a claim whose message was not queued.
    pub(crate) fn unclaim(&mut self, n: usize) {
        let n = n.min(self.claimed);
        self.claimed -= n;
        self.release(n);
    }

    /// Moves this hub's count of outbox bytes from `before` to `after` (what one
    /// operation on one session did to its outbox), bytes claimed meanwhile included.
    pub(crate) fn settle(&mut self, before: usize, after: usize) {
        let before = before + std::mem::take(&mut self.claimed);
        if after > before {
            self.force_reserve(after - before);
        } else {
            self.release(before - after);
        }
    }

    /// Counts a message dropped because it did not fit.
    pub(crate) fn count_refusal(&mut self) {
        self.refused += 1;
    }

    /// What this hub's sessions hold.
    pub(crate) fn held(&self) -> usize {
        self.local
    }

    /// Messages dropped because they did not fit.
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_refuses_past_the_exact_limit_and_release_frees() {
        let mut budget = MemoryBudget::new(Some(100));
        assert!(budget.reserve(60));
        assert!(!budget.reserve(41), "60 + 41 > 100");
        assert!(budget.reserve(40), "60 + 40 = 100 fits");
        assert_eq!(budget.room(), 0);
        budget.release(1);
        assert_eq!(budget.room(), 1);
        assert_eq!(budget.held(), 99);
    }

    #[test]
    fn shared_counter_bounds_several_hubs_together() {
        let counter = Arc::new(AtomicUsize::new(0));
        let (mut a, mut b) = (MemoryBudget::new(Some(10)), MemoryBudget::new(Some(10)));
        assert!(a.reserve(4));
        a.share(counter.clone());
        b.share(counter.clone());
        assert_eq!(
            counter.load(Ordering::Relaxed),
            4,
            "a's holding carried over"
        );
        assert!(b.reserve(6));
        assert!(!a.reserve(1));
        b.release(6);
        assert!(a.reserve(1));
        assert_eq!((a.held(), b.held()), (5, 0));
    }

    #[test]
    fn release_never_gives_back_more_than_was_taken() {
        let mut budget = MemoryBudget::new(None);
        budget.force_reserve(5);
        budget.release(9);
        assert_eq!(budget.held(), 0);
        assert_eq!(budget.room(), usize::MAX);
    }
}
