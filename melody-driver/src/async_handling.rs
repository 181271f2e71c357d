//! How async message handlers run per session (`AsyncHandling`, `Overflow`) and what
//! was counted (`AsyncStats`): the settings and counters, apart from the machinery in
//! `in_flight.rs`.

use std::sync::atomic::{AtomicU64, Ordering};

/// What happens to a message for an async handler that arrives while its session already
/// has [`AsyncHandling::max_in_flight`] messages in flight. Each time, it is counted in
/// [`AsyncStats`] and reported to [`Melody::on_overflow`](crate::Melody::on_overflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overflow {
    /// Backpressure (the default): the message waits, and the session's socket is not read
    /// until a handler finishes and frees a slot. Writes and pings go on; pongs are not
    /// read meanwhile, so a wait longer than `Config::pong_wait` ends the session like a
    /// silent peer. Counted in [`AsyncStats::waited`], once per pause.
    Wait,
    /// The message is dropped: its handlers (sync and async) do not run. Counted in
    /// [`AsyncStats::dropped`].
    Drop,
    /// The message is dropped and the session closed with 1013 "Try Again Later" after
    /// its queued messages; handlers already in flight still finish. 1013 rather than 1008
    /// (policy violation): the bound is reached because the server's handlers are slow,
    /// a temporary condition on the server's side that a client may retry after, not
    /// something the client did wrong. Counted in [`AsyncStats::dropped`] and, once per
    /// session, [`AsyncStats::closed`].
    Close,
}

/// How a `Melody` runs its async message handlers for each session
/// ([`Melody::set_async_handling`](crate::Melody::set_async_handling)).
///
/// A message is *in flight* from the moment it is read until its async handler's
/// future completes: running, or accepted and waiting for its turn. At most
/// `max_in_flight` are, per session; past it, `overflow` decides. At most `concurrency`
/// run at once (1: in order, each message's handler starts after the previous one
/// finished); they start in arrival order either way.
///
/// ```
/// use melody_driver::api::{AsyncHandling, Overflow};
///
/// // One at a time, in order; up to 16 messages accepted, then stop reading.
/// assert_eq!(AsyncHandling::default(), AsyncHandling::in_order());
/// // Up to 4 at once, up to 8 accepted; the 9th is dropped and counted.
/// let handling = AsyncHandling::concurrent(4).max_in_flight(8).overflow(Overflow::Drop);
/// assert_eq!((handling.concurrency, handling.max_in_flight), (4, 8));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AsyncHandling {
    /// Handlers of one session running at once (at least 1; 1 is in order).
    pub concurrency: usize,
    /// Messages of one session in flight at most: running or waiting to start (at
    /// least `concurrency`).
    pub max_in_flight: usize,
    /// What happens to a message past `max_in_flight`.
    pub overflow: Overflow,
}

impl AsyncHandling {
    /// `max_in_flight` of [`AsyncHandling::in_order`].
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

    /// One handler at a time per session, in message order (the default, like
    /// olahol/melody without `ConcurrentMessageHandling`); up to
    /// [`DEFAULT_MAX_IN_FLIGHT`](Self::DEFAULT_MAX_IN_FLIGHT) messages accepted, then
    /// [`Overflow::Wait`].
    pub fn in_order() -> Self {
        AsyncHandling {
            concurrency: 1,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            overflow: Overflow::Wait,
        }
    }

    /// Up to `limit` handlers at once per session (olahol/melody's
    /// `ConcurrentMessageHandling`, bounded), started in message order, finishing in any
    /// order; `max_in_flight` is `limit` too, then [`Overflow::Wait`]. A `limit` of 0 is
    /// taken as 1.
    pub fn concurrent(limit: usize) -> Self {
        let limit = limit.max(1);
        AsyncHandling {
            concurrency: limit,
            max_in_flight: limit,
            overflow: Overflow::Wait,
        }
    }

    /// Sets the bound on messages in flight per session (raised to `concurrency` if
    /// below it).
    #[must_use]
    pub fn max_in_flight(mut self, bound: usize) -> Self {
        self.max_in_flight = bound;
        self
    }

    /// Sets what happens to a message past the bound.
    #[must_use]
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The limits in force: `concurrency` at least 1, `max_in_flight` at least that.
    pub(crate) fn limits(&self) -> (usize, usize) {
        let concurrency = self.concurrency.max(1);
        (concurrency, self.max_in_flight.max(concurrency))
    }
}

impl Default for AsyncHandling {
    fn default() -> Self {
        Self::in_order()
    }
}

/// Counters of a `Melody`'s async message handlers, summed over its sessions since it
/// was made ([`Melody::async_stats`](crate::Melody::async_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AsyncStats {
    /// Messages accepted for an async handler (its future created).
    pub started: u64,
    /// Futures that completed.
    pub finished: u64,
    /// Futures that panicked (when created or polled); each closed its session with 1011.
    pub panicked: u64,
    /// Futures dropped unfinished because their connection task was dropped (its
    /// runtime shut down). A session that ends normally lets its futures finish.
    pub abandoned: u64,
    /// Times a session stopped reading because its bound was reached ([`Overflow::Wait`]).
    pub waited: u64,
    /// Messages dropped at the bound ([`Overflow::Drop`] and [`Overflow::Close`]).
    pub dropped: u64,
    /// Sessions closed with 1013 at the bound ([`Overflow::Close`]).
    pub closed: u64,
}

impl AsyncStats {
    /// Futures running or waiting to start now: `started` less those that finished,
    /// panicked or were abandoned.
    pub fn in_flight(&self) -> u64 {
        self.started - self.finished - self.panicked - self.abandoned
    }
}

/// The atomic counters behind [`AsyncStats`], shared by every connection task.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) started: AtomicU64,
    pub(crate) finished: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) waited: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) closed: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> AsyncStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // Read the outcomes first: a future counted finished was counted started before.
        let (finished, panicked, abandoned) = (
            get(&self.finished),
            get(&self.panicked),
            get(&self.abandoned),
        );
        AsyncStats {
            started: get(&self.started),
            finished,
            panicked,
            abandoned,
            waited: get(&self.waited),
            dropped: get(&self.dropped),
            closed: get(&self.closed),
        }
    }
}
