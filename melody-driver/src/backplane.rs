//! The backplane seam: how several melody instances behind a load balancer act as one.
//!
//! A [`Backplane`] attached with [`Melody::attach_backplane`](crate::Melody::attach_backplane) receives, through its
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

use std::future::poll_fn;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use melody_core::history::{HistoryLimits, Position};
use melody_core::{Delivery, Publication};

use crate::fanout;
use crate::link::{
    Attached, Delivered, ForwardCounters, LinkState, Outgoing, Taken, DEFAULT_BACKPLANE_QUEUE,
};
use crate::runtime::{BoxFuture, Runtime};
use crate::shared::Shared;

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

    /// Whether this backplane keeps the history of history topics in a log shared by
    /// every instance (melody-redis does, in Redis streams). Then a publish to a
    /// history topic is not delivered here at once: it is handed over
    /// ([`Outgoing::kept`](crate::Outgoing::kept)), and every instance, this one
    /// included, delivers it when the backplane hands it back with its position
    /// ([`BackplaneLink::deliver_at`]), so that every instance sees the same order and
    /// the same positions. `false` by default: positions are then per instance.
    fn keeps_history(&self) -> bool {
        false
    }

    /// The backplane's work, spawned once on the instance's runtime by
    /// [`Melody::attach_backplane`](crate::Melody::attach_backplane): take outgoing messages from `link` and send them;
    /// deliver what arrives with `link`'s `deliver_*` methods. It should end when
    /// [`BackplaneLink::next_outgoing`] returns `false`.
    fn run(self, link: BackplaneLink<R>) -> BoxFuture;
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
        match self.state.take_outgoing(batch, max, cx.waker()) {
            Taken::Some => Poll::Ready(true),
            Taken::Detached => Poll::Ready(false),
            Taken::Waiting if !open => Poll::Ready(false),
            Taken::Waiting => Poll::Pending,
        }
    }

    /// Waits until a session subscribes to a topic this link has not reported yet, and
    /// moves those topics into `topics`. A history topic whose log a resume waits for
    /// and that was not read back ([`BackplaneLink::history_read_back`]) is reported
    /// again. `false` once the instance is closed or dropped.
    pub async fn next_new_topics(&self, topics: &mut Vec<Arc<str>>) -> bool {
        poll_fn(|cx| self.poll_new_topics(cx, topics)).await
    }

    /// The poll form of [`BackplaneLink::next_new_topics`].
    pub fn poll_new_topics(&self, cx: &mut Context<'_>, topics: &mut Vec<Arc<str>>) -> Poll<bool> {
        if !self.watch_close(cx) {
            return Poll::Ready(false);
        }
        match self.state.take_new_topics(topics, cx.waker()) {
            Taken::Some => Poll::Ready(true),
            Taken::Detached => Poll::Ready(false),
            Taken::Waiting => Poll::Pending,
        }
    }

    /// Every topic reported so far and not forgotten: what to subscribe to again after a
    /// reconnection.
    pub fn known_topics(&self) -> Vec<Arc<str>> {
        self.state.known_topics()
    }

    /// Forgets `topic` if no session of this instance subscribes to it any more, and
    /// says whether it did (the backplane may then stop listening to it). A session that
    /// subscribes afterwards reports the topic again. A history topic of a backplane
    /// that keeps history is never forgotten: this instance's copy of the shared log
    /// stays complete for the clients that resume here later.
    pub fn forget_if_unused(&self, topic: &str) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let keeps_history = shared.backplane.get().is_some_and(|b| b.keeps_history);
        if keeps_history && shared.history.keeps(topic) {
            return false;
        }
        self.state
            .forget_if(topic, || fanout::subscriber_count(&shared, topic) == 0)
    }

    /// Delivers a message from another instance to every local session; `None` if the
    /// instance is gone. Never forwarded again.
    pub fn deliver_to_all(&self, message: &Publication) -> Option<Delivery> {
        let shared = self.shared.upgrade()?;
        Some(fanout::deliver_local(&shared, None, message))
    }

    /// Delivers a message from another instance to the local subscribers of `topic`;
    /// `None` if the instance is gone. Never forwarded again.
    pub fn deliver_to_topic(&self, topic: &str, message: &Publication) -> Option<Delivery> {
        let shared = self.shared.upgrade()?;
        Some(fanout::deliver_local(&shared, Some(topic), message))
    }

    /// Delivers a message at a `position` handed out by the backplane's shared log:
    /// kept in this instance's history (its copy of the log's recent part, see
    /// [`HistoryStore::append_at`](melody_core::history::HistoryStore::append_at)) and
    /// delivered to the local subscribers of `topic`, under the history lock so that
    /// a resume sees it either in its replay or live. A position this instance already
    /// delivered gives `Some` with nothing queued and [`Delivered::Duplicate`]; `None`
    /// if the instance is gone. Never forwarded again.
    pub fn deliver_at(
        &self,
        topic: &str,
        position: Position,
        message: &Publication,
    ) -> Option<(Delivered, Delivery)> {
        let shared = self.shared.upgrade()?;
        Some(fanout::deliver_at(&shared, topic, position, message))
    }

    /// Delivers a message of a history topic to the local subscribers of `topic`
    /// without a position and without keeping it: what a backplane that keeps
    /// history does with a publish of this instance its log did not take (it was
    /// unreachable, say). `None` if the instance is gone. Never forwarded again.
    pub fn deliver_unkept(&self, topic: &str, message: &Publication) -> Option<Delivery> {
        let shared = self.shared.upgrade()?;
        Some(fanout::deliver_unkept(&shared, topic, message))
    }

    /// Puts messages read from the backplane's shared log (oldest first, one epoch)
    /// in front of this instance's copy of `topic`'s history, for later resumes; see
    /// [`HistoryStore::backfill`](melody_core::history::HistoryStore::backfill).
    /// Delivers nothing. Returns how many messages the copy holds; `None` if the
    /// instance is gone.
    pub fn backfill(&self, topic: &str, entries: Vec<(Position, Publication)>) -> Option<usize> {
        let shared = self.shared.upgrade()?;
        if !shared.history.keeps(topic) {
            return Some(0);
        }
        let now = shared.rt.now();
        let held = shared.history.lock().backfill(topic, now, entries);
        Some(held)
    }

    /// Tells the instance that `topic`'s shared log was read into its copy with
    /// [`BackplaneLink::backfill`] after the backplane started listening to the topic
    /// (or that the log holds nothing yet): a resume here can now replay all the log
    /// retains. Resumes through the request hook ([`Verdict::resume_from`](crate::Verdict::resume_from),
    /// an event stream's `Last-Event-ID`) on a topic not read back yet wait for this,
    /// up to the handshake timeout. Once per topic is enough: the copy is kept
    /// up to date from then on by [`BackplaneLink::deliver_at`].
    pub fn history_read_back(&self, topic: &str) {
        self.state.settle_read_back(topic, true);
    }

    /// Tells the instance that reading `topic`'s shared log back failed this time
    /// (the connection dropped, say): the resumes waiting for it go on at once
    /// against what the copy holds (a gap, signalled and counted), instead of waiting
    /// for their deadline. Later resumes wait for the next read-back.
    pub fn history_read_back_failed(&self, topic: &str) {
        self.state.settle_read_back(topic, false);
    }

    /// The history limits of `topic` in this instance's config, `None` if it keeps no
    /// history: what a backplane's shared log trims to.
    pub fn history_limits(&self, topic: &str) -> Option<HistoryLimits> {
        let shared = self.shared.upgrade()?;
        shared.history.limits_for(topic)
    }

    /// Registers `cx` to be woken by `close`/`shutdown`; `false` if the instance is
    /// already closed or gone.
    fn watch_close(&self, cx: &mut Context<'_>) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        shared.lifecycle.waiters.register(cx.waker());
        !shared.is_closed()
    }
}

/// Creates both ends of a link for the instance `shared`.
pub(crate) fn link<R: Runtime>(
    shared: &Arc<Shared<R>>,
    capacity: usize,
    keeps_history: bool,
) -> (Attached, BackplaneLink<R>) {
    let state = LinkState::new(capacity);
    let link = BackplaneLink {
        shared: Arc::downgrade(shared),
        rt: shared.rt.clone(),
        state: state.clone(),
    };
    (
        Attached {
            state,
            keeps_history,
        },
        link,
    )
}
