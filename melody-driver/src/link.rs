//! The queue and topic interest between an instance and its backplane: what both ends
//! share, with no knowledge of either.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

use melody_core::Prepared;

use crate::sync::{lock, WakerSlot};

/// How many messages may wait for a backplane unless it asks for another bound
/// ([`Backplane::queue_capacity`](crate::Backplane::queue_capacity)).
pub const DEFAULT_BACKPLANE_QUEUE: usize = 4096;

/// Who a message is for on the other instances.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Every session (`broadcast` and its twins): the reserved topic of all sessions.
    All,
    /// The subscribers of one topic (`publish` and its twins).
    Topic(Arc<str>),
}

/// A message this instance hands to its backplane.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Who receives it on the other instances.
    pub audience: Audience,
    /// The message, encoded once; [`Prepared::kind`] and [`Prepared::payload`] give
    /// what to send.
    pub message: Prepared,
}

/// The counters of the queue between an instance and its backplane. Cheap to clone.
#[derive(Clone)]
pub struct ForwardCounters {
    pub(crate) state: Arc<LinkState>,
}

impl ForwardCounters {
    /// Messages put into the queue.
    pub fn queued(&self) -> u64 {
        self.state.queued.load(Ordering::Relaxed)
    }

    /// Messages not forwarded because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for ForwardCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardCounters")
            .field("queued", &self.queued())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// What the instance and its backplane share.
pub(crate) struct LinkState {
    capacity: usize,
    outgoing: Mutex<OutgoingQueue>,
    interest: Mutex<Interest>,
    queued: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Default)]
struct OutgoingQueue {
    queue: VecDeque<Outgoing>,
    waker: WakerSlot,
    /// The instance is gone.
    detached: bool,
}

#[derive(Default)]
struct Interest {
    /// Topics reported to the backplane and not forgotten.
    known: HashSet<Arc<str>>,
    /// Topics reported since the backplane last looked.
    fresh: Vec<Arc<str>>,
    waker: WakerSlot,
    detached: bool,
}

/// What [`LinkState::take_outgoing`] and [`LinkState::take_new_topics`] found.
pub(crate) enum Taken {
    /// Something was moved out.
    Some,
    /// Nothing now; the waker is registered.
    Waiting,
    /// The instance is gone.
    Detached,
}

impl LinkState {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(LinkState {
            capacity: capacity.max(1),
            outgoing: Mutex::new(OutgoingQueue::default()),
            interest: Mutex::new(Interest::default()),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })
    }

    /// Moves up to `max` (at least one) outgoing messages into `batch`, or registers
    /// `waker` if there are none.
    pub(crate) fn take_outgoing(
        &self,
        batch: &mut Vec<Outgoing>,
        max: usize,
        waker: &Waker,
    ) -> Taken {
        let mut out = lock(&self.outgoing);
        if !out.queue.is_empty() {
            let n = out.queue.len().min(max.max(1));
            batch.extend(out.queue.drain(..n));
            return Taken::Some;
        }
        if out.detached {
            return Taken::Detached;
        }
        out.waker.register(waker);
        Taken::Waiting
    }

    /// Moves the topics reported since the last call into `topics`, or registers
    /// `waker` if there are none.
    pub(crate) fn take_new_topics(&self, topics: &mut Vec<Arc<str>>, waker: &Waker) -> Taken {
        let mut interest = lock(&self.interest);
        if interest.detached {
            return Taken::Detached;
        }
        if !interest.fresh.is_empty() {
            topics.append(&mut interest.fresh);
            return Taken::Some;
        }
        interest.waker.register(waker);
        Taken::Waiting
    }

    pub(crate) fn known_topics(&self) -> Vec<Arc<str>> {
        lock(&self.interest).known.iter().cloned().collect()
    }

    /// Forgets `topic` if `unused` says so, checked under the interest lock, which a
    /// new subscription's report also takes (after its hub update): either the report
    /// sees the topic still known, or `unused` sees the new subscriber.
    pub(crate) fn forget_if(&self, topic: &str, unused: impl FnOnce() -> bool) -> bool {
        let mut interest = lock(&self.interest);
        unused() && interest.known.remove(topic)
    }
}

/// The instance's end of the link, kept in its shared state; dropping it (the instance
/// is gone) wakes the backplane so that it ends.
pub(crate) struct Attached {
    pub(crate) state: Arc<LinkState>,
}

impl Attached {
    /// Queues a message for the backplane, or counts it dropped when the queue is full.
    /// Never waits.
    pub(crate) fn forward(&self, audience: Audience, message: &Prepared) {
        let state = &self.state;
        let waker = {
            let mut out = lock(&state.outgoing);
            if out.detached {
                return;
            }
            if out.queue.len() >= state.capacity {
                state.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            out.queue.push_back(Outgoing {
                audience,
                message: message.clone(),
            });
            state.queued.fetch_add(1, Ordering::Relaxed);
            out.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Reports that a session subscribed to `topic`; the backplane hears of each topic
    /// once until it forgets it.
    pub(crate) fn note_subscribed(&self, topic: &str) {
        let waker = {
            let mut interest = lock(&self.state.interest);
            if interest.known.contains(topic) {
                return;
            }
            let name: Arc<str> = Arc::from(topic);
            interest.known.insert(name.clone());
            interest.fresh.push(name);
            interest.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let out_waker = {
            let mut out = lock(&self.state.outgoing);
            out.detached = true;
            out.waker.take()
        };
        let topic_waker = {
            let mut interest = lock(&self.state.interest);
            interest.detached = true;
            interest.waker.take()
        };
        for waker in [out_waker, topic_waker].into_iter().flatten() {
            waker.wake();
        }
    }
}
