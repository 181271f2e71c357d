//! Subscribing from a history position: the replay and the live subscription in one
//! call, so that no publish falls between them.

use std::time::Instant;

use crate::history::{GapReason, Position, Recovery, Replay, Resume};
use crate::hub::{count, Hub};
use crate::publication::Publication;
use crate::session::{SessionId, SessionKind};
use crate::sse;
use crate::target::Delivery;

/// The request header an event stream's browser resends on reconnection.
const LAST_EVENT_ID: &str = "last-event-id";

impl<U> Hub<U> {
    /// Subscribes a session to `topic` and queues, first, every retained message of
    /// the topic after `from`, then live ones: nothing published is both replayed and
    /// delivered live, and nothing falls between. `None` subscribes live only.
    ///
    /// When the position is older than what is retained, from another epoch, or not
    /// one this history handed out, every retained message is replayed after telling
    /// the session (see [`history`](crate::history)): [`Event::HistoryGap`], and for an
    /// event stream a [`GAP_EVENT`](crate::history::GAP_EVENT) event.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// use melody_core::history::{HistoryLimits, HistoryRules, Recovery};
    /// # let t0 = Instant::now();
    /// let rules = HistoryRules::new().topic("news", HistoryLimits::new().max_messages(100));
    /// let mut hub: Hub = Hub::new(Config::default().history(rules), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let seen = Publication::text("seen");
    /// hub.publish(t0, &seen, Target::Topic("news")); // nobody listens yet; kept
    /// hub.publish(t0, &Publication::text("missed"), Target::Topic("news"));
    /// let position = "1.1".parse().ok(); // what the client saw last, e.g. from `Last-Event-ID`
    /// let resume = hub.subscribe_from(id, t0, "news", position);
    /// assert!(resume.subscribed);
    /// # let _ = resume.recovery;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`Event::HistoryGap`]: crate::Event::HistoryGap
    pub fn subscribe_from(
        &mut self,
        id: SessionId,
        now: Instant,
        topic: &str,
        from: Option<Position>,
    ) -> Resume {
        if !self.can_join(id, topic) {
            return Resume::default();
        }
        let now = self.clock(now);
        let replay = self.history.replay(topic, now, from);
        self.resume_with(id, now, topic, replay)
    }

