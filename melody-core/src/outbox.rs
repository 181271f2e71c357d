//! A session's outbound queue: a control lane written first, a bounded data lane, the
//! final close frame, and the bytes handed to the transport but not yet confirmed.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::batch::Batch;
use crate::config::DropPolicy;
use crate::prepared::Prepared;

/// Most unsent pongs kept; older ones are dropped first.
pub(crate) const MAX_PENDING_PONGS: usize = 16;

/// Most buffers handed out by one `poll_transmit` (Linux's `IOV_MAX` is 1024).
pub(crate) const MAX_TRANSMIT_ITEMS: usize = 1024;

/// What happened to one message offered to the data lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Queued; `evicted` older messages were dropped to make room.
    Queued { evicted: usize },
    /// The lane is full and the policy refused the message.
    Dropped,
    /// The lane had room, but the hub's memory budget did not: the message is dropped
    /// (counted like [`Admit::Dropped`]), whatever the policy.
    OverBudget,
    /// The lane is full and the policy says to disconnect the session; `discarded`
    /// queued messages were dropped with the new one.
    Disconnect { discarded: usize },
    /// The lane is sealed by a close: no data is accepted any more.
    Closed,
    /// The message has no form this session can carry (binary data for an event
    /// stream): not offered to the lane at all.
    Skipped,
}

/// Bounds of the data lane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) messages: usize,
    pub(crate) bytes: Option<usize>,
    pub(crate) policy: DropPolicy,
}

/// A data message in the lane, and the form it takes on the wire.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The uncompressed frame: what goes out unless `wire` says otherwise, and what
    /// `Sent` events report.
    msg: Prepared,
    wire: Wire,
}

/// How a queued data message goes on the wire.
#[derive(Debug)]
pub(crate) enum Wire {
    /// As its uncompressed frame.
    Plain,
    /// As this compressed frame, made already (a shared copy).
    Deflated(Bytes),
    /// Compressed by the session's own compressor as it leaves the lane, so that the
    /// compressor's context holds exactly what the peer receives, in order: a message
    /// evicted or discarded while queued was never compressed.
    DeflateOnTransmit,
}

impl Outgoing {
    pub(crate) fn new(msg: Prepared, wire: Wire) -> Self {
        Outgoing { msg, wire }
    }

    /// Bytes it takes in the lane: the compressed size when known, else the
    /// uncompressed frame's.
    pub(crate) fn wire_len(&self) -> usize {
        match &self.wire {
            Wire::Deflated(frame) => frame.len(),
            Wire::Plain | Wire::DeflateOnTransmit => self.msg.wire_len(),
        }
    }
}

impl From<Prepared> for Outgoing {
    fn from(msg: Prepared) -> Self {
        Outgoing::new(msg, Wire::Plain)
    }
}

/// What a buffer handed to the transport is; its unwritten bytes are in the driver's
/// [`Batch`], in the same order.
#[derive(Debug)]
enum Flight {
    Control,
    Data {
        wire_len: usize,
        /// Kept only while `Sent` events are on: the event needs the payload.
        msg: Option<Prepared>,
    },
    Close,
}

/// Something the transport finished writing.
#[derive(Debug)]
pub(crate) enum Completed {
    /// A data message, fully written (the message itself if it was kept).
    Data(Option<Prepared>),
    /// The close frame, fully written.
    Close,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    control: VecDeque<Bytes>,
    /// Unsent pongs, at most `MAX_PENDING_PONGS`: a ping flood cannot grow the outbox.
    pongs: VecDeque<Bytes>,
    data: VecDeque<Outgoing>,
    /// The last thing to write; empty for a session whose end needs no bytes (an event
    /// stream whose HTTP framing is an HTTP framework's): it is done once everything
    /// before it is written.
    close: Option<Bytes>,
    sealed: bool,
    /// An empty close was reached with nothing left in flight.
    closed_without_bytes: bool,
    /// Handed to the transport, in order; the batch holds their unwritten bytes.
    in_flight: VecDeque<Flight>,
    data_in_flight: usize,
    /// Wire bytes of data messages queued or in flight.
    data_bytes: usize,
}

impl Outbox {
    pub(crate) fn push_control(&mut self, frame: Bytes) {
        self.control.push_back(frame);
    }

    /// Queues a pong; past `MAX_PENDING_PONGS` unsent ones, the oldest is dropped
    /// (RFC 6455 §5.5.3 allows answering only the latest ping). Peers that send a few
    /// pings at once get every answer, as Autobahn's cases 2.10 and 2.11 check.
    pub(crate) fn push_pong(&mut self, frame: Bytes) {
        if self.pongs.len() >= MAX_PENDING_PONGS {
            self.pongs.pop_front();
        }
        self.pongs.push_back(frame);
    }

