//! Fan-out across shards: who a broadcast or publish reaches, delivered here and, for
//! what crosses instances, handed to the backplane.

use std::collections::HashMap;

use melody_core::history::Position;
use melody_core::{Delivery, Publication, SessionId, SessionView, Target};

use crate::filter::SessionRef;
use crate::history;
use crate::link::{Audience, Delivered};
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
    msg: &Publication,
    to: Recipients<'_, R>,
) -> Delivery {
    if let Some(delivery) = hand_to_shared_history(shared, msg, &to) {
        return delivery;
    }
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
            backplane.forward(audience, msg, false);
        }
    }
    delivery
}

/// A publish to a history topic when the backplane keeps history: handed over only,
/// and delivered here when the backplane hands it back with its position (nothing is
/// queued now). If the backplane's queue is full, delivered here only, unkept.
/// `None` when this is not such a publish.
fn hand_to_shared_history<R: Runtime>(
    shared: &Shared<R>,
    msg: &Publication,
    to: &Recipients<'_, R>,
) -> Option<Delivery> {
    let backplane = shared.backplane.get().filter(|b| b.keeps_history)?;
    let (Recipients::Topic(topic) | Recipients::TopicOthers(topic, _)) = to else {
        return None;
    };
    if !shared.history.keeps(topic) {
        return None;
    }
    if backplane.forward(Audience::Topic((*topic).into()), msg, true) {
        Some(Delivery::default())
    } else {
        Some(fan_shards(shared, msg, to))
    }
}

/// Delivers a message of `topic` at a position of the backplane's shared log: kept
/// and fanned out under the history lock (see `history.rs`), or recognised as one
/// already delivered.
pub(crate) fn deliver_at<R: Runtime>(
    shared: &Shared<R>,
    topic: &str,
    position: Position,
    msg: &Publication,
) -> (Delivered, Delivery) {
    let to = Recipients::<R>::Topic(topic);
    if !shared.history.keeps(topic) {
        return (Delivered::Unkept, fan_shards(shared, msg, &to));
    }
    let mut store = shared.history.lock();
    if let Some(stamped) = store.append_at(topic, shared.rt.now(), position, msg) {
        return (Delivered::Kept, fan_shards(shared, &stamped, &to));
    }
    let seen = store.last_position(topic).is_some_and(|last| {
        last.epoch() == position.epoch() && position.sequence() <= last.sequence()
    });
    if seen {
        return (Delivered::Duplicate, Delivery::default());
    }
    drop(store);
    (Delivered::Unkept, fan_shards(shared, msg, &to))
}

/// Delivers a message of a history topic here without keeping it or stamping it.
pub(crate) fn deliver_unkept<R: Runtime>(
    shared: &Shared<R>,
    topic: &str,
    msg: &Publication,
) -> Delivery {
    fan_shards(shared, msg, &Recipients::Topic(topic))
}

/// Delivers a message that came from a backplane: to every session (`topic` is `None`)
/// or to a topic's subscribers, here only.
pub(crate) fn deliver_local<R: Runtime>(
    shared: &Shared<R>,
    topic: Option<&str>,
    msg: &Publication,
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

/// Queues `msg` for the recipients on this instance; a history topic's message is
/// stamped and kept first (see `history.rs`).
fn fan_local<R: Runtime>(
    shared: &Shared<R>,
    msg: &Publication,
    to: &Recipients<'_, R>,
) -> Delivery {
    match to {
        Recipients::Topic(topic) | Recipients::TopicOthers(topic, _) => {
            history::publish_kept(&shared.history, shared.rt.now(), topic, msg, |msg| {
                fan_shards(shared, msg, to)
            })
        }
        _ => fan_shards(shared, msg, to),
    }
}

/// Queues `msg` for the recipients on this instance, one shard lock at a time.
fn fan_shards<R: Runtime>(
    shared: &Shared<R>,
    msg: &Publication,
    to: &Recipients<'_, R>,
) -> Delivery {
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
            Recipients::All => hub.publish(now, msg, Target::All),
            Recipients::Others(s) if s.key().shard == shard_id => {
                hub.publish(now, msg, Target::AllExcept(s.key().id))
            }
            Recipients::Others(_) => hub.publish(now, msg, Target::All),
            Recipients::List(_) => match lists.get(&index) {
                Some(ids) => hub.publish(now, msg, Target::List(ids)),
                None => Delivery::default(),
            },
            Recipients::Filter(keep) => {
                let pred = |view: &SessionView<'_, Slot>| {
                    keep(&SessionRef {
                        view,
                        shard: shard_id,
                    })
                };
                hub.publish(now, msg, Target::Filter(&pred))
            }
            Recipients::Topic(topic) => hub.publish(now, msg, Target::Topic(topic)),
            Recipients::TopicOthers(topic, s) if s.key().shard == shard_id => {
                hub.publish(now, msg, Target::TopicExcept(topic, s.key().id))
            }
            Recipients::TopicOthers(topic, _) => hub.publish(now, msg, Target::Topic(topic)),
        });
        total.merge(delivery);
    }
    total
}
