//! Who a message goes to, and what happened to it.

use crate::session::SessionId;
use crate::SessionView;

/// The recipients of a [`Hub::broadcast`](crate::Hub::broadcast).
pub enum Target<'a, U> {
    /// Every open session.
    All,
    /// Every open session but one (olahol/melody's `BroadcastOthers`).
    AllExcept(SessionId),
    /// These sessions (olahol/melody's `BroadcastMultiple`).
    List(&'a [SessionId]),
    /// The open sessions for which the predicate holds (olahol/melody's
    /// `BroadcastFilter`). It runs synchronously over a read-only view.
    Filter(&'a dyn Fn(&SessionView<'_, U>) -> bool),
    /// The subscribers of a topic. Costs O(subscribers), not O(sessions).
    Topic(&'a str),
    /// The subscribers of a topic but one (typically the publisher).
    TopicExcept(&'a str, SessionId),
}

/// What a `send` or `broadcast` did, recipient by recipient.
///
/// Unlike olahol/melody, whose `Write` returns nil when the message is dropped, every
/// outcome is counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use = "a Delivery says how many messages were dropped"]
pub struct Delivery {
    /// Recipients whose outbox took the message.
    pub queued: usize,
    /// Messages lost to full outboxes: the new one refused (`DropNewest`), older ones
    /// evicted (`DropOldest`), or a slow consumer's queue discarded (`Disconnect`).
    pub dropped: usize,
    /// Recipients skipped because they are closing, over, or unknown.
    pub closed: usize,
    /// Recipients closed as slow consumers by `DropPolicy::Disconnect`.
    pub disconnected: usize,
}

impl Delivery {
    /// Adds another delivery's counts to this one.
    pub fn merge(&mut self, other: Delivery) {
        self.queued += other.queued;
        self.dropped += other.dropped;
        self.closed += other.closed;
        self.disconnected += other.disconnected;
    }
}
