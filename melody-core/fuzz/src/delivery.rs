//! Sends and broadcasts with every message accounted for: the drops a call reports are
//! the ones the sessions and the hub counted, and each recipient's message is either
//! queued or counted as dropped, once. Event-stream recipients of a binary message
//! are skipped (counted in `Delivery::skipped` and `HubStats::skipped`, never offered);
//! every event offered to an event stream is recorded, to be found on its wire.

use melody_core::{Delivery, Keys, MessageKind, Publication, SessionId, SessionState, Target};

use crate::conn::Conn;
use crate::ops::Recipients;
use crate::sse_wire::SseEvent;
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
    hub_before: (u64, u64),
    delivery: Delivery,
    msg: &Publication,
    expected_skips: usize,
) {
    let (hub_dropped, hub_skipped) = hub_before;
    for index in 0..world.conns.len() {
        let conn = &world.conns[index];
        if conn.held && world.hub.state(conn.id) == Some(SessionState::Finished) {
            // A slow consumer awaiting its verdict ended in the fan-out: the hub took
            // it off its topics and counted it finished there and then.
            assert_eq!(
                world.hub.topics(conn.id).count(),
                0,
                "ended, yet subscribed"
            );
            // Not held any more (its events say so once taken).
            world.conns[index].held = false;
        }
    }
    let event = (msg.kind() == MessageKind::Text).then(|| {
        let payload = msg.payload();
        let Ok(data) = std::str::from_utf8(&payload) else {
            panic!("a text publication that is not UTF-8");
        };
        SseEvent::expected(data, msg.event_name(), msg.event_id())
    });
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
        let conn = &mut world.conns[index];
        conn.offered += grew;
        offered += grew as usize;
        if conn.stream && grew > 0 {
            let Some(event) = &event else {
                panic!("{id:?}: a binary message offered to an event stream");
            };
            for _ in 0..grew {
                conn.published.push(event.clone());
            }
        }
    }
    assert_eq!(
        delivery.skipped,
        expected_skips,
        "skipped event-stream recipients of a {:?} message: {delivery:?}",
        msg.kind()
    );
    assert_eq!(
        world.hub.stats().skipped - hub_skipped,
        delivery.skipped as u64,
        "the hub counted other skips than {delivery:?}"
    );
    world.skipped += delivery.skipped as u64;
    assert_eq!(
        dropped, delivery.dropped as u64,
        "sessions counted other drops than {delivery:?}"
    );
    assert_eq!(
        world.hub.stats().dropped - hub_dropped,
        delivery.dropped as u64,
        "the hub counted other drops than {delivery:?}"
    );
    assert!(
        delivery.queued <= offered && offered <= delivery.queued + delivery.dropped,
        "{offered} sessions offered the message, but {delivery:?}"
    );
}

/// Whether a binary message for `conn` is skipped: an event stream that takes data
/// (open, or held for a verdict); a closing one counts it closed, like any recipient.
fn skips_binary(world: &World, conn: &Conn) -> bool {
    let state = world.hub.state(conn.id);
    !conn.released
        && conn.stream
        && (state == Some(SessionState::Open)
            || (conn.held && state == Some(SessionState::Handshake)))
}

fn hub_counters(world: &World) -> (u64, u64) {
    let stats = world.hub.stats();
    (stats.dropped, stats.skipped)
}

/// Sends `msg` to `conns[index]`: as a [`Publication`], or (`plain`) as the
/// `Prepared` of its own kind through `Hub::send`.
pub fn send(world: &mut World, index: usize, msg: &Publication, plain: bool) {
    let id = world.conns[index].id;
    let before = ledger(world);
    let hub_before = hub_counters(world);
    let conn = &world.conns[index];
    let was_open = world.hub.state(id) == Some(SessionState::Open);
    let held = conn.held;
    let skips = usize::from(msg.kind() == MessageKind::Binary && skips_binary(world, conn));
    let delivery = if plain {
        world.hub.send(id, world.now, msg.prepared())
    } else {
        world.hub.send_publication(id, world.now, msg)
    };
    settle_offer(world, &before, 1, hub_before, delivery, msg, skips);
    assert!(delivery.queued + delivery.closed + delivery.disconnected + delivery.skipped <= 1);
    if !was_open && !held && skips == 0 {
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

/// Publishes `msg` to `to`: as a [`Publication`], or (`plain`) as the `Prepared` of
/// its own kind through `Hub::broadcast`.
pub fn broadcast(world: &mut World, msg: &Publication, to: &Recipients, plain: bool) {
    let pick_id = |world: &World, n: u8| world.pick(n).map(|i| world.conns[i].id);
    let topic = |n: u8| TOPICS[usize::from(n) % TOPICS.len()];
    let mut list: Vec<SessionId> = Vec::new();
    let keep: Box<KeepIf>;
    // Who the hub will offer the message to, by index in `conns` (with repeats).
    let live = |c: &Conn| !c.released && c.connected && !c.disconnected;
    let recipients: Vec<usize>;
    let target = match to {
        Recipients::All => {
            recipients = (0..world.conns.len())
                .filter(|&i| live(&world.conns[i]))
                .collect();
            Target::All
        }
        Recipients::AllExcept(n) => {
            let except = pick_id(world, *n);
            recipients = (0..world.conns.len())
                .filter(|&i| live(&world.conns[i]) && Some(world.conns[i].id) != except)
                .collect();
            match except {
                Some(id) => Target::AllExcept(id),
                None => Target::All,
            }
        }
        Recipients::List(picks) => {
            recipients = picks.iter().filter_map(|&n| world.pick(n)).collect();
            list = recipients.iter().map(|&i| world.conns[i].id).collect();
            Target::List(&list)
        }
        Recipients::Filter(n) => {
            let modulus = 1 + u32::from(*n % 4);
            recipients = (0..world.conns.len())
                .filter(|&i| live(&world.conns[i]) && world.conns[i].id.index() % modulus == 0)
                .collect();
            keep = Box::new(move |view| view.id().index() % modulus == 0);
            Target::Filter(&*keep)
        }
        Recipients::Topic(t) | Recipients::TopicExcept(t, _) => {
            let except = match to {
                Recipients::TopicExcept(_, n) => pick_id(world, *n),
                _ => None,
            };
            let topic = topic(*t);
            recipients = (0..world.conns.len())
                .filter(|&i| {
                    let c = &world.conns[i];
                    !c.released
                        && Some(c.id) != except
                        && world.hub.topics(c.id).any(|x| x == topic)
                })
                .collect();
            match except {
                Some(id) => Target::TopicExcept(topic, id),
                None => Target::Topic(topic),
            }
        }
    };
    let skips = if msg.kind() == MessageKind::Binary {
        recipients
            .iter()
            .filter(|&&i| skips_binary(world, &world.conns[i]))
            .count()
    } else {
        0
    };
    let repeats = list
        .iter()
        .map(|id| list.iter().filter(|other| *other == id).count() as u64)
        .max()
        .unwrap_or(1);
    let before = ledger(world);
    let hub_before = hub_counters(world);
    let delivery = if plain {
        world.hub.broadcast(world.now, msg.prepared(), target)
    } else {
        world.hub.publish(world.now, msg, target)
    };
    settle_offer(world, &before, repeats, hub_before, delivery, msg, skips);
}
