//! A handle on a running backplane: its identity, counters and connection state.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::envelope::NodeId;
use crate::stats::{Counters, Stats};

/// Reads a [`RedisBackplane`](crate::RedisBackplane)'s counters and state, before and
/// after it is attached. Cheap to clone.
#[derive(Clone)]
pub struct RedisHandle {
    pub(crate) node: NodeId,
    pub(crate) counters: Arc<Counters>,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandle")
            .field("node", &self.node)
            .field("ready", &self.is_ready())
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisHandle {
    /// This node's id, carried by every message it publishes.
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// Whether both connections are up: this node's messages reach Redis, and Redis's
    /// reach this node's sessions (broadcasts, and every topic in
    /// [`RedisHandle::is_listening`]).
    pub fn is_ready(&self) -> bool {
        self.counters.publisher_up.load(Ordering::Acquire)
            && self.counters.subscriber_up.load(Ordering::Acquire)
    }

    /// Whether Redis confirmed that this node listens to `topic`'s channel: from then
    /// on, what other nodes publish to `topic` reaches this node's subscribers.
    pub fn is_listening(&self, topic: &str) -> bool {
        self.counters.subscriber_up.load(Ordering::Acquire)
            && self.counters.listening().contains(topic)
    }

    /// `Some(true)` for sharded pub/sub, `Some(false)` for classic, `None` before the
    /// first connection.
    pub fn sharded(&self) -> Option<bool> {
        self.counters.sharded()
    }
}