    /// [`Hub::subscribe_from`] with the position as the client sent it (a
    /// `Last-Event-ID`, a query parameter): text that is not a position is a gap
    /// ([`GapReason::Unrecognized`](crate::history::GapReason::Unrecognized)) on a
    /// history topic, and ignored on another.
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
    /// use melody_core::history::Recovery;
    ///
    /// let resume = hub.subscribe_from_text(id, t0, "chat", "garbage");
    /// assert_eq!(resume.recovery, Recovery::NotKept, "chat keeps no history");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_from_text(
        &mut self,
        id: SessionId,
        now: Instant,
        topic: &str,
        position: &str,
    ) -> Resume {
        match position.parse::<Position>() {
            Ok(position) => self.subscribe_from(id, now, topic, Some(position)),
            Err(_) if self.history.keeps(topic) && self.can_join(id, topic) => {
                let now = self.clock(now);
                let replay = self.history.replay_unrecognized(topic, now);
                self.resume_with(id, now, topic, replay)
            }
            Err(_) => {
                let mut resume = self.subscribe_from(id, now, topic, None);
                resume.recovery = Recovery::NotKept;
                resume
            }
        }
    }

    /// Subscribes a session to `topic` with a replay taken from a history kept
    /// elsewhere (a [`HistorySource`](crate::history::HistorySource) shared by several
    /// hubs): the caller holds that history still while this runs, so that no publish
    /// falls between the replay and the subscription.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// use melody_core::history::{Recovery, Replay};
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let replay = Replay::new(vec![Publication::text("kept elsewhere")], Recovery::Complete);
    /// let resume = hub.resume_with(id, t0, "news", replay);
    /// assert_eq!((resume.replayed, resume.recovery), (1, Recovery::Complete));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume_with(
        &mut self,
        id: SessionId,
        now: Instant,
        topic: &str,
        mut replay: Replay,
    ) -> Resume {
        if !self.join(id, topic) {
            return Resume::default();
        }
        let bounds = self.bounds();
        self.fit_to_outbox(id, &mut replay);
        let mut delivery = Delivery::default();
        if let Some(reason) = replay.recovery.gap() {
            // The gap event is data on the stream, but it was not published: it counts
            // in the session's drops if its outbox refuses it, not in the replay.
            let _ = self.with(id, now, |s, ctx| s.note_gap(ctx, topic, reason, bounds));
        }
        let mut last = None;
        for msg in &replay.messages {
            match self.with(id, now, |s, ctx| s.send(ctx, msg, bounds)) {
                Ok(admit) => count(&mut delivery, admit),
                Err(_) => delivery.closed += 1,
            }
            last = msg.position().or(last);
        }
        self.stats.dropped += delivery.dropped as u64;
        self.stats.skipped += delivery.skipped as u64;
        Resume {
            subscribed: true,
            recovery: replay.recovery,
            replayed: delivery.queued,
            dropped: delivery.dropped + delivery.disconnected + delivery.closed,
            last,
        }
    }

    /// The newest position `topic`'s history handed out (`None`: it keeps no history,
    /// or nothing was published to it since it began).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// use melody_core::history::{HistoryLimits, HistoryRules};
    /// # let t0 = Instant::now();
    /// let rules = HistoryRules::new().topic("news", HistoryLimits::new().max_messages(1)).epoch_seed(0xa);
    /// let mut hub: Hub = Hub::new(Config::default().history(rules), t0)?;
    /// hub.publish(t0, &Publication::text("x"), Target::Topic("news"));
    /// assert_eq!(hub.last_position("news").map(|p| p.to_string()), Some("a.1".into()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_position(&self, topic: &str) -> Option<Position> {
        self.history.last_position(topic)
    }

    /// Drops `topic`'s history, returning its memory; its next message starts a new
    /// epoch. `false` if it kept none.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// use melody_core::history::{HistoryLimits, HistoryRules};
    /// # let t0 = Instant::now();
    /// let rules = HistoryRules::new().topic("news", HistoryLimits::new().max_messages(100));
    /// let mut hub: Hub = Hub::new(Config::default().history(rules), t0)?;
    /// hub.publish(t0, &Publication::text("x"), Target::Topic("news"));
    /// assert_eq!(hub.stats().history.messages, 1);
    /// assert!(hub.drop_history("news"));
    /// assert_eq!(hub.stats().history.bytes, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drop_history(&mut self, topic: &str) -> bool {
        self.history.drop_topic(topic)
    }

    /// An event stream whose request carried `Last-Event-ID` resumes from it when it
    /// subscribes to a history topic; `None` when that does not apply.
    pub(super) fn resume_event_stream(&mut self, id: SessionId, topic: &str) -> Option<Resume> {
        if !self.history.keeps(topic) || self.kind(id) != Some(SessionKind::EventStream) {
            return None;
        }
        let last_id = self
            .request(id)?
            .headers()
            .get(LAST_EVENT_ID)?
            .to_str()
            .ok()?
            .to_owned();
        let now = self.last_now;
        Some(self.subscribe_from_text(id, now, topic, &last_id))
    }

    /// Cuts a replay longer than the session's outbox takes (in messages, in bytes, or
    /// in what the memory budget has left) to its newest part, and makes that a gap
    /// ([`GapReason::OutboxFull`], counted), rather than filling the outbox with the
    /// oldest and dropping the rest: the client would then resume past a hole it was
    /// never told of. An event stream's gap event takes a place too.
    fn fit_to_outbox(&mut self, id: SessionId, replay: &mut Replay) {
        let bounds = self.bounds();
        let stream = self.kind(id) == Some(SessionKind::EventStream);
        let budget_room = self.budget.room();
        let Some(session) = self.get(id) else {
            replay.messages.clear();
            return;
        };
        let gap_len = |reason: GapReason| match stream {
            true => sse::Event::new(reason.as_str())
                .name(crate::history::GAP_EVENT)
                .map_or(0, |event| session.wire_len_of(&Publication::event(event))),
            false => 0,
        };
        let mut room = session.data_room(bounds);
        let mut bytes = session.data_byte_room(bounds).min(budget_room);
        if let Some(reason) = replay.recovery.gap().filter(|_| stream) {
            room = room.saturating_sub(1);
            bytes = bytes.saturating_sub(gap_len(reason));
        }
        // The newest messages that fit, counted from the end.
        let fitting = |room: usize, bytes: usize| {
            let mut used = 0usize;
            replay
                .messages
                .iter()
                .rev()
                .take(room)
                .take_while(|msg| {
                    used = used.saturating_add(session.wire_len_of(msg));
                    used <= bytes
                })
                .count()
        };
        let keep = fitting(room, bytes);
        if keep == replay.messages.len() {
            return;
        }
        let new_gap = replay.recovery.gap().is_none();
        // A gap found here takes its own place in an event stream.
        let keep = match (new_gap, stream) {
            (true, true) => fitting(
                room.saturating_sub(1),
                bytes.saturating_sub(gap_len(GapReason::OutboxFull)),
            ),
            _ => keep,
        };
        if new_gap {
            replay.recovery = Recovery::Gap(GapReason::OutboxFull);
            self.stats.history.gaps += 1;
        }
        let cut = replay.messages.len() - keep;
        replay.messages.drain(..cut);
    }

    /// Whether `join` would succeed: the session is live and not yet subscribed.
    fn can_join(&self, id: SessionId, topic: &str) -> bool {
        self.get(id)
            .is_some_and(|s| !s.is_finished() && !s.topics.iter().any(|(t, _)| &**t == topic))
    }
}
