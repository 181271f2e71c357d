//! Sends and broadcasts with every message accounted for: the drops a call reports are
//! the ones the sessions and the hub counted, and each recipient's message is either
//! queued or counted as dropped, once.

use melody_core::{Delivery, Keys, Prepared, SessionId, SessionState, Target};

use crate::ops::Recipients;
use crate::world::{World, TOPICS};

/// Each unreleased session's drop counter and its sum of queued and dropped messages,
/// to compare with what a send reports.
fn ledger(world: &World) -> Vec<(usize, u64, u64)> {
    world
        .conns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.released)
        .filter_map(|(index, c)| {
            let stats = world.hub.session_stats(c.id)?;
            Some((index, stats.dropped, stats.dropped + stats.queued as u64))
        })
        .collect()
}

/// Checks that the drops a delivery reports are the ones the sessions and the hub
/// counted, no more and no fewer, and records which sessions were offered the message:
/// those whose queued plus dropped count grew, by one per time the target names them
/// (at most `repeats`: a list may name a session twice).
fn settle_offer(
    world: &mut World,
    before: &[(usize, u64, u64)],
    repeats: u64,
    hub_before: u64,
    delivery: Delivery,
) {
    let mut dropped = 0;
    let mut offered = 0;
    for &(index, was_dropped, was_accounted) in before {
        let id = world.conns[index].id;
        let Some(stats) = world.hub.session_stats(id) else {
            panic!("{id:?} lost its stats in a send");
        };
        dropped += stats.dropped - was_dropped;
        let grew = stats.dropped + stats.queued as u64 - was_accounted;
        assert!(grew <= repeats, "{id:?}: one message counted {grew} times");
        world.conns[index].offered += grew;
        offered += grew as usize;
    }
    assert_eq!(
        dropped, delivery.dropped as u64,
        "sessions counted other drops than {delivery:?}"
    );
    assert_eq!(
        world.hub.stats().dropped - hub_before,
        delivery.dropped as u64,
        "the hub counted other drops than {delivery:?}"
    );
    assert!(
        delivery.queued <= offered && offered <= delivery.queued + delivery.dropped,
        "{offered} sessions offered the message, but {delivery:?}"
    );
}

pub fn send(world: &mut World, index: usize, msg: &Prepared) {
    let id = world.conns[index].id;
    let before = ledger(world);
    let hub_before = world.hub.stats().dropped;
    let was_open = world.hub.state(id) == Some(SessionState::Open);
    let delivery = world.hub.send(id, world.now, msg);
    settle_offer(world, &before, 1, hub_before, delivery);
    assert!(delivery.queued + delivery.closed + delivery.disconnected <= 1);
    if !was_open {
        assert_eq!(
            delivery,
            Delivery {
                closed: 1,
                ..Delivery::default()
            },
            "a send to a session that is not open"
        );
    }
}

/// A broadcast filter over session views.
type KeepIf = dyn Fn(&melody_core::SessionView<'_, Keys>) -> bool;

pub fn broadcast(world: &mut World, msg: &Prepared, to: &Recipients) {
    let pick_id = |world: &World, n: u8| world.pick(n).map(|i| world.conns[i].id);
    let topic = |n: u8| TOPICS[usize::from(n) % TOPICS.len()];
    let mut list: Vec<SessionId> = Vec::new();
    let keep: Box<KeepIf>;
    let target = match to {
        Recipients::All => Target::All,
        Recipients::AllExcept(n) => match pick_id(world, *n) {
            Some(id) => Target::AllExcept(id),
            None => Target::All,
        },
        Recipients::List(picks) => {
            list = picks.iter().filter_map(|&n| pick_id(world, n)).collect();
            Target::List(&list)
        }
        Recipients::Filter(n) => {
            let modulus = 1 + u32::from(*n % 4);
            keep = Box::new(move |view| view.id().index() % modulus == 0);
            Target::Filter(&*keep)
        }
        Recipients::Topic(t) => Target::Topic(topic(*t)),
        Recipients::TopicExcept(t, n) => match pick_id(world, *n) {
            Some(id) => Target::TopicExcept(topic(*t), id),
            None => Target::Topic(topic(*t)),
        },
    };
    let repeats = list
        .iter()
        .map(|id| list.iter().filter(|other| *other == id).count() as u64)
        .max()
        .unwrap_or(1);
    let before = ledger(world);
    let hub_before = world.hub.stats().dropped;
    let delivery = world.hub.broadcast(world.now, msg, target);
    settle_offer(world, &before, repeats, hub_before, delivery);
}
