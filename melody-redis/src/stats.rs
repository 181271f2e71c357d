//! The backplane's counters and state, shared by its tasks and read through
//! [`RedisHandle`](crate::RedisHandle).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use melody_driver::ForwardCounters;

/// A snapshot of a backplane's counters. All count messages but the last two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sent to Redis and acknowledged.
    pub published: u64,
    /// Received from other nodes and delivered to this node's sessions.
    pub received: u64,
    /// Never sent: the queue towards Redis was full.
    pub dropped: u64,
    /// Not acknowledged by Redis: published while this node had no Redis connection,
    /// or in a command that failed or timed out (some of those may still have reached
    /// other nodes).
    pub failed: u64,
    /// Read from our channels but not decodable (wrong version, kind or topic, text that
    /// is not UTF-8); not delivered.
    pub malformed: u64,
    /// This node's own messages heard back from Redis and ignored.
    pub echoes: u64,
    /// Messages of history topics appended to their Redis stream by this node (each
    /// got its position there).
    pub history_appended: u64,
    /// Messages of history topics this node published that Redis did not take (it
    /// was unreachable or refused): delivered on this node only, without a position
    /// and not kept; every other node misses them. Also counted in `failed`.
    pub history_local_only: u64,
    /// Messages of history topics received at a position this node had already
    /// delivered (a repeat): not delivered again.
    pub history_duplicates: u64,
    /// Connections established (publisher and subscriber; 2 after a clean start).
    pub connects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
}

const MODE_UNKNOWN: u8 = 0;
const MODE_CLASSIC: u8 = 1;
const MODE_SHARDED: u8 = 2;

/// One counter of [`Stats`], mirrored to the `metrics` facade (feature `metrics`) as
/// `melody_backplane_NAME_total`.
pub(crate) struct Counter {
    value: AtomicU64,
    #[cfg(feature = "metrics")]
    name: &'static str,
}

impl Counter {
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    const fn new(name: &'static str) -> Self {
        Counter {
            value: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            name,
        }
    }

    fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

pub(crate) struct Counters {
    pub(crate) published: Counter,
    pub(crate) received: Counter,
    pub(crate) failed: Counter,
    pub(crate) malformed: Counter,
    pub(crate) echoes: Counter,
    pub(crate) history_appended: Counter,
    pub(crate) history_local_only: Counter,
    pub(crate) history_duplicates: Counter,
    pub(crate) connects: Counter,
    pub(crate) connect_failures: Counter,
    pub(crate) publisher_up: AtomicBool,
    pub(crate) subscriber_up: AtomicBool,
    mode: AtomicU8,
    /// The topics whose channel Redis confirmed this node listens to.
    listening: Mutex<HashSet<Arc<str>>>,
    /// The queue's counters, known once the backplane runs.
    pub(crate) forward: OnceLock<ForwardCounters>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            published: Counter::new("melody_backplane_published_total"),
            received: Counter::new("melody_backplane_received_total"),
            failed: Counter::new("melody_backplane_failed_total"),
            malformed: Counter::new("melody_backplane_malformed_total"),
            echoes: Counter::new("melody_backplane_echoes_total"),
            history_appended: Counter::new("melody_backplane_history_appended_total"),
            history_local_only: Counter::new("melody_backplane_history_local_only_total"),
            history_duplicates: Counter::new("melody_backplane_history_duplicates_total"),
            connects: Counter::new("melody_backplane_connects_total"),
            connect_failures: Counter::new("melody_backplane_connect_failures_total"),
            publisher_up: AtomicBool::new(false),
            subscriber_up: AtomicBool::new(false),
            mode: AtomicU8::new(MODE_UNKNOWN),
            listening: Mutex::new(HashSet::new()),
            forward: OnceLock::new(),
        }
    }
}

pub(crate) fn add(counter: &Counter, n: usize) {
    counter.value.fetch_add(n as u64, Ordering::Relaxed);
    #[cfg(feature = "metrics")]
    metrics::counter!(counter.name).increment(n as u64);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = Counter::get;
        Stats {
            published: get(&self.published),
            received: get(&self.received),
            dropped: self.forward.get().map_or(0, ForwardCounters::dropped),
            failed: get(&self.failed),
            malformed: get(&self.malformed),
            echoes: get(&self.echoes),
            history_appended: get(&self.history_appended),
            history_local_only: get(&self.history_local_only),
            history_duplicates: get(&self.history_duplicates),
            connects: get(&self.connects),
            connect_failures: get(&self.connect_failures),
        }
    }

    pub(crate) fn set_sharded(&self, sharded: bool) {
        let mode = if sharded { MODE_SHARDED } else { MODE_CLASSIC };
        self.mode.store(mode, Ordering::Relaxed);
    }

    pub(crate) fn sharded(&self) -> Option<bool> {
        match self.mode.load(Ordering::Relaxed) {
            MODE_UNKNOWN => None,
            mode => Some(mode == MODE_SHARDED),
        }
    }

    pub(crate) fn listening(&self) -> MutexGuard<'_, HashSet<Arc<str>>> {
        self.listening
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
