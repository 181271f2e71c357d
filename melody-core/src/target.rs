//! Who a message goes to, and what happened to it.

use crate::session::SessionId;
use crate::SessionView;

/// The recipients of a [`Hub::broadcast`](crate::Hub::broadcast).
///
/// ```
/// # use std::time::Instant;
/// # use melody_core::*;
/// # let t0 = Instant::now();
/// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
/// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
/// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
/// # hub.handle_input(id, t0, UPGRADE)?;
/// hub.subscribe(id, "news");
/// let msg = Prepared::text("hello");
/// assert_eq!(hub.broadcast(t0, &msg, Target::All).queued, 1);
/// assert_eq!(hub.broadcast(t0, &msg, Target::AllExcept(id)).queued, 0);
/// assert_eq!(hub.broadcast(t0, &msg, Target::List(&[id])).queued, 1);
/// assert_eq!(hub.broadcast(t0, &msg, Target::Filter(&|s| s.topics().count() > 0)).queued, 1);
/// assert_eq!(hub.broadcast(t0, &msg, Target::Topic("news")).queued, 1);
/// assert_eq!(hub.broadcast(t0, &msg, Target::TopicExcept("news", id)).queued, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
///
/// ```
/// # use std::time::Instant;
/// # use melody_core::*;
/// # let t0 = Instant::now();
/// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
/// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
/// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
/// # hub.handle_input(id, t0, UPGRADE)?;
/// let delivery = hub.send(id, t0, &Prepared::text("hello"));
/// assert_eq!(delivery, Delivery { queued: 1, ..Delivery::default() });
///
/// hub.close(id, t0, CloseCode::Normal, "bye");
/// let late = hub.send(id, t0, &Prepared::text("too late"));
/// assert_eq!(late.closed, 1, "a closing session takes no more data");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// Event-stream recipients of a binary message, which an event stream cannot carry
    /// (it is text): the message was not offered to them. Also counted in
    /// [`HubStats::skipped`](crate::HubStats::skipped); not a drop (no outbox refused it).
    pub skipped: usize,
}

impl Delivery {
    /// Adds another delivery's counts to this one.
    ///
    /// ```
    /// use melody_core::Delivery;
    ///
    /// // Summing the deliveries of one broadcast over several hubs (shards).
    /// let mut total = Delivery::default();
    /// total.merge(Delivery { queued: 3, ..Delivery::default() });
    /// total.merge(Delivery { queued: 2, dropped: 1, ..Delivery::default() });
    /// assert_eq!((total.queued, total.dropped), (5, 1));
    /// ```
    pub fn merge(&mut self, other: Delivery) {
        self.queued += other.queued;
        self.dropped += other.dropped;
        self.closed += other.closed;
        self.disconnected += other.disconnected;
        self.skipped += other.skipped;
    }
}
