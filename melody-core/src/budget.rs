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
    /// Bytes counted in `shared` that this hub has taken but does not hold: a message
    /// queued or freed moves bytes between `local` and here, without an atomic
    /// operation on the shared count (two per delivery otherwise, which a broadcast
    /// to a thousand sessions felt). At most `2 × chunk`; other hubs see it as held,
    /// so the limit is never exceeded.
    credit: usize,
    /// Bytes taken from the shared count beyond the need, when they fit: 64 KiB, or
    /// 1/1024 of a smaller limit, so a hub's spare never keeps more than 1/512 of the
    /// limit from the others.
    chunk: usize,
}

/// The most a hub takes from the shared count beyond what it needs.
const CREDIT_CHUNK: usize = 64 * 1024;

impl MemoryBudget {
    pub(crate) fn new(limit: Option<usize>) -> Self {
        MemoryBudget {
            limit,
            shared: Arc::new(AtomicUsize::new(0)),
            local: 0,
            refused: 0,
            claimed: 0,
            credit: 0,
            chunk: limit.map_or(CREDIT_CHUNK, |limit| (limit / 1024).min(CREDIT_CHUNK)),
        }
    }

    /// Counts against `counter` from now on, carrying over what this hub holds.
    pub(crate) fn share(&mut self, counter: Arc<AtomicUsize>) {
        let taken = self.local + self.credit;
        self.shared.fetch_sub(taken, Ordering::Relaxed);
        counter.fetch_add(taken, Ordering::Relaxed);
        self.shared = counter;
    }

    /// Bytes still free under the limit (`usize::MAX` when unbounded).
    pub(crate) fn room(&self) -> usize {
        match self.limit {
            Some(limit) => limit
                .saturating_sub(self.shared.load(Ordering::Relaxed))
                .saturating_add(self.credit),
            None => usize::MAX,
        }
    }

    /// Takes `n` bytes if they fit under the limit; `false` (and nothing taken) if
    /// they do not. The caller refuses the data then (see `Config::memory_budget`).
    /// Partial inbound messages reserve as their bytes arrive.
    pub(crate) fn reserve(&mut self, n: usize) -> bool {
        if n > self.credit {
            let need = n - self.credit;
            // A chunk beyond the need when it fits, else exactly the need.
            let grabbed = [need.saturating_add(self.chunk), need]
                .into_iter()
                .find(|&want| self.take_shared(want));
            let Some(grabbed) = grabbed else {
                return false;
            };
            self.credit += grabbed;
        }
        self.credit -= n;
        self.local += n;
        true
    }

    /// Adds `n` to the shared count if the result is within the limit.
    fn take_shared(&self, n: usize) -> bool {
        self.shared
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                let after = held.checked_add(n)?;
                self.limit
                    .is_none_or(|limit| after <= limit)
                    .then_some(after)
            })
            .is_ok()
    }

    /// Takes `n` bytes whatever the limit: for data already admitted against
    /// [`MemoryBudget::room`] (the outboxes settle their count after each operation).
    pub(crate) fn force_reserve(&mut self, n: usize) {
        if n > self.credit {
            self.shared.fetch_add(n - self.credit, Ordering::Relaxed);
            self.credit = n;
        }
        self.credit -= n;
        self.local += n;
    }

    /// Gives back `n` bytes taken earlier.
    pub(crate) fn release(&mut self, n: usize) {
        let n = n.min(self.local);
        self.local -= n;
        self.credit += n;
        if self.credit > 2 * self.chunk {
            let surplus = self.credit - self.chunk;
            self.shared.fetch_sub(surplus, Ordering::Relaxed);
            self.credit = self.chunk;
        }
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

    #[test]
    fn a_hub_keeps_a_bounded_spare_and_other_hubs_see_it_as_held() {
        let limit = 64 * 1024 * 1024;
        let counter = Arc::new(AtomicUsize::new(0));
        let (mut a, mut b) = (
            MemoryBudget::new(Some(limit)),
            MemoryBudget::new(Some(limit)),
        );
        a.share(counter.clone());
        b.share(counter.clone());
        assert!(a.reserve(100));
        assert_eq!(
            counter.load(Ordering::Relaxed),
            100 + CREDIT_CHUNK,
            "a chunk spare"
        );
        // Queued and freed within the spare: the shared count does not move.
        for _ in 0..1000 {
            assert!(a.reserve(66));
            a.release(66);
        }
        assert_eq!(counter.load(Ordering::Relaxed), 100 + CREDIT_CHUNK);
        assert_eq!(a.held(), 100);
        // Freeing much gives back all but one chunk.
        assert!(a.reserve(10 * CREDIT_CHUNK));
        a.release(10 * CREDIT_CHUNK + 100);
        assert_eq!(counter.load(Ordering::Relaxed), CREDIT_CHUNK);
        // The other hub may take everything but a's spare, and no more.
        assert!(b.reserve(limit - CREDIT_CHUNK));
        assert!(!b.reserve(1));
        assert_eq!(b.room(), 0, "a's spare counts as held");
        assert_eq!(counter.load(Ordering::Relaxed), limit);
    }
}
