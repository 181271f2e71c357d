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
///
/// Ignoring it is fine, so it is not `#[must_use]`: a fire-and-forget `broadcast` is the
/// common case, and nothing it reports goes unrecorded elsewhere. Drops are counted in
/// each session's [`SessionStats::dropped`](crate::SessionStats::dropped) and in
/// [`HubStats::dropped`](crate::HubStats::dropped) (the driver's `Session::stats` and
/// `Melody::stats`), and the driver calls the `on_dropped` handler for each session
/// that dropped messages. Look at a `Delivery` when the caller itself must react, e.g.
/// to retry or to report back to whoever asked for the send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
