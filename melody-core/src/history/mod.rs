//! Topic history and resume: a client that reconnects gets what it missed.
//!
//! A topic matched by the config's [`HistoryRules`] keeps its newest messages (bounded
//! by count, bytes and age; at least one bound) and gives every message a
//! [`Position`]: a sequence number, monotonic within the topic, and an epoch that
//! changes whenever the history is lost (a restart, the topic's history dropped).
//! Topics without a rule keep nothing and cost nothing. History holds the encoded
//! frames themselves (shared `Bytes`), counted against its own limits, never against
//! any session's outbox.
//!
//! **How sessions see positions.**
//! - Event streams get the position as each event's `id:`; the browser sends it back
//!   as `Last-Event-ID` when it reconnects. On a history topic the position replaces
//!   an id the publisher set: the id must be one the history can resume from.
//! - WebSocket sessions see no change unless they opt in with
//!   [`Admission::positions`](crate::Admission::positions): then each message of a
//!   history topic arrives as one frame holding the position, a line feed (`\n`),
//!   then the data (same frame kind). That frame is encoded once per message and
//!   shared by every opted-in session; other sessions keep the plain frame.
//!
//! **Resume.** [`Hub::subscribe_from`](crate::Hub::subscribe_from) subscribes a
//! session and, in the same call, queues every retained message after the position,
//! then live ones follow: no duplicate, no gap. Its [`Resume`] says whether recovery
//! was complete. An event stream whose request carried `Last-Event-ID` resumes from
//! it whenever it subscribes to a history topic.
//!
//! **Gaps.** When the position is older than what is retained, from another epoch, or
//! not a position at all, every retained message is replayed and the session is told
//! first: an event stream gets an event named [`GAP_EVENT`] (`melody-gap`), whose data
//! is the [`GapReason`] (`too-old`, `other-epoch`, `unrecognized`, `outbox-full`), and
//! every session gets [`Event::HistoryGap`](crate::Event::HistoryGap). A replay longer
//! than the session's outbox takes (its message bound) keeps its newest part and is a
//! gap too (`outbox-full`). Gaps are counted in [`HistoryStats::gaps`].
//!
//! **Other stores.** [`HistorySource`] is the seam a history kept elsewhere (a
//! backplane's) implements: stamp a message with the topic's next position, and list
//! what is retained after a position. A node can also keep its own copy of the recent
//! part of a shared log, with positions handed out by that log:
//! [`HistoryStore::append_at`].

mod log;
mod position;
mod replay;
mod rules;
mod store;

use std::time::Instant;

pub use position::{Position, PositionError};
pub use replay::{GapReason, Recovery, Replay, Resume};
pub use rules::{HistoryLimits, HistoryRuleError, HistoryRules};
pub use store::HistoryStore;

use crate::publication::Publication;

/// The name of the event an event stream gets when its resume found a gap.
///
/// ```
/// assert_eq!(melody_core::history::GAP_EVENT, "melody-gap");
/// ```
pub const GAP_EVENT: &str = "melody-gap";

/// What a history holds and has counted.
///
/// ```
/// use melody_core::history::HistoryStats;
///
/// let stats = HistoryStats::default();
/// assert_eq!((stats.messages, stats.bytes, stats.gaps), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryStats {
    /// Topics keeping a history now.
    pub topics: usize,
    /// Messages retained, all topics together.
    pub messages: usize,
    /// Bytes retained (encoded WebSocket frames), all topics together.
    pub bytes: usize,
    /// Resumes that found a gap (the session was told).
    pub gaps: u64,
    /// Messages to a history topic that got no position because
    /// [`HistoryRules::max_topics`] topics already kept one.
    pub unrecorded: u64,
}

impl HistoryStats {
    /// Adds `other`'s figures to these (histories of several stores).
    ///
    /// ```
    /// use melody_core::history::HistoryStats;
    ///
    /// let mut total = HistoryStats::default();
    /// total.merge(HistoryStats::default());
    /// assert_eq!(total, HistoryStats::default());
    /// ```
    pub fn merge(&mut self, other: HistoryStats) {
        self.topics += other.topics;
        self.messages += other.messages;
        self.bytes += other.bytes;
        self.gaps += other.gaps;
        self.unrecorded += other.unrecorded;
    }
}

/// Where a topic's history is kept: in memory ([`HistoryStore`]) or elsewhere (a
/// backplane, whose positions then come from its own log).
///
/// Implementations stamp and keep in one step, so that positions follow the order
/// messages are delivered in, and answer "what is retained after this position".
///
/// ```
/// use std::time::Instant;
/// use melody_core::history::{HistoryLimits, HistoryRules, HistorySource, HistoryStore};
/// use melody_core::Publication;
///
/// fn publish_kept(source: &mut dyn HistorySource, topic: &str, msg: &Publication) -> bool {
///     source.append(topic, Instant::now(), msg).is_some()
/// }
/// let mut store = HistoryStore::new(HistoryRules::new().topic("a", HistoryLimits::new().max_messages(1)));
/// assert!(publish_kept(&mut store, "a", &Publication::text("x")));
/// ```
pub trait HistorySource {
    /// Whether `topic` keeps a history.
    fn keeps(&self, topic: &str) -> bool;
    /// Stamps `msg` with `topic`'s next position and keeps it; `None` if it is not kept.
    fn append(&mut self, topic: &str, now: Instant, msg: &Publication) -> Option<Publication>;
    /// The retained messages of `topic` after `from`, and whether they are complete.
    fn replay(&mut self, topic: &str, now: Instant, from: Option<Position>) -> Replay;
    /// What the history holds and has counted.
    fn stats(&self) -> HistoryStats;
}
