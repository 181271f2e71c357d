//! What a subscription from a position gets: the retained messages after it, and
//! whether they are everything that was missed.

use crate::history::Position;
use crate::publication::Publication;

/// Whether a subscription from a position recovered everything published after it.
///
/// ```
/// use melody_core::history::{GapReason, Recovery};
///
/// assert!(Recovery::Complete.is_complete());
/// assert!(!Recovery::Gap(GapReason::TooOld).is_complete());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recovery {
    /// No position was given: the subscription is live from now on.
    Live,
    /// The topic keeps no history: the subscription is live, the position ignored.
    NotKept,
    /// Every message published after the position is replayed (or none was).
    Complete,
    /// Messages after the position may be missing: every retained message is replayed
    /// and the session is told (see [`crate::history`]).
    Gap(GapReason),
}

impl Recovery {
    /// Whether nothing was missed: only [`Recovery::Complete`].
    ///
    /// ```
    /// use melody_core::history::Recovery;
    ///
    /// assert!(!Recovery::Live.is_complete(), "no position, nothing recovered");
    /// ```
    pub fn is_complete(&self) -> bool {
        matches!(self, Recovery::Complete)
    }

    /// The gap, if there is one.
    ///
    /// ```
    /// use melody_core::history::{GapReason, Recovery};
    ///
    /// assert_eq!(Recovery::Gap(GapReason::OtherEpoch).gap(), Some(GapReason::OtherEpoch));
    /// assert_eq!(Recovery::Complete.gap(), None);
    /// ```
    pub fn gap(&self) -> Option<GapReason> {
        match self {
            Recovery::Gap(reason) => Some(*reason),
            _ => None,
        }
    }
}

/// Why messages after a position may be missing.
///
/// ```
/// use melody_core::history::GapReason;
///
/// assert_eq!(GapReason::TooOld.as_str(), "too-old");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GapReason {
    /// Messages after the position were evicted (count, bytes or age bound).
    TooOld,
    /// The position is from another epoch: the history was lost since (a restart,
    /// the topic's history dropped), or it is another topic's.
    OtherEpoch,
    /// The position was not one this history handed out (garbage, or ahead of it).
    Unrecognized,
    /// More was retained than the session's outbox could take: the oldest of the
    /// replay were left out, the newest delivered.
    OutboxFull,
}

impl GapReason {
    /// The reason as it appears in the gap event's data: `too-old`, `other-epoch`,
    /// `unrecognized`, `outbox-full`.
    ///
    /// ```
    /// use melody_core::history::GapReason;
    ///
    /// assert_eq!(GapReason::OtherEpoch.as_str(), "other-epoch");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            GapReason::TooOld => "too-old",
            GapReason::OtherEpoch => "other-epoch",
            GapReason::Unrecognized => "unrecognized",
            GapReason::OutboxFull => "outbox-full",
        }
    }
}

/// The retained messages after a position, in order, and whether they are all that
/// was published after it.
///
/// ```
/// use std::time::Instant;
/// use melody_core::history::{HistoryLimits, HistoryRules, HistoryStore, Recovery};
/// use melody_core::Publication;
///
/// let t0 = Instant::now();
/// let mut store = HistoryStore::new(
///     HistoryRules::new().topic("news", HistoryLimits::new().max_messages(10)),
/// );
/// let first = store.append("news", t0, &Publication::text("one")).and_then(|p| p.position());
/// store.append("news", t0, &Publication::text("two"));
/// let replay = store.replay("news", t0, first);
/// assert_eq!(replay.recovery, Recovery::Complete);
/// assert_eq!(&replay.messages[0].payload()[..], b"two");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Replay {
    /// The messages to deliver before live ones, oldest first.
    pub messages: Vec<Publication>,
    /// Whether they are everything after the position.
    pub recovery: Recovery,
}

impl Replay {
    /// Nothing to replay, with `recovery`.
    ///
    /// ```
    /// use melody_core::history::{Recovery, Replay};
    ///
    /// assert!(Replay::empty(Recovery::Live).messages.is_empty());
    /// ```
    pub fn empty(recovery: Recovery) -> Self {
        Replay {
            messages: Vec::new(),
            recovery,
        }
    }

    /// `messages` with `recovery` (for a [`HistorySource`](crate::history::HistorySource)
    /// kept elsewhere).
    ///
    /// ```
    /// use melody_core::history::{Recovery, Replay};
    /// use melody_core::Publication;
    ///
    /// let replay = Replay::new(vec![Publication::text("x")], Recovery::Complete);
    /// assert_eq!(replay.messages.len(), 1);
    /// ```
    pub fn new(messages: Vec<Publication>, recovery: Recovery) -> Self {
        Replay { messages, recovery }
    }
}

/// What subscribing from a position did (see
/// [`Hub::subscribe_from`](crate::Hub::subscribe_from)).
///
/// ```
/// use melody_core::history::{Recovery, Resume};
///
/// let resume = Resume::default();
/// assert!(!resume.subscribed);
/// assert!(!resume.is_complete());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resume {
    /// Whether the session was subscribed (`false`: unknown, over, or subscribed
    /// already; nothing was replayed).
    pub subscribed: bool,
    /// Whether the replay is everything published after the position.
    pub recovery: Recovery,
    /// Retained messages queued for the session.
    pub replayed: usize,
    /// Retained messages the session's outbox dropped (counted as drops too).
    pub dropped: usize,
    /// The newest position replayed, if any.
    pub last: Option<Position>,
}

impl Default for Resume {
    fn default() -> Self {
        Resume {
            subscribed: false,
            recovery: Recovery::Live,
            replayed: 0,
            dropped: 0,
            last: None,
        }
    }
}

impl Resume {
    /// Whether the session got everything published after its position: the
    /// recovery is complete and the outbox dropped none of it.
    ///
    /// ```
    /// use melody_core::history::Resume;
    ///
    /// assert!(!Resume::default().is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.subscribed && self.recovery.is_complete() && self.dropped == 0
    }
}
