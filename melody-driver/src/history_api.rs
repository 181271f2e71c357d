//! The history API of `Melody` and `Session`: resuming from a position, the gap
//! handler, positions and dropping a topic's history (the mechanism is in
//! `history.rs`).

use std::sync::Arc;
use std::time::Duration;

use melody_core::history::{GapReason, Position, Recovery, Resume};

use crate::history::resume_in;
use crate::melody::Melody;
use crate::runtime::Runtime;
use crate::session::Session;

impl<R: Runtime> Session<R> {
    /// Subscribes to `topic` from `position` (the opaque string a client got as its
    /// last event id): every retained message after it is queued first, then live
    /// ones, with no duplicate and no gap however publishes race this call. `None`
    /// subscribes live only, except for an event stream that sent `Last-Event-ID`,
    /// which resumes from it. On a topic without history this is
    /// [`Session::subscribe`] and the position is ignored.
    ///
    /// It replays this instance's copy as it is: with a backplane that keeps history,
    /// on an instance that may never have listened to `topic`, await
    /// [`Melody::read_back_history`] first (the request hook's resumes do so by
    /// themselves).
    ///
    /// The [`Resume`] says whether recovery was complete. On a gap (the position is
    /// older than the history, from another epoch, or not a position at all), every
    /// retained message is replayed and the session is told: an event stream gets a
    /// `melody-gap` event ahead of the replay (see [`melody_core::history`]), and the
    /// [`Melody::on_history_gap`] handler runs (on the session's task, once the
    /// replay is queued: what it writes follows the replay).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_driver::{api::*, Melody};
    /// # #[derive(Clone, Default)] struct Rt;
    /// # impl Runtime for Rt {
    /// #     fn spawn(&self, _task: BoxFuture) {}
    /// #     fn sleep_until(&self, _deadline: Instant) -> BoxFuture { Box::pin(async {}) }
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// # }
    /// use melody_driver::api::history::{HistoryLimits, HistoryRules, Recovery};
    ///
    /// let rules = HistoryRules::new().prefix("device/", HistoryLimits::new().max_messages(100));
    /// let melody = Melody::with_runtime(Rt, Config::default().history(rules))?;
    /// melody.on_message(|session, position| {
    ///     let resume = session.subscribe_from("device/7", Some(position));
    ///     if resume.recovery != Recovery::Complete {
    ///         session.write("some messages may be missing");
    ///     }
    /// });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn subscribe_from(&self, topic: &str, position: Option<&str>) -> Resume {
        let shared = &self.shared;
        if !shared.history.keeps(topic) {
            let mut resume = Resume::default();
            resume.subscribed = self.subscribe(topic);
            if position.is_some() {
                resume.recovery = Recovery::NotKept;
            }
            return resume;
        }
        let resume = {
            let mut store = shared.history.lock();
            let now = shared.rt.now();
            let key = self.key();
            shared.shards[key.shard as usize].with(&shared.clock, |hub| {
                resume_in(&mut store, hub, key.id, now, topic, position)
            })
        };
        if resume.subscribed {
            if let Some(backplane) = shared.backplane.get() {
                backplane.note_subscribed(topic);
            }
        }
        resume
    }
}

impl<R: Runtime> Melody<R> {
    /// Called when a session's resume found a gap: messages of `topic` published
    /// after the session's position may be missing (see [`Session::subscribe_from`]).
    /// Every retained message is delivered after this, then live ones. Gaps are also
    /// counted in [`HubStats::history`](melody_core::HubStats::history).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_driver::{api::*, Melody};
    /// # #[derive(Clone, Default)] struct Rt;
    /// # impl Runtime for Rt {
    /// #     fn spawn(&self, _task: BoxFuture) {}
    /// #     fn sleep_until(&self, _deadline: Instant) -> BoxFuture { Box::pin(async {}) }
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// # }
    /// # let melody = Melody::with_runtime(Rt, Config::default())?;
    /// melody.on_history_gap(|session, topic, reason| {
    ///     // Tell the client to reload its state of `topic`.
    ///     session.write(&format!("gap {topic} {}", reason.as_str()));
    /// });
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn on_history_gap(
        &self,
        handler: impl Fn(&Session<R>, &str, GapReason) + Send + Sync + 'static,
    ) {
        self.shared
            .update_handlers(|h| h.history_gap = Some(Arc::new(handler)));
    }

