//! A hub's small fanned-out frames, held once for every outbox that queues them.
//!
//! Copied into each recipient's outbox, a small frame costs a broadcast to N sessions
//! N stores into memory N sessions apart, read back when each one writes: at a
//! thousand subscribers, more than the cache holds between two messages. Held here
//! once, an outbox keeps a run of positions instead, extended in place while it gets
//! every message, and each write copies the bytes from here, where they are still in
//! the cache.
//!
//! Bounded: at most [`LOG_SLOTS`] slots. A slot is reused once no outbox holds it and
//! every older one is free too; while a slow session holds an old slot and the log is
//! full, new frames are copied into each outbox as before.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::outbox::INLINE_AT_MOST;
use crate::prepared::{MessageKind, Prepared};

/// Slots the log holds at most (80 bytes each: 80 KiB for a hub at its fullest).
pub(crate) const LOG_SLOTS: usize = 1024;

/// The frames, by position (a number that only grows).
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
    bytes: [u8; INLINE_AT_MOST],
    len: u8,
    header_len: u8,
    kind: MessageKind,
    /// Outboxes that queue it and have not copied it into a write yet.
    holders: u32,
}

impl FrameLog {
    /// Starts a fan-out: what it appends stays valid until the next one starts, held
    /// or not, so its recipients can share it.
    pub(crate) fn begin_fanout(&mut self) {
        self.fanout_from = self.base + self.slots.len() as u64;
    }

    /// Appends `frame`; its position, or `None` when it is too large for a slot or the
    /// log is full. Nobody holds it yet: once the next fan-out has begun, a slot
    /// nobody took is reused by an append.
    pub(crate) fn append(&mut self, frame: &Prepared) -> Option<u64> {
        self.reuse_free_front();
        let len = frame.wire_len();
        if len > INLINE_AT_MOST || self.slots.len() >= LOG_SLOTS {
            return None;
        }
        self.slots.push_back(Slot {
            bytes: [0; INLINE_AT_MOST],
            len: len as u8,
            header_len: frame.header_len(),
            kind: frame.kind(),
            holders: 0,
        });
        let slot = self.slots.back_mut()?;
        slot.bytes[..len].copy_from_slice(frame.frame());
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

    /// An outbox no longer holds the frame at `at` (it copied it out or dropped it).
    #[inline]
    pub(crate) fn release(&mut self, at: u64) {
        if let Some(slot) = self.slot_mut(at) {
            slot.holders = slot.holders.saturating_sub(1);
        }
    }

    /// The frame at `at` (empty if no slot is there: a held position always has one).
    #[inline]
    pub(crate) fn frame(&self, at: u64) -> &[u8] {
        self.slot(at)
            .map_or(&[][..], |s| &s.bytes[..usize::from(s.len)])
    }

    /// The length of the frame at `at`.
    #[inline]
    pub(crate) fn len(&self, at: u64) -> usize {
        self.slot(at).map_or(0, |s| usize::from(s.len))
    }

    /// The frame at `at` as a message of its own (for a `Sent` event turned on while
    /// it was queued).
    pub(crate) fn to_prepared(&self, at: u64) -> Option<Prepared> {
        let slot = self.slot(at)?;
        Some(Prepared::from_parts(
            Bytes::copy_from_slice(&slot.bytes[..usize::from(slot.len)]),
            slot.header_len,
            slot.kind,
        ))
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
    fn a_frame_is_kept_while_held_and_its_slot_reused_once_released() {
        let mut log = FrameLog::default();
        let hello = Prepared::text("hello");
        let at = log.append(&hello).expect("room");
        log.hold(at);
        log.hold(at);
        assert_eq!(log.frame(at), &hello.frame()[..]);
        assert_eq!(log.len(at), hello.wire_len());
        assert_eq!(log.to_prepared(at), Some(hello.clone()));
        log.release(at);
        log.begin_fanout();
        let next = log.append(&Prepared::binary([1, 2])).expect("room");
        assert_eq!(next, at + 1);
        assert_eq!(log.frame(at), &hello.frame()[..], "still held once");
        log.release(at);
        log.hold(next);
        log.begin_fanout();
        let third = log.append(&Prepared::text("x")).expect("room");
        assert_eq!(third, at + 2);
        assert_eq!(log.slots_in_use(), 2, "the released front slot was reused");
        assert!(log.frame(at).is_empty());
        assert_eq!(log.frame(next), &Prepared::binary([1, 2]).frame()[..]);
    }

    #[test]
    fn a_slot_nobody_took_is_reused_by_the_next_fanouts_appends_and_not_before() {
        let mut log = FrameLog::default();
        for i in 0..3 * LOG_SLOTS {
            log.begin_fanout();
            assert!(log.append(&Prepared::text(i.to_string())).is_some());
        }
        assert_eq!(log.slots_in_use(), 1);
        let first = log.append(&Prepared::text("one")).expect("room");
        let second = log.append(&Prepared::text("two")).expect("room");
        assert_eq!(log.frame(first), &Prepared::text("one").frame()[..]);
        assert_eq!(log.frame(second), &Prepared::text("two").frame()[..]);
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
        let large = Prepared::binary(vec![0; INLINE_AT_MOST]);
        assert_eq!(log.append(&large), None);
    }
}
