//! The backplane seam: how several melody instances behind a load balancer act as one.
//!
//! A [`Backplane`] attached with [`Melody::attach_backplane`] receives, through its
//! [`BackplaneLink`], every `broadcast*` and `publish*` made on this instance (after the
//! local delivery), and hands what other instances sent to
//! [`BackplaneLink::deliver_to_all`] / [`BackplaneLink::deliver_to_topic`], which deliver
//! locally only, so nothing bounces back out.
//!
//! The broadcast path never waits for the backplane: a message is put into a bounded
//! queue, and when the queue is full it is dropped and counted
//! ([`ForwardCounters::dropped`]). Without a backplane the broadcast path costs one
//! branch on an empty `OnceLock`.
//!
//! What crosses instances: `broadcast`, `broadcast_binary`, `broadcast_prepared`,
//! `broadcast_others` (the excluded session only exists on its own instance, so every
//! other instance delivers to all its sessions) and the `publish` family likewise.
//! `broadcast_filter` and `broadcast_multiple` stay local: a filter closure and a list
//! of session handles only mean something on the instance that holds them.

use std::collections::{HashSet, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use crate::melody::Melody;
use crate::runtime::BoxFuture;
use crate::shared::Shared;
use crate::Runtime;
use melody_core::{Delivery, Prepared};

/// How many messages may wait for a backplane unless it asks for another bound
/// ([`Backplane::queue_capacity`]).
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

/// A bridge between melody instances (a broker client, typically).
///
/// ```
/// use melody_driver::{Backplane, BackplaneLink, BoxFuture, Runtime};
///
/// /// A backplane that forwards nothing anywhere: the shape of an implementation.
/// struct Nowhere;
///
/// impl<R: Runtime> Backplane<R> for Nowhere {
///     fn run(self, link: BackplaneLink<R>) -> BoxFuture {
///         Box::pin(async move {
///             let mut batch = Vec::new();
///             // Ends when the instance is closed or dropped.
///             while link.next_outgoing(&mut batch, 64).await {
///                 batch.clear();
///             }
///         })
///     }
/// }
/// ```
pub trait Backplane<R: Runtime>: Send + 'static {
    /// How many outgoing messages may wait for [`Backplane::run`] to take them; past it,
    /// new ones are dropped and counted.
    fn queue_capacity(&self) -> usize {
        DEFAULT_BACKPLANE_QUEUE
    }

    /// The backplane's work, spawned once on the instance's runtime by
    /// [`Melody::attach_backplane`]: take outgoing messages from `link` and send them;
    /// deliver what arrives with `link`'s `deliver_*` methods. It should end when
    /// [`BackplaneLink::next_outgoing`] returns `false`.
    fn run(self, link: BackplaneLink<R>) -> BoxFuture;
}

/// The counters of the queue between an instance and its backplane. Cheap to clone.
#[derive(Clone)]
pub struct ForwardCounters {
    state: Arc<LinkState>,
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

/// A backplane's side of an instance: outgoing messages, local delivery, and the topics
/// this instance's sessions subscribe to. Cheap to clone; holds the instance weakly, so
/// a running backplane does not keep a dropped instance alive.
///
/// Two tasks may share the work: one waiting on [`BackplaneLink::next_outgoing`], one
/// on [`BackplaneLink::next_new_topics`]; each has its own wakeup slot.
pub struct BackplaneLink<R: Runtime> {
    shared: Weak<Shared<R>>,
    rt: R,
    state: Arc<LinkState>,
}

impl<R: Runtime> Clone for BackplaneLink<R> {
    fn clone(&self) -> Self {
        BackplaneLink {
            shared: self.shared.clone(),
            rt: self.rt.clone(),
            state: self.state.clone(),
        }
    }
}

impl<R: Runtime> std::fmt::Debug for BackplaneLink<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackplaneLink")
            .field("counters", &self.counters())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<R: Runtime> BackplaneLink<R> {
    /// The instance's runtime, to spawn tasks and sleep on.
    pub fn runtime(&self) -> &R {
        &self.rt
    }

    /// The queue's counters.
    pub fn counters(&self) -> ForwardCounters {
        ForwardCounters {
            state: self.state.clone(),
        }
    }

    /// Whether the instance was closed (`close`, `shutdown`) or dropped.
    pub fn is_closed(&self) -> bool {
        self.shared.upgrade().is_none_or(|s| s.is_closed())
    }

    /// Waits for outgoing messages and moves up to `max` of them (at least one) into
    /// `batch`, oldest first. `false` once the instance is closed or dropped and the
    /// queue is empty: the backplane's work is over.
    pub async fn next_outgoing(&self, batch: &mut Vec<Outgoing>, max: usize) -> bool {
        poll_fn(|cx| self.poll_outgoing(cx, batch, max)).await
    }

    /// The poll form of [`BackplaneLink::next_outgoing`].
    pub fn poll_outgoing(
        &self,
        cx: &mut Context<'_>,
        batch: &mut Vec<Outgoing>,
        max: usize,
    ) -> Poll<bool> {
        // Register for the close signal before checking it, so a close in between wakes us.
        let open = self.watch_close(cx);
        let mut out = lock(&self.state.outgoing);
        if !out.queue.is_empty() {
            let n = out.queue.len().min(max.max(1));
            batch.extend(out.queue.drain(..n));
            return Poll::Ready(true);
        }
        if !open || out.detached {
            return Poll::Ready(false);
        }
        store_waker(&mut out.waker, cx.waker());
        Poll::Pending
    }

    /// Waits until a session subscribes to a topic this link has not reported yet, and
    /// moves those topics into `topics`. `false` once the instance is closed or dropped.
    pub async fn next_new_topics(&self, topics: &mut Vec<Arc<str>>) -> bool {
        poll_fn(|cx| self.poll_new_topics(cx, topics)).await
    }

    /// The poll form of [`BackplaneLink::next_new_topics`].
    pub fn poll_new_topics(&self, cx: &mut Context<'_>, topics: &mut Vec<Arc<str>>) -> Poll<bool> {
        let open = self.watch_close(cx);
        let mut interest = lock(&self.state.interest);
        if !open || interest.detached {
            return Poll::Ready(false);
        }
        if !interest.fresh.is_empty() {
            topics.append(&mut interest.fresh);
            return Poll::Ready(true);
        }
        store_waker(&mut interest.waker, cx.waker());
        Poll::Pending
    }

    /// Every topic reported so far and not forgotten: what to subscribe to again after a
    /// reconnection.
    pub fn known_topics(&self) -> Vec<Arc<str>> {
        lock(&self.state.interest).known.iter().cloned().collect()
    }

    /// Forgets `topic` if no session of this instance subscribes to it any more, and
    /// says whether it did (the backplane may then stop listening to it). A session that
    /// subscribes afterwards reports the topic again.
    pub fn forget_if_unused(&self, topic: &str) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        // The check and the removal happen under the interest lock, which a new
        // subscription's report also takes (after its hub update): either the report
        // sees the topic still known, or this check sees the new subscriber.
        let mut interest = lock(&self.state.interest);
        let melody = Melody { shared };
        if melody.subscriber_count(topic) > 0 {
            return false;
        }
        interest.known.remove(topic)
    }