    /// Whether a ping is already waiting in the control lane (pings are not stacked).
    pub(crate) fn has_queued_control(&self) -> bool {
        !self.control.is_empty()
    }

    /// Data messages queued or in flight: what counts against the bound.
    pub(crate) fn data_len(&self) -> usize {
        self.data.len() + self.data_in_flight
    }

    /// Wire bytes of the data messages queued or in flight: what counts against the
    /// byte bound.
    pub(crate) fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Whether anything is queued or in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.in_flight.is_empty() && !self.has_unsent()
    }

    /// Whether the driver holds bytes of this outbox that it has not reported written.
    pub(crate) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Whether anything waits to be handed to the transport.
    pub(crate) fn has_unsent(&self) -> bool {
        !self.control.is_empty()
            || !self.pongs.is_empty()
            || !self.data.is_empty()
            || self.close.is_some()
    }

    /// Offers a data message under the bounds and policy, with no memory budget.
    #[cfg(test)]
    pub(crate) fn push_data(&mut self, msg: impl Into<Outgoing>, bounds: Bounds) -> Admit {
        self.push_data_within(msg, bounds, usize::MAX)
    }

    /// Offers a data message under the bounds and policy, when the hub's memory budget
    /// has `budget_room` bytes left. Eviction (under `DropOldest`) frees budget too.
    pub(crate) fn push_data_within(
        &mut self,
        msg: impl Into<Outgoing>,
        bounds: Bounds,
        budget_room: usize,
    ) -> Admit {
        let msg = msg.into();
        if self.sealed {
            return Admit::Closed;
        }
        let len = msg.wire_len();
        if bounds.bytes.is_some_and(|max| len > max) {
            // Larger than the whole lane: it could never be queued, whatever the policy,
            // and says nothing about how fast this peer reads.
            return Admit::Dropped;
        }
        let lane_fits = |count: usize, bytes: usize| {
            count < bounds.messages && bounds.bytes.is_none_or(|max| bytes + len <= max)
        };
        let mut evicted = 0;
        if lane_fits(self.data_len(), self.data_bytes) {
            if len > budget_room {
                return Admit::OverBudget;
            }
        } else {
            match bounds.policy {
                DropPolicy::DropNewest => return Admit::Dropped,
                DropPolicy::Disconnect => return Admit::Disconnect { discarded: 0 },
                DropPolicy::DropOldest => {
                    // Count the oldest queued messages that must go first: when evicting
                    // them all is not enough (in-flight data is never evicted), refuse
                    // the new message and evict nothing, rather than lose them unreported.
                    // What they free counts for the budget too.
                    let held = self.data_bytes;
                    let room = |count: usize, bytes: usize| {
                        lane_fits(count, bytes) && len <= budget_room.saturating_add(held - bytes)
                    };
                    let (mut count, mut bytes) = (self.data_len(), self.data_bytes);
                    for old in &self.data {
                        if room(count, bytes) {
                            break;
                        }
                        count -= 1;
                        bytes -= old.wire_len();
                        evicted += 1;
                    }
                    if !room(count, bytes) {
                        return Admit::Dropped;
                    }
                    for old in self.data.drain(..evicted) {
                        self.data_bytes -= old.wire_len();
                    }
                }
            }
        }
        self.data_bytes += len;
        self.data.push_back(msg);
        Admit::Queued { evicted }
    }

    /// Discards the queued (not in-flight) data; returns how many messages.
    pub(crate) fn discard_queued_data(&mut self) -> usize {
        let n = self.data.len();
        for msg in self.data.drain(..) {
            self.data_bytes -= msg.wire_len();
        }
        n
    }

    /// Seals the data lane and queues the close frame behind the data already queued.
    /// Returns `false` (and queues nothing) when already sealed.
    pub(crate) fn seal_with_close(&mut self, frame: Bytes) -> bool {
        if self.sealed {
            return false;
        }
        self.sealed = true;
        self.close = Some(frame);
        true
    }

    /// [`Outbox::transmit_with`] for a lane without per-session compression.
    #[cfg(test)]
    pub(crate) fn transmit(&mut self, batch: &mut Batch, keep_messages: bool) -> usize {
        self.transmit_with(batch, keep_messages, |msg| msg.frame().clone())
    }

    /// Moves what waits into `batch`, control first, then the pongs, data, the close
    /// frame. `keep_messages` keeps each data message until it is written (for `Sent`
    /// events); otherwise its frame moves to the batch without another reference.
    /// `deflate` compresses the messages the session's own compressor sends, in order.
    pub(crate) fn transmit_with(
        &mut self,
        batch: &mut Batch,
        keep_messages: bool,
        mut deflate: impl FnMut(&Prepared) -> Bytes,
    ) -> usize {
        let mut moved = 0;
        while moved < MAX_TRANSMIT_ITEMS {
            let (bytes, flight) = if let Some(c) = self.control.pop_front() {
                (c, Flight::Control)
            } else if let Some(p) = self.pongs.pop_front() {
                (p, Flight::Control)
            } else if let Some(Outgoing { msg, wire }) = self.data.pop_front() {
                self.data_in_flight += 1;
                let frame = match wire {
                    Wire::Deflated(frame) => frame,
                    Wire::DeflateOnTransmit => {
                        let frame = deflate(&msg);
                        // The lane now holds the compressed size.
                        self.data_bytes = self.data_bytes - msg.wire_len() + frame.len();
                        frame
                    }
                    Wire::Plain if keep_messages => msg.frame().clone(),
                    Wire::Plain => {
                        let wire_len = msg.wire_len();
                        self.in_flight.push_back(Flight::Data {
                            wire_len,
                            msg: None,
                        });
                        batch.push(msg.into_frame());
                        moved += 1;
                        continue;
                    }
                };
                let flight = Flight::Data {
                    wire_len: frame.len(),
                    msg: keep_messages.then_some(msg),
                };
                (frame, flight)
            } else if self.close.as_ref().is_some_and(Bytes::is_empty) {
                if self.in_flight.is_empty() {
                    self.close = None;
                    self.closed_without_bytes = true;
                }
                break;
            } else if let Some(c) = self.close.take() {
                (c, Flight::Close)
            } else {
                break;
            };
            self.in_flight.push_back(flight);
            batch.push(bytes);
            moved += 1;
        }
        moved
    }

    /// Whether an empty close was reached (once: the flag is cleared).
    pub(crate) fn take_closed_without_bytes(&mut self) -> bool {
        std::mem::take(&mut self.closed_without_bytes)
    }

    /// Accounts `n` bytes the transport took from the front of `batch`, reporting each
    /// item it finished. Bytes beyond what was handed out are ignored.
    pub(crate) fn transmitted(
        &mut self,
        batch: &mut Batch,
        mut n: usize,
        mut done: impl FnMut(Completed),
    ) {
        while n > 0 {
            let Some(left) = batch.front_len() else {
                break;
            };
            if n < left {
                batch.advance_front(n);
                return;
            }
            n -= left;
            batch.pop_front();
            match self.in_flight.pop_front() {
                Some(Flight::Control) | None => {}
                Some(Flight::Data { wire_len, msg }) => {
                    self.data_in_flight = self.data_in_flight.saturating_sub(1);
                    self.data_bytes = self.data_bytes.saturating_sub(wire_len);
                    done(Completed::Data(msg));
                }
                Some(Flight::Close) => done(Completed::Close),
            }
        }
    }

    /// Frees the memory of empty lanes (an idle session keeps none).
    pub(crate) fn trim(&mut self) {
        if self.control.is_empty() {
            self.control = VecDeque::new();
        }
        if self.pongs.is_empty() {
            self.pongs = VecDeque::new();
        }
        if self.data.is_empty() {
            self.data = VecDeque::new();
        }
        if self.in_flight.is_empty() {
            self.in_flight = VecDeque::new();
        }
    }

    /// Empties everything; returns how many data messages were never fully written.
    pub(crate) fn clear(&mut self) -> usize {
        let lost = self.data.len() + self.data_in_flight;
        *self = Outbox {
            sealed: true,
            ..Outbox::default()
        };
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(messages: usize, policy: DropPolicy) -> Bounds {
        Bounds {
            messages,
            bytes: None,
            policy,
        }
    }

    fn frames(out: &Batch) -> Vec<Vec<u8>> {
        out.iter().map(|b| b.to_vec()).collect()
    }

    #[test]
    fn drop_newest_refuses_when_full_counting_in_flight() {
        let mut o = Outbox::default();
        let b = bounds(2, DropPolicy::DropNewest);
        assert_eq!(
            o.push_data(Prepared::text("a"), b),
            Admit::Queued { evicted: 0 }
        );
        let mut out = Batch::new();
        o.transmit(&mut out, false);
        assert_eq!(
            o.push_data(Prepared::text("b"), b),
            Admit::Queued { evicted: 0 }
        );
        assert_eq!(
            o.push_data(Prepared::text("c"), b),
            Admit::Dropped,
            "a in flight + b queued"
        );
    }

    #[test]
    fn drop_oldest_never_evicts_in_flight() {
        let mut o = Outbox::default();
        let b = bounds(2, DropPolicy::DropOldest);
        let _ = o.push_data(Prepared::text("a"), b);
        let mut out = Batch::new();
        o.transmit(&mut out, false);
        let _ = o.push_data(Prepared::text("b"), b);
        assert_eq!(
            o.push_data(Prepared::text("c"), b),
            Admit::Queued { evicted: 1 }
        );
        out.clear();
        o.transmit(&mut out, false);
        assert_eq!(frames(&out), vec![Prepared::text("c").frame().to_vec()]);
        let mut o = Outbox::default();
        let b1 = bounds(1, DropPolicy::DropOldest);
        let _ = o.push_data(Prepared::text("a"), b1);
        o.transmit(&mut out, false);
        assert_eq!(o.push_data(Prepared::text("b"), b1), Admit::Dropped);
    }

    #[test]
    fn a_message_larger_than_the_byte_bound_is_dropped_under_every_policy() {
        for policy in [
            DropPolicy::DropNewest,
            DropPolicy::DropOldest,
            DropPolicy::Disconnect,
        ] {
            let mut o = Outbox::default();
            let b = Bounds {
                messages: 100,
                bytes: Some(10),
                policy,
            };
            // 2 header bytes + 9 payload bytes = 11 > 10, even with an empty lane.
            assert_eq!(o.push_data(Prepared::text("123456789"), b), Admit::Dropped);
            assert_eq!(
                o.push_data(Prepared::text("1234"), b),
                Admit::Queued { evicted: 0 }
            );
        }
    }

    #[test]
    fn the_budget_refuses_at_its_exact_byte_and_eviction_frees_it() {
        let lane = Bounds {
            messages: 100,
            bytes: None,
            policy: DropPolicy::DropNewest,
        };
        let mut o = Outbox::default();
        // "12345" is 7 wire bytes.
        assert_eq!(
            o.push_data_within(Prepared::text("12345"), lane, 6),
            Admit::OverBudget
        );
        assert_eq!(
            o.push_data_within(Prepared::text("12345"), lane, 7),
            Admit::Queued { evicted: 0 }
        );
        // DropOldest with a full lane: evicting the old message frees its 7 bytes.
        let oldest = Bounds {
            messages: 1,
            policy: DropPolicy::DropOldest,
            ..lane
        };
        assert_eq!(
            o.push_data_within(Prepared::text("abcde"), oldest, 0),
            Admit::Queued { evicted: 1 }
        );
        assert_eq!(
            o.push_data_within(Prepared::text("abcdef"), oldest, 0),
            Admit::Dropped,
            "8 bytes do not fit in the 7 an eviction frees"
        );
        assert_eq!(o.data_bytes(), 7);
    }

    #[test]
    fn byte_bound_applies() {
        let mut o = Outbox::default();
        let b = Bounds {
            messages: 100,
            bytes: Some(10),
            policy: DropPolicy::DropNewest,
        };
        assert_eq!(
            o.push_data(Prepared::text("12345"), b),
            Admit::Queued { evicted: 0 }
        );
        assert_eq!(
            o.push_data(Prepared::text("12345"), b),
            Admit::Dropped,
            "7 + 7 > 10"
        );
    }

    #[test]
    fn control_goes_first_close_last_and_partial_writes_resume() {
        let mut o = Outbox::default();
        let b = bounds(8, DropPolicy::DropNewest);
        let _ = o.push_data(Prepared::text("data"), b);
        assert!(o.seal_with_close(Bytes::from_static(b"CLOSE")));
        o.push_control(Bytes::from_static(b"PING"));
        for i in 0..20 {
            o.push_pong(Bytes::from(format!("PONG{i:02}")));
        }
        assert_eq!(o.push_data(Prepared::text("late"), b), Admit::Closed);
        let mut out = Batch::new();
        assert_eq!(o.transmit(&mut out, false), 1 + MAX_PENDING_PONGS + 2);
        let written = frames(&out);
        assert_eq!(&written[0][..], b"PING");
        assert_eq!(
            &written[1][..],
            b"PONG04",
            "the 4 oldest of 20 pongs were dropped"
        );
        assert_eq!(&written[MAX_PENDING_PONGS][..], b"PONG19");
        assert_eq!(&written[MAX_PENDING_PONGS + 2][..], b"CLOSE");
        let mut done = Vec::new();
        o.transmitted(&mut out, 4 + 6 * MAX_PENDING_PONGS + 3, |c| done.push(c));
        assert!(done.is_empty(), "data frame only partly written");
        assert_eq!(
            frames(&out),
            vec![b"ata".to_vec(), b"CLOSE".to_vec()],
            "the batch keeps the unwritten rest of the data frame"
        );
        o.transmitted(&mut out, 3 + 5, |c| done.push(c));
        assert!(matches!(done[..], [Completed::Data(_), Completed::Close]));
        assert!(o.is_empty());
    }
}
