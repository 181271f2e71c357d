//! The queue and topic interest between an instance and its backplane: what both ends
//! share, with no knowledge of either.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use melody_core::Publication;

use crate::sync::{lock, WakerSlot};

/// How many messages may wait for a backplane unless it asks for another bound
/// ([`Backplane::queue_capacity`](crate::Backplane::queue_capacity)).
pub const DEFAULT_BACKPLANE_QUEUE: usize = 4096;

/// The most resumes of one topic registered to be woken by its read-back; more wait
/// for their deadline (each resume is bounded by the handshake timeout anyway).
const MAX_READ_BACK_WAITERS: usize = 4096;

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
    /// The message, encoded once: [`Publication::prepared`] gives its kind and
    /// payload, [`Publication::event_name`] and [`Publication::event_id`] what a
    /// server-sent event adds.
    pub message: Publication,
    /// The topic keeps a history and the backplane keeps it
    /// ([`Backplane::keeps_history`](crate::Backplane::keeps_history)): the message is
    /// not delivered here yet. The backplane gives it a position and hands it back,
    /// to every instance this one included, with
    /// [`BackplaneLink::deliver_at`](crate::BackplaneLink::deliver_at); if it cannot,
    /// [`BackplaneLink::deliver_unkept`](crate::BackplaneLink::deliver_unkept) delivers
    /// it here without one.
    pub kept: bool,
}

/// What [`BackplaneLink::deliver_at`](crate::BackplaneLink::deliver_at) did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivered {
    /// Kept at its position and delivered.
    Kept,
    /// Its position was already kept here (or is older than what is): not delivered
    /// again.
    Duplicate,
    /// Delivered without a position: the topic keeps no history on this instance, or
    /// [`HistoryRules::max_topics`](melody_core::history::HistoryRules::max_topics)
    /// topics already do.
    Unkept,
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
    /// History topics whose shared log the backplane read into this instance's copy
    /// (after it started listening to them): a resume here can replay all of it.
    read_back: HashSet<Arc<str>>,
    /// Per history topic, how many read-backs the backplane settled (done or failed),
    /// and the resumes waiting for the next one.
    read_back_waits: HashMap<Arc<str>, ReadBackWait>,
}

#[derive(Default)]
struct ReadBackWait {
    settled: u64,
    waiters: Vec<Waker>,
}

impl Interest {
    /// Marks `topic` known and fresh unless it is known already; the backplane's
    /// waker to wake if it was not.
    fn report(&mut self, topic: &str) -> Option<Waker> {
        if self.known.contains(topic) {
            return None;
        }
        let name: Arc<str> = Arc::from(topic);
        self.known.insert(name.clone());
        self.fresh.push(name);
        self.waker.take()
    }

    /// [`Interest::report`], and for a topic known already (its read-back failed or
    /// is under way), reported again unless it waits to be taken: the backplane then
    /// reads back what it has not read yet.
    fn report_for_read_back(&mut self, topic: &str) -> Option<Waker> {
        if !self.known.contains(topic) {
            return self.report(topic);
        }
        if self.fresh.iter().any(|t| &**t == topic) {
            return None;
        }
        self.fresh.push(Arc::from(topic));
        self.waker.take()
    }
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