    /// Delivers a message from another instance to every local session; `None` if the
    /// instance is gone. Never forwarded again.
    pub fn deliver_to_all(&self, message: &Prepared) -> Option<Delivery> {
        let shared = self.shared.upgrade()?;
        Some(Melody { shared }.deliver_local(None, message))
    }

    /// Delivers a message from another instance to the local subscribers of `topic`;
    /// `None` if the instance is gone. Never forwarded again.
    pub fn deliver_to_topic(&self, topic: &str, message: &Prepared) -> Option<Delivery> {
        let shared = self.shared.upgrade()?;
        Some(Melody { shared }.deliver_local(Some(topic), message))
    }

    /// Registers `cx` to be woken by `close`/`shutdown`; `false` if the instance is
    /// already closed or gone.
    fn watch_close(&self, cx: &mut Context<'_>) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        shared.waiters.register(cx.waker());
        !shared.is_closed()
    }
}

/// The instance's end of the link, kept in its shared state; dropping it (the instance
/// is gone) wakes the backplane so that it ends.
pub(crate) struct Attached {
    state: Arc<LinkState>,
}

impl Attached {
    /// Queues a message for the backplane, or counts it dropped when the queue is full.
    /// Never waits.
    pub(crate) fn forward(&self, audience: Audience, message: &Prepared) {
        let waker = {
            let mut out = lock(&self.state.outgoing);
            if out.detached {
                return;
            }
            if out.queue.len() >= self.state.capacity {
                self.state.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            out.queue.push_back(Outgoing {
                audience,
                message: message.clone(),
            });
            self.state.queued.fetch_add(1, Ordering::Relaxed);
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

struct LinkState {
    capacity: usize,
    outgoing: Mutex<OutgoingQueue>,
    interest: Mutex<Interest>,
    queued: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Default)]
struct OutgoingQueue {
    queue: VecDeque<Outgoing>,
    waker: Option<Waker>,
    /// The instance is gone.
    detached: bool,
}

#[derive(Default)]
struct Interest {
    /// Topics reported to the backplane and not forgotten.
    known: HashSet<Arc<str>>,
    /// Topics reported since the backplane last looked.
    fresh: Vec<Arc<str>>,
    waker: Option<Waker>,
    detached: bool,
}

/// Creates both ends of a link for the instance `shared`.
pub(crate) fn link<R: Runtime>(
    shared: &Arc<Shared<R>>,
    capacity: usize,
) -> (Attached, BackplaneLink<R>) {
    let state = Arc::new(LinkState {
        capacity: capacity.max(1),
        outgoing: Mutex::new(OutgoingQueue::default()),
        interest: Mutex::new(Interest::default()),
        queued: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    });
    let link = BackplaneLink {
        shared: Arc::downgrade(shared),
        rt: shared.rt.clone(),
        state: state.clone(),
    };
    (Attached { state }, link)
}

fn store_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// The link's locks guard plain queues that stay consistent at every step; carry on
/// after a poisoning panic elsewhere.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
