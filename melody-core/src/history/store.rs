//! Every topic's history on one node: the logs, their limits, the epochs handed out.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use crate::history::log::TopicLog;
use crate::history::{
    GapReason, HistoryRules, HistorySource, HistoryStats, Position, Recovery, Replay,
};
use crate::publication::Publication;

/// The histories of one node's topics, kept in memory under [`HistoryRules`].
///
/// Deterministic apart from the first epoch (random per process unless
/// [`HistoryRules::epoch_seed`] is set): time comes in as `now`, and age eviction
/// happens on the calls that take it. Topics without a history rule cost nothing.
///
/// ```
/// use std::time::{Duration, Instant};
/// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore, Recovery};
/// use melody_core::Publication;
///
/// let t0 = Instant::now();
/// let rules = HistoryRules::new().prefix("device/", HistoryLimits::new().max_messages(2));
/// let mut store = HistoryStore::new(rules);
/// assert!(store.append("chat", t0, &Publication::text("x")).is_none(), "no rule, no history");
/// let first = store.append("device/1", t0, &Publication::text("a")).and_then(|m| m.position());
/// store.append("device/1", t0, &Publication::text("b"));
/// store.append("device/1", t0, &Publication::text("c"));
/// // "a" was evicted by the count bound: resuming from before it is a gap.
/// assert_eq!(store.stats().messages, 2);
/// let replay = store.replay("device/1", t0, first);
/// assert_eq!(replay.recovery, Recovery::Complete, "b and c follow a");
/// ```
pub struct HistoryStore {
    rules: HistoryRules,
    logs: HashMap<Arc<str>, TopicLog>,
    next_epoch: u64,
    stats: HistoryStats,
}

