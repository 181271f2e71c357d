//! The topic index: subscribers per topic, so that a publish costs O(subscribers).

use std::collections::HashMap;
use std::sync::Arc;

use crate::session::SessionId;

/// Each topic's subscribers in a vector (fast to iterate); each session remembers its
/// position there, so unsubscribing is a swap-remove.
#[derive(Debug, Default)]
pub(crate) struct Topics {
    map: HashMap<Arc<str>, Vec<SessionId>>,
}

/// A session's membership of one topic: the topic and its position in the subscribers.
pub(crate) type Membership = (Arc<str>, u32);

impl Topics {
    /// Adds `id` to `topic`; returns the membership to store in the session.
    pub(crate) fn subscribe(&mut self, topic: &str, id: SessionId) -> Membership {
        let name: Arc<str> = match self.map.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => Arc::from(topic),
        };
        let members = self.map.entry(name.clone()).or_default();
        members.push(id);
        (name, (members.len() - 1) as u32)
    }

    /// Removes the member at `pos` of `topic`. Returns the session moved into `pos`, whose
    /// stored position must be updated.
    pub(crate) fn remove(&mut self, topic: &str, pos: u32) -> Option<SessionId> {
        let members = self.map.get_mut(topic)?;
        let pos = pos as usize;
        if pos >= members.len() {
            return None;
        }
        members.swap_remove(pos);
        let moved = members.get(pos).copied();
        if members.is_empty() {
            self.map.remove(topic);
        }
        moved
    }

    pub(crate) fn subscribers(&self, topic: &str) -> &[SessionId] {
        self.map.get(topic).map(Vec::as_slice).unwrap_or(&[])
    }

    pub(crate) fn topic_count(&self) -> usize {
        self.map.len()
    }
}
