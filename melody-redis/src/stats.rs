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
    /// Connections established (publisher and subscriber; 2 after a clean start).
    pub connects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
}

const MODE_UNKNOWN: u8 = 0;
const MODE_CLASSIC: u8 = 1;
const MODE_SHARDED: u8 = 2;

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) echoes: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) publisher_up: AtomicBool,
    pub(crate) subscriber_up: AtomicBool,
    mode: AtomicU8,
    /// The topics whose channel Redis confirmed this node listens to.
    listening: Mutex<HashSet<Arc<str>>>,
    /// The queue's counters, known once the backplane runs.
    pub(crate) forward: OnceLock<ForwardCounters>,
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            published: get(&self.published),
            received: get(&self.received),
            dropped: self.forward.get().map_or(0, ForwardCounters::dropped),
            failed: get(&self.failed),
            malformed: get(&self.malformed),
            echoes: get(&self.echoes),
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
