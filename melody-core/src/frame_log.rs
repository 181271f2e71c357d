//! A hub's fanned-out frames of up to 1 KiB, held once for every outbox that queues
//! them.
//!
//! Queued in each recipient's outbox, a frame costs a broadcast to N sessions N
//! entries written into memory N sessions apart (a copy of a small frame, or a
//! reference and its count), read back when each one writes: at a thousand
//! subscribers, more than the cache holds between two messages. Held here once, an
//! outbox keeps a run of positions instead, extended in place while it gets every
//! message, and each write copies the bytes from the frame, which is still in the
//! cache.
//!
//! A log per form of a publication ([`FormLane`]): each session takes one form, so
//! the positions it gets follow one another in its lane, whatever the other sessions
//! take.
//!
//! Bounded: at most [`LOG_SLOTS`] slots per lane, of frames of at most
//! [`LOG_AT_MOST`] bytes. A frame is let go once no outbox holds it; its slot is
//! reused once every older one is free too. A slow session holding old slots would
//! keep them all: once a lane is three quarters full behind a held slot, the hub has
//! every outbox take its frames older than the newest quarter as entries of its own
//! ([`FrameLog::spill_before`]), which frees them. If a lane is full even so, frames
//! are queued in each outbox as before.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::batch::COPY_AT_MOST;
use crate::prepared::Prepared;

/// Slots a log holds at most (48 bytes each, and the frames held).
pub(crate) const LOG_SLOTS: usize = 1024;

/// The largest frame the log takes: what a write copies rather than sends by
/// reference. With [`LOG_SLOTS`], 1 MiB of frames per log at most, and only while
/// held.
pub(crate) const LOG_AT_MOST: usize = COPY_AT_MOST;

/// Forms of a publication a session may take, each with a log of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormLane {
    /// A WebSocket frame as the message is (text or binary).
    Frame,
    /// A WebSocket frame for a session that writes text as binary.
    BinaryFrame,
    /// A WebSocket frame that carries the message's history position.
    Positioned,
    /// A positioned frame for a session that writes text as binary.
    PositionedBinary,
    /// An event, in an HTTP chunk.
    ChunkedEvent,
    /// An event, bare (its HTTP framing is a framework's).
    Event,
}

impl FormLane {
    /// Every lane.
    pub(crate) const ALL: [FormLane; FORM_LANES] = [
        FormLane::Frame,
        FormLane::BinaryFrame,
        FormLane::Positioned,
        FormLane::PositionedBinary,
        FormLane::ChunkedEvent,
        FormLane::Event,
    ];
}

/// How many [`FormLane`]s there are.
pub(crate) const FORM_LANES: usize = 6;

/// The hub's logs, one per form.
#[derive(Debug, Default)]
pub(crate) struct FrameLogs {
    lanes: [FrameLog; FORM_LANES],
    /// The frame the current fan-out appended to each log, by its bytes' address and
    /// length, and its position: the recipients of one publication share a slot per
    /// form. Cleared as each fan-out begins (the publication outlives its fan-out, and
    /// a later one's frame may come at the same address).
    appended: [Option<(usize, usize, u64)>; FORM_LANES],
}

impl FrameLogs {
    /// The log of `lane`.
    #[inline]
    pub(crate) fn lane(&mut self, lane: FormLane) -> &mut FrameLog {
        &mut self.lanes[lane as usize]
    }

    /// The log of `lane`, to read.
    #[inline]
    pub(crate) fn get(&self, lane: FormLane) -> &FrameLog {
        &self.lanes[lane as usize]
    }

    /// Slots in use in every lane (for tests of what the logs keep).
    #[cfg(test)]
    pub(crate) fn slots_in_use(&self) -> usize {
        self.lanes.iter().map(FrameLog::slots_in_use).sum()
    }

    /// Starts a fan-out in every lane (see [`FrameLog::begin_fanout`]).
    pub(crate) fn begin_fanout(&mut self) {
        self.lanes.iter_mut().for_each(FrameLog::begin_fanout);
        self.appended = [None; FORM_LANES];
    }

    /// Where this fan-out holds `frame` in the log of `lane`, appending it if it is
    /// not there yet; `None` when the log cannot take it.
    #[inline]
    pub(crate) fn position_in_fanout(&mut self, lane: FormLane, frame: &Prepared) -> Option<u64> {
        let (ptr, len) = (frame.frame().as_ptr() as usize, frame.wire_len());
        match self.appended[lane as usize] {
            // Every recipient after the first: inlined into the fan-out's loop.
            Some((p, l, at)) if (p, l) == (ptr, len) => Some(at),
            _ => self.append_in_fanout(lane, frame, (ptr, len)),
        }
    }

