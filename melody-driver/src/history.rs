//! Topic history for a whole instance: one store shared by every shard, so that a
//! topic has one sequence of positions however its subscribers are spread.
//!
//! Lock order: the history lock, then a shard lock. A publish to a history topic
//! stamps, keeps and fans out under the history lock; a resume reads the replay and
//! subscribes under it too. So a publish lands either wholly before a resume (it is
//! in the replay) or wholly after (it is delivered live): no duplicate, no gap.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use melody_core::history::{
    HistoryLimits, HistoryRules, HistoryStats, HistoryStore, Position, Replay, Resume,
};
use melody_core::{Delivery, Hub, Publication, SessionId, SessionKind};

use crate::slot::Slot;
use crate::sync::lock;

/// The request header an event stream's browser resends on reconnection.
pub(crate) const LAST_EVENT_ID: &str = "last-event-id";

pub(crate) struct SharedHistory {
    /// A copy of the store's rules, read without the lock (they never change).
    rules: HistoryRules,
    store: Mutex<HistoryStore>,
}

impl SharedHistory {
    pub(crate) fn new(rules: HistoryRules) -> Self {
        SharedHistory {
            store: Mutex::new(HistoryStore::new(rules.clone())),
            rules,
        }
    }

    /// Whether `topic` keeps a history (no lock taken).
    pub(crate) fn keeps(&self, topic: &str) -> bool {
        !self.rules.is_empty() && self.rules.limits_for(topic).is_some()
    }

    /// `topic`'s history limits, `None` if it keeps none (no lock taken).
    pub(crate) fn limits_for(&self, topic: &str) -> Option<HistoryLimits> {
        if self.rules.is_empty() {
            return None;
        }
        self.rules.limits_for(topic)
    }

    /// Whether any of `topics` keeps a history.
    pub(crate) fn keeps_any<'a>(&self, mut topics: impl Iterator<Item = &'a String>) -> bool {
        !self.rules.is_empty() && topics.any(|t| self.keeps(t))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HistoryStore> {
        lock(&self.store)
    }

    /// Evicts expired messages; nothing to do unless some rule bounds age.
    pub(crate) fn evict_expired(&self, now: Instant) {
        if !self.rules.is_empty() {
            self.lock().evict_expired(now);
        }
    }

    pub(crate) fn stats(&self) -> HistoryStats {
        if self.rules.is_empty() {
            return HistoryStats::default();
        }
        self.lock().stats()
    }
}

/// Delivers `msg` to `topic` with `fan`: on a history topic, stamped and kept first,
/// and fanned out while the history is held.
pub(crate) fn publish_kept(
    history: &SharedHistory,
    now: Instant,
    topic: &str,
    msg: &Publication,
    fan: impl FnOnce(&Publication) -> Delivery,
) -> Delivery {
    if !history.keeps(topic) {
        return fan(msg);
    }
    let mut store = history.lock();
    match store.append(topic, now, msg) {
        Some(stamped) => fan(&stamped),
        None => fan(msg),
    }
}

/// Subscribes session `id` of `hub` to `topic` from `from` (as the client sent it),
/// replaying from `store`; the caller holds the history lock, then the shard's.
pub(crate) fn resume_in(
    store: &mut HistoryStore,
    hub: &mut Hub<Slot>,
    id: SessionId,
    now: Instant,
    topic: &str,
    from: Option<&str>,
) -> Resume {
    let from = from.map(str::to_owned).or_else(|| stream_position(hub, id));
    let replay: Replay = match from.as_deref().map(str::parse::<Position>) {
        None => store.replay(topic, now, None),
        Some(Ok(position)) => store.replay(topic, now, Some(position)),
        Some(Err(_)) => store.replay_unrecognized(topic, now),
    };
    hub.resume_with(id, now, topic, replay)
}

/// An event stream's `Last-Event-ID`, if it sent one.
fn stream_position(hub: &Hub<Slot>, id: SessionId) -> Option<String> {
    if hub.kind(id) != Some(SessionKind::EventStream) {
        return None;
    }
    let value = hub.request(id)?.headers().get(LAST_EVENT_ID)?;
    value.to_str().ok().map(str::to_owned)
}