    /// For a resume of history topic `topic`: `None` if the backplane already read its
    /// shared log into this instance's copy (or the instance is gone); else reports
    /// the topic (so the backplane listens to it and reads its log back) and returns
    /// the read-backs settled so far, to wait for the next with
    /// [`LinkState::poll_read_back`].
    pub(crate) fn request_read_back(&self, topic: &str) -> Option<u64> {
        let (since, waker) = {
            let mut interest = lock(&self.interest);
            if interest.detached || interest.read_back.contains(topic) {
                return None;
            }
            let since = interest.read_back_waits.get(topic).map_or(0, |w| w.settled);
            (since, interest.report_for_read_back(topic))
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Some(since)
    }

    /// Ready once `topic`'s log was read back (`true`), or a read-back after `since`
    /// failed or the instance is gone (`false`); else registers `waker`.
    pub(crate) fn poll_read_back(&self, topic: &str, since: u64, waker: &Waker) -> Poll<bool> {
        let mut interest = lock(&self.interest);
        if interest.read_back.contains(topic) {
            return Poll::Ready(true);
        }
        if interest.detached {
            return Poll::Ready(false);
        }
        let wait = interest
            .read_back_waits
            .entry(Arc::from(topic))
            .or_default();
        if wait.settled > since {
            return Poll::Ready(false);
        }
        // Past the bound (resumes piling up while the backplane cannot read), a
        // waiter is not registered and ends at its own deadline.
        if wait.waiters.len() < MAX_READ_BACK_WAITERS
            && !wait.waiters.iter().any(|w| w.will_wake(waker))
        {
            wait.waiters.push(waker.clone());
        }
        Poll::Pending
    }

    /// The backplane finished reading `topic`'s log back (`read`) or gave up this
    /// time; wakes the resumes waiting for it.
    pub(crate) fn settle_read_back(&self, topic: &str, read: bool) {
        let waiters = {
            let mut interest = lock(&self.interest);
            if read {
                interest.read_back.insert(Arc::from(topic));
                // Waits check `read_back` first: the count is not needed again.
                interest
                    .read_back_waits
                    .remove(topic)
                    .map(|wait| wait.waiters)
                    .unwrap_or_default()
            } else {
                let wait = interest
                    .read_back_waits
                    .entry(Arc::from(topic))
                    .or_default();
                wait.settled += 1;
                std::mem::take(&mut wait.waiters)
            }
        };
        for waiter in waiters {
            waiter.wake();
        }
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
    /// The backplane hands out history positions (`Backplane::keeps_history`).
    pub(crate) keeps_history: bool,
}

impl Attached {
    /// Queues a message for the backplane, or counts it dropped when the queue is full;
    /// `false` when it was not queued. Never waits.
    pub(crate) fn forward(&self, audience: Audience, message: &Publication, kept: bool) -> bool {
        let state = &self.state;
        let waker = {
            let mut out = lock(&state.outgoing);
            if out.detached {
                return false;
            }
            if out.queue.len() >= state.capacity {
                state.dropped.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            out.queue.push_back(Outgoing {
                audience,
                message: message.clone(),
                kept,
            });
            state.queued.fetch_add(1, Ordering::Relaxed);
            out.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Reports that a session subscribed to `topic`; the backplane hears of each topic
    /// once until it forgets it.
    pub(crate) fn note_subscribed(&self, topic: &str) {
        let waker = lock(&self.state.interest).report(topic);
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
        let (topic_waker, read_back_waiters) = {
            let mut interest = lock(&self.state.interest);
            interest.detached = true;
            let waiters: Vec<Waker> = interest
                .read_back_waits
                .drain()
                .flat_map(|(_, wait)| wait.waiters)
                .collect();
            (interest.waker.take(), waiters)
        };
        for waker in [out_waker, topic_waker]
            .into_iter()
            .flatten()
            .chain(read_back_waiters)
        {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counted(AtomicUsize);

    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Counted>, Waker) {
        let counted = Arc::new(Counted::default());
        (counted.clone(), Waker::from(counted))
    }

    #[test]
    fn a_resume_waits_for_the_read_back_and_reports_the_topic_once() {
        let state = LinkState::new(4);
        let since = state.request_read_back("device/1");
        assert_eq!(since, Some(0));
        assert_eq!(state.known_topics(), [Arc::from("device/1")], "reported");
        let (woken, w) = waker();
        assert!(state.poll_read_back("device/1", 0, &w).is_pending());
        assert!(state.poll_read_back("device/1", 0, &w).is_pending());

        state.settle_read_back("device/1", true);
        assert_eq!(woken.0.load(Ordering::Relaxed), 1, "woken once");
        assert_eq!(state.poll_read_back("device/1", 0, &w), Poll::Ready(true));
        assert_eq!(state.request_read_back("device/1"), None, "read: no wait");
    }

    #[test]
    fn a_failed_read_back_ends_the_waits_before_it_only() {
        let state = LinkState::new(4);
        let since = state.request_read_back("device/2").unwrap_or(u64::MAX);
        let (woken, w) = waker();
        assert!(state.poll_read_back("device/2", since, &w).is_pending());
        state.settle_read_back("device/2", false);
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
        assert_eq!(
            state.poll_read_back("device/2", since, &w),
            Poll::Ready(false)
        );

        // A resume arriving after the failure waits for the next read-back.
        let later = state.request_read_back("device/2");
        assert_eq!(later, Some(since + 1));
        let (_, tx) = waker();
        let mut again = Vec::new();
        assert!(matches!(
            state.take_new_topics(&mut again, &tx),
            Taken::Some
        ));
        assert_eq!(again.len(), 1, "reported once while it waits to be taken");
        assert_eq!(state.request_read_back("device/2"), Some(since + 1));
        assert!(matches!(
            state.take_new_topics(&mut again, &tx),
            Taken::Some
        ));
        assert_eq!(
            again.len(),
            2,
            "reported again: the backplane reads what it did not"
        );
        state.request_read_back("device/2");
        state.request_read_back("device/2");
        assert!(matches!(
            state.take_new_topics(&mut again, &tx),
            Taken::Some
        ));
        assert_eq!(again.len(), 3, "once while it waits to be taken");
        assert!(state.poll_read_back("device/2", since + 1, &w).is_pending());
        state.settle_read_back("device/2", true);
        assert_eq!(
            state.poll_read_back("device/2", since + 1, &w),
            Poll::Ready(true)
        );
    }

    #[test]
    fn a_failure_before_the_first_poll_is_not_missed() {
        let state = LinkState::new(4);
        let since = state.request_read_back("device/3").unwrap_or(u64::MAX);
        state.settle_read_back("device/3", false);
        let (_, w) = waker();
        assert_eq!(
            state.poll_read_back("device/3", since, &w),
            Poll::Ready(false)
        );
    }

    #[test]
    fn a_detached_instance_ends_the_waits() {
        let state = LinkState::new(4);
        let since = state.request_read_back("device/4").unwrap_or(u64::MAX);
        let (woken, w) = waker();
        assert!(state.poll_read_back("device/4", since, &w).is_pending());
        drop(Attached {
            state: state.clone(),
            keeps_history: true,
        });
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
        assert_eq!(
            state.poll_read_back("device/4", since, &w),
            Poll::Ready(false)
        );
        assert_eq!(state.request_read_back("device/4"), None);
    }
}