    /// The first recipient of a form in a fan-out appends its frame.
    #[inline(never)]
    fn append_in_fanout(
        &mut self,
        lane: FormLane,
        frame: &Prepared,
        key: (usize, usize),
    ) -> Option<u64> {
        let at = self.lane(lane).append(frame)?;
        self.appended[lane as usize] = Some((key.0, key.1, at));
        Some(at)
    }
}

/// The frames of one form, by position (a number that only grows).
#[derive(Debug, Default)]
pub(crate) struct FrameLog {
    slots: VecDeque<Slot>,
    /// The position of `slots[0]`.
    base: u64,
    /// Slots from this position on were appended in the current fan-out: not reused
    /// before it ends, even while nobody holds them (see [`FrameLog::begin_fanout`]).
    fanout_from: u64,
}

/// One frame, and how many outboxes hold it.
#[derive(Debug)]
struct Slot {
    /// `None` once nobody holds it.
    frame: Option<Prepared>,
    /// Outboxes that queue it and have not taken it into a write yet.
    holders: u32,
}

impl FrameLog {
    /// When the log is three quarters full behind a held slot: the position before
    /// which outboxes should take their frames out (all but the newest quarter), so
    /// that a slow session does not keep the log full.
    pub(crate) fn spill_before(&self) -> Option<u64> {
        let held_front = self.slots.front().is_some_and(|s| s.holders > 0);
        if !held_front || self.slots.len() < LOG_SLOTS / 4 * 3 {
            return None;
        }
        Some(self.base + (self.slots.len() - LOG_SLOTS / 4) as u64)
    }

    /// Starts a fan-out: what it appends stays valid until the next one starts, held
    /// or not, so its recipients can share it.
    pub(crate) fn begin_fanout(&mut self) {
        // What the last fan-out appended and nobody took is let go now.
        let from = usize::try_from(self.fanout_from.saturating_sub(self.base)).unwrap_or(0);
        for slot in self.slots.iter_mut().skip(from) {
            if slot.holders == 0 {
                slot.frame = None;
            }
        }
        self.fanout_from = self.base + self.slots.len() as u64;
    }

    /// Appends `frame`; its position, or `None` when it is too large for a slot or the
    /// log is full. Nobody holds it yet: once the next fan-out has begun, a slot
    /// nobody took is reused by an append.
    pub(crate) fn append(&mut self, frame: &Prepared) -> Option<u64> {
        self.reuse_free_front();
        if frame.wire_len() > LOG_AT_MOST || self.slots.len() >= LOG_SLOTS {
            return None;
        }
        self.slots.push_back(Slot {
            frame: Some(frame.clone()),
            holders: 0,
        });
        Some(self.base + (self.slots.len() - 1) as u64)
    }

