//! The mapping between melody audiences and Redis channel names.
//!
//! With the prefix `P` (default `melody`): a broadcast to all sessions goes on `P:all`,
//! a publish to topic `T` on `P:topic:T`. Channel names are bytes in Redis; topics are
//! UTF-8, so a channel under `P:topic:` that is not UTF-8 is refused.

use melody_driver::Audience;

/// Where a message read from a channel goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Destination<'a> {
    All,
    Topic(&'a str),
}

#[derive(Debug, Clone)]
pub(crate) struct Channels {
    all: Vec<u8>,
    topic_prefix: Vec<u8>,
}

impl Channels {
    pub(crate) fn new(prefix: &str) -> Self {
        Channels {
            all: format!("{prefix}:all").into_bytes(),
            topic_prefix: format!("{prefix}:topic:").into_bytes(),
        }
    }

    /// The channel of every session.
    pub(crate) fn all(&self) -> &[u8] {
        &self.all
    }

    /// The channel of `topic`, written into `out` (cleared first).
    pub(crate) fn topic(&self, topic: &str, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.topic_prefix);
        out.extend_from_slice(topic.as_bytes());
    }

    /// The channel of `audience`, written into `out`.
    pub(crate) fn of(&self, audience: &Audience, out: &mut Vec<u8>) {
        match audience {
            Audience::All => {
                out.clear();
                out.extend_from_slice(&self.all);
            }
            Audience::Topic(topic) => self.topic(topic, out),
        }
    }

    /// Where a message on `channel` goes; `None` for a channel that is not ours.
    pub(crate) fn destination<'a>(&self, channel: &'a [u8]) -> Option<Destination<'a>> {
        if channel == self.all.as_slice() {
            return Some(Destination::All);
        }
        let topic = channel.strip_prefix(self.topic_prefix.as_slice())?;
        std::str::from_utf8(topic).ok().map(Destination::Topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let channels = Channels::new("app");
        let mut buf = Vec::new();
        channels.of(&Audience::All, &mut buf);
        assert_eq!(buf, b"app:all");
        assert_eq!(channels.destination(&buf), Some(Destination::All));
        channels.of(&Audience::Topic("room:1".into()), &mut buf);
        assert_eq!(buf, b"app:topic:room:1");
        assert_eq!(
            channels.destination(&buf),
            Some(Destination::Topic("room:1"))
        );
    }

    #[test]
    fn a_topic_named_all_does_not_collide_with_broadcast() {
        let channels = Channels::new("melody");
        let mut buf = Vec::new();
        channels.topic("all", &mut buf);
        assert_ne!(buf.as_slice(), channels.all());
        assert_eq!(channels.destination(&buf), Some(Destination::Topic("all")));
    }

    #[test]
    fn foreign_and_non_utf8_channels_are_refused() {
        let channels = Channels::new("melody");
        assert_eq!(channels.destination(b"other:all"), None);
        assert_eq!(channels.destination(b"melody:topic:\xff"), None);
        assert_eq!(channels.destination(b"melody:al"), None);
    }
}
