//! Fan-out across shards: who a broadcast or publish reaches, delivered here and, for
//! what crosses instances, handed to the backplane.

use std::collections::HashMap;

use melody_core::{Delivery, Prepared, SessionId, SessionView, Target};

use crate::filter::SessionRef;
use crate::link::Audience;
use crate::runtime::Runtime;
use crate::session::Session;
use crate::shared::Shared;
use crate::slot::Slot;

/// Who a broadcast goes to, across shards.
pub(crate) enum Recipients<'a, R: Runtime> {
    All,
    Others(&'a Session<R>),
    List(&'a [Session<R>]),
    Filter(&'a (dyn Fn(&SessionRef<'_>) -> bool + Sync)),
    Topic(&'a str),
    TopicOthers(&'a str, &'a Session<R>),
}

/// Delivers `msg` here, then hands it to the backplane if one is attached and the
/// recipients mean something on other instances (filters and session lists do not).
pub(crate) fn fan<R: Runtime>(
    shared: &Shared<R>,
    msg: &Prepared,
    to: Recipients<'_, R>,
) -> Delivery {
    let delivery = fan_local(shared, msg, &to);
    if let Some(backplane) = shared.backplane.get() {
        let audience = match to {
            Recipients::All | Recipients::Others(_) => Some(Audience::All),
            Recipients::Topic(topic) | Recipients::TopicOthers(topic, _) => {
                Some(Audience::Topic(topic.into()))
            }
            Recipients::List(_) | Recipients::Filter(_) => None,
        };
        if let Some(audience) = audience {
            backplane.forward(audience, msg);
        }
    }
    delivery
}

/// Delivers a message that came from a backplane: to every session (`topic` is `None`)
/// or to a topic's subscribers, here only.
pub(crate) fn deliver_local<R: Runtime>(
    shared: &Shared<R>,
    topic: Option<&str>,
    msg: &Prepared,
) -> Delivery {
    match topic {
        None => fan_local(shared, msg, &Recipients::All),
        Some(topic) => fan_local(shared, msg, &Recipients::Topic(topic)),
    }
}

/// How many sessions of this instance are subscribed to `topic`.
pub(crate) fn subscriber_count<R: Runtime>(shared: &Shared<R>, topic: &str) -> usize {
    shared
        .shards
        .iter()
        .map(|s| s.read(|hub| hub.subscriber_count(topic)))
        .sum()
}

/// Queues `msg` for the recipients on this instance, one shard lock at a time.
fn fan_local<R: Runtime>(shared: &Shared<R>, msg: &Prepared, to: &Recipients<'_, R>) -> Delivery {
    let now = shared.rt.now();
    let mut total = Delivery::default();
    let mut lists: HashMap<usize, Vec<SessionId>> = HashMap::new();
    if let Recipients::List(sessions) = to {
        for s in sessions.iter() {
            lists
                .entry(s.key().shard as usize)
                .or_default()
                .push(s.key().id);
        }
    }
    for (index, shard) in shared.shards.iter().enumerate() {
        let shard_id = index as u32;
        let delivery = shard.with(&shared.clock, |hub| match to {
            Recipients::All => hub.broadcast(now, msg, Target::All),
            Recipients::Others(s) if s.key().shard == shard_id => {
                hub.broadcast(now, msg, Target::AllExcept(s.key().id))
            }
            Recipients::Others(_) => hub.broadcast(now, msg, Target::All),
            Recipients::List(_) => match lists.get(&index) {
                Some(ids) => hub.broadcast(now, msg, Target::List(ids)),
                None => Delivery::default(),
            },
            Recipients::Filter(keep) => {
                let pred = |view: &SessionView<'_, Slot>| {
                    keep(&SessionRef {
                        view,
                        shard: shard_id,
                    })
                };
                hub.broadcast(now, msg, Target::Filter(&pred))
            }
            Recipients::Topic(topic) => hub.broadcast(now, msg, Target::Topic(topic)),
            Recipients::TopicOthers(topic, s) if s.key().shard == shard_id => {
                hub.broadcast(now, msg, Target::TopicExcept(topic, s.key().id))
            }
            Recipients::TopicOthers(topic, _) => hub.broadcast(now, msg, Target::Topic(topic)),
        });
        total.merge(delivery);
    }
    total
}