impl std::fmt::Debug for HistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryStore")
            .field("topics", &self.logs.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl HistoryStore {
    /// A store keeping what `rules` ask for (validate them first:
    /// [`Config::validate`](crate::Config::validate) does).
    ///
    /// ```
    /// use melody_core::history::{HistoryRules, HistoryStore};
    ///
    /// let store = HistoryStore::new(HistoryRules::new());
    /// assert_eq!(store.stats().topics, 0);
    /// ```
    pub fn new(rules: HistoryRules) -> Self {
        let next_epoch = rules
            .epoch_seed
            .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
        HistoryStore {
            rules,
            logs: HashMap::new(),
            next_epoch,
            stats: HistoryStats::default(),
        }
    }

    /// The rules the store keeps history under.
    ///
    /// ```
    /// use melody_core::history::{HistoryRules, HistoryStore};
    ///
    /// assert!(HistoryStore::new(HistoryRules::new()).rules().is_empty());
    /// ```
    pub fn rules(&self) -> &HistoryRules {
        &self.rules
    }

    /// Whether `topic` keeps a history.
    ///
    /// ```
    /// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore};
    ///
    /// let store = HistoryStore::new(HistoryRules::new().topic("a", HistoryLimits::new().max_messages(1)));
    /// assert!(store.keeps("a") && !store.keeps("b"));
    /// ```
    pub fn keeps(&self, topic: &str) -> bool {
        !self.rules.is_empty() && self.rules.limits_for(topic).is_some()
    }

    /// Gives `msg` the next position of `topic` and keeps it. Returns the stamped
    /// message to deliver, or `None` when the topic keeps no history, or when
    /// [`HistoryRules::max_topics`] topics already do (counted in
    /// [`HistoryStats::unrecorded`]; the message goes out live, without a position).
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore};
    /// use melody_core::Publication;
    ///
    /// let mut store = HistoryStore::new(
    ///     HistoryRules::new().topic("a", HistoryLimits::new().max_messages(1)).epoch_seed(0x10),
    /// );
    /// let stamped = store.append("a", Instant::now(), &Publication::text("x")).unwrap();
    /// assert_eq!(stamped.position().map(|p| p.to_string()), Some("10.1".into()));
    /// assert_eq!(stamped.event_id(), Some("10.1"), "event streams get it as `id:`");
    /// ```
    pub fn append(&mut self, topic: &str, now: Instant, msg: &Publication) -> Option<Publication> {
        if self.rules.is_empty() {
            return None;
        }
        if let Some(log) = self.logs.get_mut(topic) {
            return Some(log.append(now, msg));
        }
        let limits = self.rules.limits_for(topic)?;
        if self.logs.len() >= self.rules.max_topics {
            self.stats.unrecorded += 1;
            return None;
        }
        let epoch = self.take_epoch();
        let log = self
            .logs
            .entry(Arc::from(topic))
            .or_insert_with(|| TopicLog::new(epoch, limits));
        Some(log.append(now, msg))
    }

    /// Keeps `msg` at a `position` handed out elsewhere: the seam for a history whose
    /// positions come from a shared log (a backplane's stream), with this store as the
    /// node's copy of its recent part. Returns the stamped message, or `None` when the
    /// topic keeps no history, the position is a duplicate (at or before the newest
    /// kept), or the topic cap is reached. A position of another epoch starts the
    /// topic's history over; a hole in the sequence drops what came before it, so a
    /// resume from before the hole is a gap.
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore, Position, Recovery};
    /// use melody_core::Publication;
    ///
    /// let t0 = Instant::now();
    /// let mut store = HistoryStore::new(HistoryRules::new().topic("a", HistoryLimits::new().max_messages(10)));
    /// let msg = Publication::text("x");
    /// assert!(store.append_at("a", t0, Position::new(7, 41), &msg).is_some());
    /// assert!(store.append_at("a", t0, Position::new(7, 41), &msg).is_none(), "duplicate");
    /// store.append_at("a", t0, Position::new(7, 42), &msg);
    /// let replay = store.replay("a", t0, Some(Position::new(7, 41)));
    /// assert_eq!((replay.recovery, replay.messages.len()), (Recovery::Complete, 1));
    /// let replay = store.replay("a", t0, Some(Position::new(7, 30)));
    /// assert!(!replay.recovery.is_complete(), "41 is the oldest this node has");
    /// ```
    pub fn append_at(
        &mut self,
        topic: &str,
        now: Instant,
        position: Position,
        msg: &Publication,
    ) -> Option<Publication> {
        if position.sequence() == 0 {
            return None; // sequences start at 1
        }
        if let Some(log) = self.logs.get_mut(topic) {
            return log.append_at(now, position, msg);
        }
        let limits = self.rules.limits_for(topic)?;
        if self.logs.len() >= self.rules.max_topics {
            self.stats.unrecorded += 1;
            return None;
        }
        let log = self
            .logs
            .entry(Arc::from(topic))
            .or_insert_with(|| TopicLog::new(position.epoch(), limits));
        log.append_at(now, position, msg)
    }

    /// Puts messages read from a shared log (`entries`, oldest first, positions of
    /// one epoch) in front of what this node's copy of `topic` keeps: what the node
    /// missed before it listened (or while it could not). The copy becomes the
    /// entries, then what it kept after the last of them; kept messages of another
    /// epoch are dropped. Delivers nothing: it serves later resumes. The entries count
    /// as kept from `now` for the age bound. Returns how many messages the copy holds
    /// afterwards; 0 when the topic keeps no history or `entries` is empty.
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore, Position, Recovery};
    /// use melody_core::Publication;
    ///
    /// let t0 = Instant::now();
    /// let mut store = HistoryStore::new(HistoryRules::new().topic("a", HistoryLimits::new().max_messages(10)));
    /// let msg = Publication::text("x");
    /// store.append_at("a", t0, Position::new(7, 5), &msg); // heard live
    /// let older = (1..=4).map(|seq| (Position::new(7, seq), msg.clone())).collect();
    /// assert_eq!(store.backfill("a", t0, older), 5);
    /// let replay = store.replay("a", t0, Some(Position::new(7, 1)));
    /// assert_eq!((replay.recovery, replay.messages.len()), (Recovery::Complete, 4));
    /// ```
    pub fn backfill(
        &mut self,
        topic: &str,
        now: Instant,
        entries: Vec<(Position, Publication)>,
    ) -> usize {
        let Some(limits) = self.rules.limits_for(topic) else {
            return 0;
        };
        let Some(&(last_read, _)) = entries.last() else {
            return 0;
        };
        if !self.logs.contains_key(topic) && self.logs.len() >= self.rules.max_topics {
            self.stats.unrecorded += 1;
            return 0;
        }
        let epoch = last_read.epoch();
        let newer: Vec<Publication> = self
            .logs
            .get(topic)
            .map(TopicLog::all)
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                m.position()
                    .is_some_and(|p| p.epoch() == epoch && p.sequence() > last_read.sequence())
            })
            .collect();
        let mut log = TopicLog::new(epoch, limits);
        for (position, msg) in entries.iter().filter(|(p, _)| p.epoch() == epoch) {
            log.append_at(now, *position, msg);
        }
        for msg in &newer {
            if let Some(position) = msg.position() {
                log.append_at(now, position, msg);
            }
        }
        let held = log.len();
        self.logs.insert(Arc::from(topic), log);
        held
    }

    fn take_epoch(&mut self) -> u64 {
        let epoch = self.next_epoch;
        self.next_epoch = self.next_epoch.wrapping_add(1);
        epoch
    }

    /// The retained messages of `topic` after `from` (evicting the expired first),
    /// and whether they are everything published after it. `None` asks for nothing:
    /// [`Recovery::Live`]. Gaps are counted in [`HistoryStats::gaps`].
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_core::history::{GapReason, HistoryLimits, HistoryRules, HistoryStore, Position, Recovery};
    /// use melody_core::Publication;
    ///
    /// let t0 = Instant::now();
    /// let mut store = HistoryStore::new(HistoryRules::new().topic("a", HistoryLimits::new().max_messages(5)));
    /// store.append("a", t0, &Publication::text("x"));
    /// let stranger = Position::new(0xdead, 1);
    /// let replay = store.replay("a", t0, Some(stranger));
    /// assert_eq!(replay.recovery, Recovery::Gap(GapReason::OtherEpoch));
    /// assert_eq!(replay.messages.len(), 1, "everything retained, after telling");
    /// ```
    pub fn replay(&mut self, topic: &str, now: Instant, from: Option<Position>) -> Replay {
        let Some(from) = from else {
            return Replay::empty(Recovery::Live);
        };
        if !self.keeps(topic) {
            return Replay::empty(Recovery::NotKept);
        }
        let replay = match self.logs.get_mut(topic) {
            Some(log) => {
                log.evict(now);
                log.after(from)
            }
            // Nothing published since the history began (or since it was dropped):
            // the position cannot be from this run of it.
            None => Replay::empty(Recovery::Gap(GapReason::OtherEpoch)),
        };
        if replay.recovery.gap().is_some() {
            self.stats.gaps += 1;
        }
        replay
    }

    /// Every retained message of `topic`, for a client whose position did not parse:
    /// a gap ([`GapReason::Unrecognized`]), counted.
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_core::history::{GapReason, HistoryLimits, HistoryRules, HistoryStore, Recovery};
    /// use melody_core::Publication;
    ///
    /// let t0 = Instant::now();
    /// let mut store = HistoryStore::new(HistoryRules::new().topic("a", HistoryLimits::new().max_messages(5)));
    /// store.append("a", t0, &Publication::text("x"));
    /// let replay = store.replay_unrecognized("a", t0);
    /// assert_eq!(replay.recovery, Recovery::Gap(GapReason::Unrecognized));
    /// assert_eq!((replay.messages.len(), store.stats().gaps), (1, 1));
    /// ```
    pub fn replay_unrecognized(&mut self, topic: &str, now: Instant) -> Replay {
        if !self.keeps(topic) {
            return Replay::empty(Recovery::NotKept);
        }
        self.stats.gaps += 1;
        let messages = match self.logs.get_mut(topic) {
            Some(log) => {
                log.evict(now);
                log.all()
            }
            None => Vec::new(),
        };
        Replay::new(messages, Recovery::Gap(GapReason::Unrecognized))
    }

    /// The newest position `topic` handed out, if any.
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore, Position};
    /// use melody_core::Publication;
    ///
    /// let mut store = HistoryStore::new(
    ///     HistoryRules::new().topic("a", HistoryLimits::new().max_messages(1)).epoch_seed(3),
    /// );
    /// assert_eq!(store.last_position("a"), None);
    /// store.append("a", Instant::now(), &Publication::text("x"));
    /// assert_eq!(store.last_position("a"), Some(Position::new(3, 1)));
    /// ```
    pub fn last_position(&self, topic: &str) -> Option<Position> {
        self.logs.get(topic).and_then(TopicLog::last_position)
    }

    /// Evicts every expired message of every topic, giving their memory back.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore};
    /// use melody_core::Publication;
    ///
    /// let t0 = Instant::now();
    /// let minute = Duration::from_secs(60);
    /// let mut store = HistoryStore::new(HistoryRules::new().topic("a", HistoryLimits::new().max_age(minute)));
    /// store.append("a", t0, &Publication::text("x"));
    /// store.evict_expired(t0 + minute);
    /// assert_eq!(store.stats().messages, 0);
    /// ```
    pub fn evict_expired(&mut self, now: Instant) {
        for log in self.logs.values_mut() {
            log.evict(now);
        }
    }

    /// Drops `topic`'s history: its memory is returned, and its next message starts
    /// a new epoch (positions handed out so far become gaps). `false` if it had none.
    ///
    /// ```
    /// use std::time::Instant;
    /// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore};
    /// use melody_core::Publication;
    ///
    /// let mut store = HistoryStore::new(HistoryRules::new().topic("a", HistoryLimits::new().max_messages(5)));
    /// store.append("a", Instant::now(), &Publication::text("x"));
    /// assert!(store.drop_topic("a"));
    /// assert_eq!((store.stats().topics, store.stats().bytes), (0, 0));
    /// ```
    pub fn drop_topic(&mut self, topic: &str) -> bool {
        let dropped = self.logs.remove(topic).is_some();
        if self.logs.is_empty() {
            self.logs = HashMap::new();
        }
        dropped
    }

    /// What the store holds and has counted.
    ///
    /// ```
    /// use melody_core::history::{HistoryRules, HistoryStore};
    ///
    /// assert_eq!(HistoryStore::new(HistoryRules::new()).stats().messages, 0);
    /// ```
    pub fn stats(&self) -> HistoryStats {
        let mut stats = self.stats;
        stats.topics = self.logs.len();
        for log in self.logs.values() {
            stats.messages += log.len();
            stats.bytes += log.bytes();
        }
        stats
    }
}

impl HistorySource for HistoryStore {
    fn keeps(&self, topic: &str) -> bool {
        HistoryStore::keeps(self, topic)
    }

    fn append(&mut self, topic: &str, now: Instant, msg: &Publication) -> Option<Publication> {
        HistoryStore::append(self, topic, now, msg)
    }

    fn replay(&mut self, topic: &str, now: Instant, from: Option<Position>) -> Replay {
        HistoryStore::replay(self, topic, now, from)
    }

    fn stats(&self) -> HistoryStats {
        HistoryStore::stats(self)
    }
}