    /// Waits until this instance's copy of `topic`'s history holds what the
    /// backplane's shared log retains ([`Backplane::keeps_history`](crate::Backplane::keeps_history)),
    /// at most `within`: on an instance that never listened to `topic`, this makes it
    /// listen and read the log back. Await it in an async handler before
    /// [`Session::subscribe_from`], which does not wait, so that a client resuming on
    /// this instance recovers as on one that always listened. The request hook's
    /// resumes ([`Verdict::resume_from`](crate::Verdict::resume_from), an event
    /// stream's `Last-Event-ID`) wait for it by themselves, within the handshake
    /// timeout. `true` once the copy holds the log, or at once when there is no such
    /// backplane or `topic` keeps no history; `false` if reading failed or `within`
    /// passed (a resume then finds what the copy holds, and reports a gap).
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use melody_driver::{api::*, Melody};
    /// # #[derive(Clone, Default)] struct Rt;
    /// # impl Runtime for Rt {
    /// #     fn spawn(&self, _task: BoxFuture) {}
    /// #     fn sleep_until(&self, _deadline: Instant) -> BoxFuture { Box::pin(async {}) }
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// # }
    /// # fn block_on<F: std::future::Future>(future: F) -> F::Output {
    /// #     let mut future = std::pin::pin!(future);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop {
    /// #         if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) { return out; }
    /// #     }
    /// # }
    /// use melody_driver::api::history::{HistoryLimits, HistoryRules};
    ///
    /// let rules = HistoryRules::new().topic("news", HistoryLimits::new().max_messages(10));
    /// let melody = Melody::with_runtime(Rt, Config::default().history(rules))?;
    /// // Without a backplane keeping history, the copy is the history: no wait.
    /// assert!(block_on(melody.read_back_history("news", Duration::from_secs(5))));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub async fn read_back_history(&self, topic: &str, within: Duration) -> bool {
        let deadline = self.shared.rt.now() + within;
        let topics = vec![topic.to_owned()];
        crate::read_back::await_read_back(self.shared.clone(), topics, deadline).await
    }

    /// The newest position `topic`'s history handed out: `None` if it keeps no
    /// history or nothing was published to it yet.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_driver::{api::*, Melody};
    /// # #[derive(Clone, Default)] struct Rt;
    /// # impl Runtime for Rt {
    /// #     fn spawn(&self, _task: BoxFuture) {}
    /// #     fn sleep_until(&self, _deadline: Instant) -> BoxFuture { Box::pin(async {}) }
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// # }
    /// use melody_driver::api::history::{HistoryLimits, HistoryRules};
    ///
    /// let rules = HistoryRules::new().topic("news", HistoryLimits::new().max_messages(10));
    /// let melody = Melody::with_runtime(Rt, Config::default().history(rules))?;
    /// melody.publish("news", "kept, though nobody listens");
    /// assert!(melody.last_position("news").is_some());
    /// assert!(melody.last_position("chat").is_none());
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn last_position(&self, topic: &str) -> Option<Position> {
        if !self.shared.history.keeps(topic) {
            return None;
        }
        self.shared.history.lock().last_position(topic)
    }

    /// Drops `topic`'s history and returns its memory; its next message starts a new
    /// epoch. `false` if it kept none.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_driver::{api::*, Melody};
    /// # #[derive(Clone, Default)] struct Rt;
    /// # impl Runtime for Rt {
    /// #     fn spawn(&self, _task: BoxFuture) {}
    /// #     fn sleep_until(&self, _deadline: Instant) -> BoxFuture { Box::pin(async {}) }
    /// #     fn now(&self) -> Instant { Instant::now() }
    /// # }
    /// use melody_driver::api::history::{HistoryLimits, HistoryRules};
    ///
    /// let rules = HistoryRules::new().topic("news", HistoryLimits::new().max_messages(10));
    /// let melody = Melody::with_runtime(Rt, Config::default().history(rules))?;
    /// melody.publish("news", "x");
    /// assert!(melody.drop_history("news"));
    /// assert_eq!(melody.stats().history.bytes, 0);
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn drop_history(&self, topic: &str) -> bool {
        self.shared.history.keeps(topic) && self.shared.history.lock().drop_topic(topic)
    }
}
