//! One topic's history: the newest messages within its limits, oldest first.

use std::collections::VecDeque;
use std::time::Instant;

use crate::history::{GapReason, HistoryLimits, Position, Recovery, Replay};
use crate::publication::Publication;

struct Entry {
    sequence: u64,
    published: Instant,
    /// The stamped message: its frames are shared with every recipient, not copied.
    msg: Publication,
    bytes: usize,
}

pub(crate) struct TopicLog {
    epoch: u64,
    /// The last sequence handed out (0: none yet).
    last: u64,
    entries: VecDeque<Entry>,
    bytes: usize,
    limits: HistoryLimits,
}

impl TopicLog {
    pub(crate) fn new(epoch: u64, limits: HistoryLimits) -> Self {
        TopicLog {
            epoch,
            last: 0,
            entries: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    pub(crate) fn last_position(&self) -> Option<Position> {
        (self.last > 0).then(|| Position::new(self.epoch, self.last))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Stamps `msg` with the next position and keeps it, evicting what the limits no
    /// longer allow. Returns the stamped message.
    pub(crate) fn append(&mut self, now: Instant, msg: &Publication) -> Publication {
        self.last += 1;
        let stamped = msg.at_position(Position::new(self.epoch, self.last));
        let bytes = stamped.prepared().wire_len();
        self.entries.push_back(Entry {
            sequence: self.last,
            published: now,
            msg: stamped.clone(),
            bytes,
        });
        self.bytes += bytes;
        self.evict(now);
        stamped
    }

    /// Keeps `msg` at a position handed out elsewhere (a backplane's log). A position
    /// of another epoch starts the log over in that epoch; one at or before the last
    /// kept is a duplicate (`None`); one past the next leaves a hole, so what is kept
    /// before it is dropped (a resume from before the hole is then a gap, as it must).
    pub(crate) fn append_at(
        &mut self,
        now: Instant,
        position: Position,
        msg: &Publication,
    ) -> Option<Publication> {
        if position.epoch() != self.epoch {
            *self = TopicLog::new(position.epoch(), self.limits);
        } else if position.sequence() <= self.last {
            return None;
        }
        if position.sequence() != self.last + 1 {
            self.entries = VecDeque::new();
            self.bytes = 0;
        }
        self.last = position.sequence() - 1;
        Some(self.append(now, msg))
    }

    /// Evicts from the oldest end until every limit holds: a message published at
    /// `t` is gone from `t + max_age` on.
    pub(crate) fn evict(&mut self, now: Instant) {
        let before = self.entries.len();
        while let Some(oldest) = self.entries.front() {
            let over_count = self
                .limits
                .max_messages
                .is_some_and(|max| self.entries.len() > max);
            let over_bytes = self.limits.max_bytes.is_some_and(|max| self.bytes > max);
            let expired = self
                .limits
                .max_age
                .is_some_and(|age| now.saturating_duration_since(oldest.published) >= age);
            if !(over_count || over_bytes || expired) {
                break;
            }
            self.bytes -= oldest.bytes;
            self.entries.pop_front();
        }
        // An emptied log gives its memory back; it keeps only its epoch and sequence,
        // so a client that missed nothing still recovers completely.
        if self.entries.is_empty() && before > 0 {
            self.entries = VecDeque::new();
        }
    }

    /// Every retained message, oldest first.
    pub(crate) fn all(&self) -> Vec<Publication> {
        self.entries.iter().map(|e| e.msg.clone()).collect()
    }

    /// The retained messages after `from`, and whether they are all that followed it.
    pub(crate) fn after(&self, from: Position) -> Replay {
        let all = || self.all();
        if from.epoch() != self.epoch {
            return Replay::new(all(), Recovery::Gap(GapReason::OtherEpoch));
        }
        if from.sequence() > self.last {
            return Replay::new(all(), Recovery::Gap(GapReason::Unrecognized));
        }
        // The oldest sequence still kept; everything after `last` when none is.
        let oldest = self.entries.front().map_or(self.last + 1, |e| e.sequence);
        if from.sequence() + 1 < oldest {
            return Replay::new(all(), Recovery::Gap(GapReason::TooOld));
        }
        let skip = (from.sequence() + 1 - oldest) as usize;
        let messages = self
            .entries
            .iter()
            .skip(skip)
            .map(|e| e.msg.clone())
            .collect();
        Replay::new(messages, Recovery::Complete)
    }
}
