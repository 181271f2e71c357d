//! A session's pending events: boxed, and absent while the session has none queued
//! since its last trim, so an idle session carries one pointer for them.

use std::collections::VecDeque;

use crate::Event;

/// Events waiting for the application, oldest first.
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    // Boxed on purpose: one pointer in every session instead of a 32-byte `VecDeque`.
    #[allow(clippy::box_collection)]
    queue: Option<Box<VecDeque<Event>>>,
}

impl EventQueue {
    pub(crate) fn push_back(&mut self, event: Event) {
        self.queue.get_or_insert_with(Box::default).push_back(event);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Event> {
        self.queue.as_mut()?.pop_front()
    }

    pub(crate) fn back_mut(&mut self) -> Option<&mut Event> {
        self.queue.as_mut()?.back_mut()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.as_ref().is_none_or(|q| q.is_empty())
    }

    /// Frees the queue's memory if it is empty (a busy session keeps it between
    /// messages; see `SessionMachine::trim`).
    pub(crate) fn trim(&mut self) {
        if self.is_empty() {
            self.queue = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_frees_its_memory_only_when_empty() {
        let mut events = EventQueue::default();
        assert!(events.is_empty());
        assert!(events.pop_front().is_none());
        events.push_back(Event::Connect);
        events.push_back(Event::Dropped { count: 1 });
        if let Some(Event::Dropped { count }) = events.back_mut() {
            *count += 1;
        }
        events.trim();
        assert!(!events.is_empty(), "holding events: kept");
        assert_eq!(events.pop_front(), Some(Event::Connect));
        assert_eq!(events.pop_front(), Some(Event::Dropped { count: 2 }));
        assert!(events.is_empty());
        assert!(
            events.queue.is_some(),
            "emptied but not trimmed: memory kept"
        );
        events.trim();
        assert!(events.queue.is_none());
    }
}