    /// Frees the oldest slots nobody holds, up to the current fan-out's.
    fn reuse_free_front(&mut self) {
        while self.base < self.fanout_from && self.slots.front().is_some_and(|s| s.holders == 0) {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    #[inline]
    fn slot(&self, at: u64) -> Option<&Slot> {
        let index = usize::try_from(at.checked_sub(self.base)?).ok()?;
        self.slots.get(index)
    }

    #[inline]
    fn slot_mut(&mut self, at: u64) -> Option<&mut Slot> {
        let index = usize::try_from(at.checked_sub(self.base)?).ok()?;
        self.slots.get_mut(index)
    }

    /// One more outbox holds the frame at `at`.
    #[inline]
    pub(crate) fn hold(&mut self, at: u64) {
        if let Some(slot) = self.slot_mut(at) {
            slot.holders += 1;
        }
    }

    /// An outbox no longer holds the frame at `at` (it took it into a write or
    /// dropped it); the last one lets the frame go.
    #[inline]
    pub(crate) fn release(&mut self, at: u64) {
        let fanout_from = self.fanout_from;
        if let Some(slot) = self.slot_mut(at) {
            slot.holders = slot.holders.saturating_sub(1);
            // The current fan-out's frames stay for its other recipients (see
            // `begin_fanout`).
            if slot.holders == 0 && at < fanout_from {
                slot.frame = None;
            }
        }
    }

    /// The frame at `at` (`None` if nobody holds it: a held position always has it).
    #[inline]
    pub(crate) fn frame(&self, at: u64) -> Option<&Bytes> {
        Some(self.slot(at)?.frame.as_ref()?.frame())
    }

    /// The length of the frame at `at`.
    #[inline]
    pub(crate) fn len(&self, at: u64) -> usize {
        self.frame(at).map_or(0, Bytes::len)
    }

    /// The message at `at` (for a `Sent` event turned on while it was queued).
    pub(crate) fn message(&self, at: u64) -> Option<Prepared> {
        self.slot(at)?.frame.clone()
    }

    /// Slots in use (for tests of what the log keeps).
    #[cfg(test)]
    pub(crate) fn slots_in_use(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_the_size_its_bound_is_written_for() {
        assert_eq!(std::mem::size_of::<Slot>(), 48);
    }

    fn frame_of(log: &FrameLog, at: u64) -> Option<Vec<u8>> {
        log.frame(at).map(|b| b.to_vec())
    }

    #[test]
    fn a_frame_is_kept_while_held_and_let_go_and_its_slot_reused_once_released() {
        let mut log = FrameLog::default();
        let hello = Prepared::text("hello");
        let at = log.append(&hello).expect("room");
        log.hold(at);
        log.hold(at);
        assert_eq!(frame_of(&log, at), Some(hello.frame().to_vec()));
        assert_eq!(log.len(at), hello.wire_len());
        assert_eq!(log.message(at), Some(hello.clone()));
        log.release(at);
        log.begin_fanout();
        let next = log.append(&Prepared::binary([1, 2])).expect("room");
        assert_eq!(next, at + 1);
        assert_eq!(
            frame_of(&log, at),
            Some(hello.frame().to_vec()),
            "held once"
        );
        log.release(at);
        assert_eq!(frame_of(&log, at), None, "let go by its last holder");
        log.hold(next);
        log.begin_fanout();
        let third = log.append(&Prepared::text("x")).expect("room");
        assert_eq!(third, at + 2);
        assert_eq!(log.slots_in_use(), 2, "the released front slot was reused");
        assert_eq!(
            frame_of(&log, next),
            Some(Prepared::binary([1, 2]).frame().to_vec())
        );
    }

    #[test]
    fn a_frame_nobody_took_stays_through_its_fanout_and_goes_at_the_next() {
        let mut log = FrameLog::default();
        let held = log.append(&Prepared::text("held")).expect("room");
        log.hold(held);
        log.begin_fanout();
        let first = log.append(&Prepared::text("one")).expect("room");
        let second = log.append(&Prepared::text("two")).expect("room");
        log.hold(second);
        log.release(second);
        assert_eq!(
            frame_of(&log, first),
            Some(Prepared::text("one").frame().to_vec())
        );
        assert_eq!(
            frame_of(&log, second),
            Some(Prepared::text("two").frame().to_vec()),
            "released in its own fan-out: still there for the rest of it"
        );
        log.begin_fanout();
        assert_eq!(
            (frame_of(&log, first), frame_of(&log, second)),
            (None, None)
        );
        assert_eq!(log.slots_in_use(), 3, "behind a held slot");
        for i in 0..2 * LOG_SLOTS {
            log.begin_fanout();
            let _ = log.append(&Prepared::text(i.to_string()));
        }
        assert_eq!(log.slots_in_use(), LOG_SLOTS, "full behind the held slot");
        log.release(held);
        log.begin_fanout();
        assert!(log.append(&Prepared::text("last")).is_some());
        assert_eq!(log.slots_in_use(), 1);
    }

    #[test]
    fn a_held_old_slot_bounds_the_log_and_a_large_frame_is_not_taken() {
        let mut log = FrameLog::default();
        let first = log.append(&Prepared::text("old")).expect("room");
        log.hold(first);
        for i in 1..LOG_SLOTS {
            log.begin_fanout();
            assert!(log.append(&Prepared::text(i.to_string())).is_some());
        }
        log.begin_fanout();
        assert_eq!(log.append(&Prepared::text("full")), None);
        assert_eq!(log.slots_in_use(), LOG_SLOTS);
        log.release(first);
        log.begin_fanout();
        assert!(log.append(&Prepared::text("room again")).is_some());
        assert_eq!(log.slots_in_use(), 1);
        let largest = Prepared::binary(vec![0; LOG_AT_MOST - 4]);
        assert_eq!(largest.wire_len(), LOG_AT_MOST);
        assert!(log.append(&largest).is_some());
        let large = Prepared::binary(vec![0; LOG_AT_MOST]);
        assert_eq!(log.append(&large), None);
    }
}
