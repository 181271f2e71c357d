//! Fan-out under a simulated clock: every `Target` kind with exact recipients and
//! counts, per-session order, the topic index, stale ids, and `Disconnect` exactly once.

use std::collections::BTreeSet;
use std::time::Duration;

use melody_core::{
    Batch, CloseCode, Config, ConnectionInfo, Delivery, DropPolicy, Event, Hub, Keys, Prepared,
    SessionId, SessionState, SessionView, Target, Transmit,
};
use tungstenite::Message;

use crate::sim::*;

fn delivery(queued: usize, closed: usize) -> Delivery {
    Delivery {
        queued,
        closed,
        ..Delivery::default()
    }
}

/// The text messages each peer received since the last call (then forgets them).
fn take_texts(s: &mut Sim, id: SessionId) -> Vec<String> {
    let p = s.peer(id);
    let texts = p.texts();
    p.messages.retain(|m| !matches!(m, Message::Text(_)));
    texts
}

/// Broadcasts `msg` to `target` and returns the delivery and who received it.
fn fan(
    s: &mut Sim,
    msg: &str,
    target: Target<'_, Keys>,
    all: &[SessionId],
) -> (Delivery, Vec<SessionId>) {
    let d = s.hub.broadcast(s.now, &Prepared::text(msg), target);
    s.pump();
    let mut got = Vec::new();
    for &id in all {
        let texts = take_texts(s, id);
        match texts.as_slice() {
            [] => {}
            [t] if t == msg => got.push(id),
            other => panic!("{id} got {other:?}"),
        }
    }
    (d, got)
}

fn closed_peer(s: &mut Sim) -> SessionId {
    let id = s.connect();
    s.client_send(id, Message::Close(None));
    s.pump();
    assert!(s.peer(id).released, "closed and released");
    id
}

#[test]
fn every_target_kind_reaches_exactly_its_recipients() {
    let mut s = Sim::new(Config::default());
    let stale = closed_peer(&mut s);
    let ids: Vec<SessionId> = (0..5).map(|_| s.connect()).collect();
    let [a, b, c, d, e] = ids[..] else {
        unreachable!()
    };
    // A connection still in its handshake: never a broadcast recipient.
    let shaking = s.open_raw();
    assert_eq!(s.hub.state(shaking), Some(SessionState::Handshake));
    assert_ne!(stale, shaking);
    let mut everyone = ids.clone();
    everyone.push(shaking);

    assert_eq!(
        fan(&mut s, "all", Target::All, &everyone),
        (delivery(5, 0), ids.clone())
    );
    assert_eq!(
        fan(&mut s, "but c", Target::AllExcept(c), &everyone),
        (delivery(4, 0), vec![a, b, d, e])
    );
    assert_eq!(
        fan(
            &mut s,
            "except a stale id",
            Target::AllExcept(stale),
            &everyone
        ),
        (delivery(5, 0), ids.clone())
    );
    assert_eq!(
        fan(
            &mut s,
            "list",
            Target::List(&[e, stale, b, shaking]),
            &everyone
        ),
        (delivery(2, 2), vec![b, e]),
        "the stale id and the handshaking one count as closed"
    );
    assert_eq!(
        fan(&mut s, "empty list", Target::List(&[]), &everyone),
        (delivery(0, 0), vec![])
    );

    s.hub.user_mut(a).unwrap().set("room", 1u32);
    s.hub.user_mut(c).unwrap().set("room", 2u32);
    s.hub.user_mut(d).unwrap().set("room", 1u32);
    s.hub.user_mut(e).unwrap().set("room", String::from("1"));
    let in_room_1 = |v: &SessionView<'_, Keys>| v.user().get::<u32>("room") == Some(&1);
    assert_eq!(
        fan(&mut s, "room 1", Target::Filter(&in_room_1), &everyone),
        (delivery(2, 0), vec![a, d])
    );
    let seen = std::cell::RefCell::new(BTreeSet::new());
    let record = |v: &SessionView<'_, Keys>| {
        seen.borrow_mut().insert(v.id());
        false
    };
    assert_eq!(
        fan(&mut s, "nobody", Target::Filter(&record), &everyone),
        (delivery(0, 0), vec![])
    );
    assert_eq!(
        seen.into_inner(),
        ids.iter().copied().collect::<BTreeSet<_>>(),
        "the filter sees every open session once, and no handshaking one"
    );

    for id in [a, b, e] {
        assert!(s.hub.subscribe(id, "news"));
    }
    assert!(s.hub.subscribe(c, "sport"));
    assert_eq!(
        fan(&mut s, "news", Target::Topic("news"), &everyone),
        (delivery(3, 0), vec![a, b, e])
    );
    assert_eq!(
        fan(
            &mut s,
            "news from b",
            Target::TopicExcept("news", b),
            &everyone
        ),
        (delivery(2, 0), vec![a, e])
    );
    assert_eq!(
        fan(&mut s, "sport", Target::Topic("sport"), &everyone),
        (delivery(1, 0), vec![c])
    );
    assert_eq!(
        fan(&mut s, "nothing", Target::Topic("weather"), &everyone),
        (delivery(0, 0), vec![])
    );

    // A closing session is counted as closed by every kind of target that names it.
    assert!(s.hub.close(b, s.now, CloseCode::Normal, ""));
    assert_eq!(s.hub.state(b), Some(SessionState::Closing));
    let d = s.hub.broadcast(s.now, &Prepared::text("x"), Target::All);
    assert_eq!(d, delivery(4, 1));
    let d = s
        .hub
        .broadcast(s.now, &Prepared::text("x"), Target::Topic("news"));
    assert_eq!(d, delivery(2, 1));
    assert_eq!(s.hub.stats().dropped, 0);
}

#[test]
fn per_session_order_is_kept_over_interleaved_sends_and_broadcasts() {
    let mut s = Sim::new(Config::default());
    let ids: Vec<SessionId> = (0..6).map(|_| s.connect()).collect();
    for (i, &id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            assert!(s.hub.subscribe(id, "even"));
        }
        s.hub.user_mut(id).unwrap().set("n", i);
    }
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); ids.len()];
    // A fixed pseudo-random schedule (an LCG), pumping only now and then.
    let mut x: u64 = 12345;
    for step in 0..400 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = (x >> 33) as usize;
        let who = r % ids.len();
        let msg = format!("{step}");
        let p = Prepared::text(&msg);
        let to: Vec<usize> = match (r / 7) % 6 {
            0 => {
                assert_eq!(s.hub.send(ids[who], s.now, &p).queued, 1);
                vec![who]
            }
            1 => {
                let _ = s.hub.broadcast(s.now, &p, Target::All);
                (0..ids.len()).collect()
            }
            2 => {
                let _ = s.hub.broadcast(s.now, &p, Target::AllExcept(ids[who]));
                (0..ids.len()).filter(|&i| i != who).collect()
            }
            3 => {
                let list = [ids[who], ids[(who + 3) % ids.len()]];
                let _ = s.hub.broadcast(s.now, &p, Target::List(&list));
                vec![who, (who + 3) % ids.len()]
            }
            4 => {
                let odd = |v: &SessionView<'_, Keys>| {
                    v.user().get::<usize>("n").is_some_and(|n| n % 2 == 1)
                };
                let _ = s.hub.broadcast(s.now, &p, Target::Filter(&odd));
                (1..ids.len()).step_by(2).collect()
            }
            _ => {
                let _ = s.hub.broadcast(s.now, &p, Target::Topic("even"));
                (0..ids.len()).step_by(2).collect()
            }
        };
        for i in to {
            expected[i].push(msg.clone());
        }
        if r % 5 == 0 {
            s.pump();
        }
    }
    s.pump();
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(s.peer(id).texts(), expected[i], "session {i}");
        assert!(!expected[i].is_empty());
    }
    assert_eq!(s.hub.stats().dropped, 0);
}

#[test]
fn topic_bookkeeping() {
    let mut s = Sim::new(Config::default());
    let a = s.connect();
    let b = s.connect();
    assert_eq!(s.hub.topic_count(), 0);
    assert!(s.hub.subscribe(a, "news"));
    assert!(!s.hub.subscribe(a, "news"), "subscribing twice");
    assert!(s.hub.subscribe(a, "sport"));
    assert!(s.hub.subscribe(b, "news"));
    assert_eq!(
        s.hub.topics(a).collect::<BTreeSet<_>>(),
        BTreeSet::from(["news", "sport"])
    );
    assert_eq!(s.hub.topics(b).collect::<Vec<_>>(), vec!["news"]);
    assert_eq!(
        s.hub.session(a).unwrap().topics().collect::<BTreeSet<_>>(),
        BTreeSet::from(["news", "sport"])
    );
    assert_eq!(s.hub.subscriber_count("news"), 2);
    assert_eq!(s.hub.subscriber_count("sport"), 1);
    assert_eq!(s.hub.subscriber_count("weather"), 0);
    assert_eq!(s.hub.topic_count(), 2);

    assert!(s.hub.unsubscribe(a, "sport"));
    assert!(!s.hub.unsubscribe(a, "sport"), "not subscribed any more");
    assert!(!s.hub.unsubscribe(b, "weather"));
    assert_eq!(s.hub.topic_count(), 1, "an empty topic is gone");
    assert_eq!(s.hub.subscriber_count("sport"), 0);
    assert!(s.hub.subscribe(a, "sport"), "and can be made again");
    assert_eq!(s.hub.topic_count(), 2);

    // Memberships vanish with the session.
    s.client_send(a, Message::Close(None));
    s.pump();
    assert!(s.peer(a).released);
    assert_eq!(s.hub.topics(a).count(), 0);
    assert_eq!(s.hub.subscriber_count("news"), 1);
    assert_eq!(s.hub.subscriber_count("sport"), 0);
    assert_eq!(s.hub.topic_count(), 1);
    assert!(
        !s.hub.subscribe(a, "news"),
        "a released id cannot subscribe"
    );
    let d = s
        .hub
        .broadcast(s.now, &Prepared::text("n"), Target::Topic("news"));
    assert_eq!(d, delivery(1, 0));

    // A session that is over but not yet released cannot subscribe either.
    s.auto_release = false;
    let c = s.connect();
    assert!(s.hub.subscribe(c, "news"));
    s.hub.handle_eof(c, s.now).unwrap();
    s.pump();
    assert_eq!(s.hub.state(c), Some(SessionState::Finished));
    assert_eq!(s.hub.subscriber_count("news"), 1);
    assert!(!s.hub.subscribe(c, "news"));
    assert_eq!(s.hub.subscriber_count("news"), 1);
}

/// Subscribes five sessions to "t" (and to "u" in reverse order, so positions differ per
/// topic), removes the 2nd, then the last, with `remove`, then publishes.
fn swap_remove_scenario(remove: impl Fn(&mut Sim, SessionId)) {
    let mut s = Sim::new(Config::default());
    let ids: Vec<SessionId> = (0..5).map(|_| s.connect()).collect();
    for &id in &ids {
        assert!(s.hub.subscribe(id, "t"));
    }
    for &id in ids.iter().rev() {
        assert!(s.hub.subscribe(id, "u"));
    }
    remove(&mut s, ids[1]);
    assert_eq!(s.hub.subscriber_count("t"), 4);
    // ids[4] was moved into ids[1]'s place in "t": its stored position must follow.
    remove(&mut s, ids[4]);
    assert_eq!(s.hub.subscriber_count("t"), 3);
    assert_eq!(s.hub.subscriber_count("u"), 3);
    let (d, got) = fan(&mut s, "t", Target::Topic("t"), &ids);
    assert_eq!((d, got), (delivery(3, 0), vec![ids[0], ids[2], ids[3]]));
    let (d, got) = fan(&mut s, "u", Target::Topic("u"), &ids);
    assert_eq!((d, got), (delivery(3, 0), vec![ids[0], ids[2], ids[3]]));
    // Removing the rest one by one, in a scrambled order, empties both topics.
    for i in [2, 0, 3] {
        remove(&mut s, ids[i]);
    }
    assert_eq!(s.hub.subscriber_count("t"), 0);
    assert_eq!(s.hub.subscriber_count("u"), 0);
    assert_eq!(s.hub.topic_count(), 0);
}

#[test]
fn swap_remove_bookkeeping_survives_unsubscribe() {
    swap_remove_scenario(|s, id| {
        assert!(s.hub.unsubscribe(id, "t"));
        assert!(s.hub.unsubscribe(id, "u"));
        assert_eq!(s.hub.topics(id).count(), 0);
    });
}

#[test]
fn swap_remove_bookkeeping_survives_disconnects() {
    swap_remove_scenario(|s, id| {
        s.client_send(id, Message::Close(None));
        s.pump();
        assert!(s.peer(id).released);
    });
}

#[test]
fn swap_remove_bookkeeping_survives_timeouts_of_several_sessions_at_once() {
    let mut s = Sim::new(Config::default());
    let ids: Vec<SessionId> = (0..8)
        .map(|_| {
            let id = s.connect_raw();
            s.pump();
            id
        })
        .collect();
    for &id in &ids {
        assert!(s.hub.subscribe(id, "t"));
    }
    // Sessions 1, 4, 5 and 7 stop answering: they time out in the same tick.
    for i in [1, 4, 5, 7] {
        s.peer(ids[i]).answer_pings = false;
    }
    s.advance(Duration::from_secs(60));
    assert_eq!(s.hub.len(), 4);
    assert_eq!(s.hub.subscriber_count("t"), 4);
    let d = s
        .hub
        .broadcast(s.now, &Prepared::text("t"), Target::Topic("t"));
    assert_eq!(d, delivery(4, 0));
    s.pump();
    // Raw peers read (and skip) the text frame: count the recipients by their stats.
    let reached: Vec<SessionId> = ids
        .iter()
        .copied()
        .filter(|&id| s.hub.session_stats(id).is_some_and(|st| st.sent == 1))
        .collect();
    assert_eq!(reached, vec![ids[0], ids[2], ids[3], ids[6]]);
}

#[test]
fn stale_ids_are_inert_after_release_and_slot_reuse() {
    let mut s = Sim::new(Config::default());
    let old = s.connect();
    assert!(s.hub.subscribe(old, "t"));
    s.hub.user_mut(old).unwrap().set("who", "old");
    s.client_send(old, Message::Close(None));
    s.pump();
    assert!(s.peer(old).released);

    let new = s.connect();
    assert_eq!(new.index(), old.index(), "the slot is reused");
    assert_ne!(new, old, "by another id");
    assert!(s.hub.subscribe(new, "t"));

    let m = Prepared::text("for old");
    assert_eq!(s.hub.send(old, s.now, &m), delivery(0, 1));
    assert_eq!(
        s.hub.broadcast(s.now, &m, Target::List(&[old])),
        delivery(0, 1)
    );
    assert_eq!(
        s.hub.broadcast(s.now, &m, Target::AllExcept(old)),
        delivery(1, 0)
    );
    assert_eq!(
        s.hub.broadcast(s.now, &m, Target::TopicExcept("t", old)),
        delivery(1, 0)
    );
    s.pump();
    assert_eq!(
        s.peer(new).texts(),
        vec!["for old", "for old"],
        "only the two broadcasts"
    );

    assert_eq!(s.hub.state(old), None);
    assert!(s.hub.is_closed(old));
    assert!(!s.hub.close(old, s.now, CloseCode::Normal, ""));
    assert!(!s.hub.subscribe(old, "t"));
    assert!(!s.hub.unsubscribe(old, "t"));
    assert_eq!(s.hub.topics(old).count(), 0);
    assert!(s.hub.user(old).is_none());
    assert!(s.hub.user_mut(old).is_none());
    assert!(s.hub.session(old).is_none());
    assert!(s.hub.session_stats(old).is_none());
    assert_eq!(s.hub.poll_event(old), None);
    assert!(s.hub.handle_input(old, s.now, b"x").is_err());
    assert!(s.hub.handle_eof(old, s.now).is_err());
    assert!(s
        .hub
        .handle_transmitted(old, s.now, 1, &mut Batch::new())
        .is_err());
    assert_eq!(
        s.hub.poll_transmit(old, s.now, &mut Batch::new()),
        Transmit::Finished
    );
    assert!(s.hub.release(old).is_none());
    assert!(!s.hub.user(new).unwrap().contains("who"));

    // The new session was not disturbed by any of it.
    assert_eq!(s.hub.state(new), Some(SessionState::Open));
    assert_eq!(s.hub.topics(new).collect::<Vec<_>>(), vec!["t"]);
    s.pump();
    assert_eq!(s.peer(new).events, vec![Event::Connect]);
    assert_eq!(s.hub.len(), 1);
}

#[test]
fn a_finished_session_not_yet_released_is_listed_ready_once() {
    // A hand-driven loop that takes events and transmits but releases later.
    let now = std::time::Instant::now();
    let mut hub: Hub<()> = Hub::new(Config::default(), now).unwrap();
    let id = hub.open(now, ConnectionInfo::default(), ());
    hub.handle_input(id, now, upgrade_request("").as_bytes())
        .unwrap();
    hub.handle_eof(id, now).unwrap();
    let mut out = Batch::new();
    let mut listed = 0;
    let mut events = Vec::new();
    while let Some(ready) = hub.poll_ready() {
        assert_eq!(ready, id);
        listed += 1;
        assert!(listed < 10, "poll_ready keeps listing a finished session");
        while let Some(e) = hub.poll_event(ready) {
            events.push(e);
        }
        assert_eq!(hub.poll_transmit(ready, now, &mut out), Transmit::Finished);
    }
    assert_eq!(listed, 1);
    assert_eq!(
        events,
        vec![
            Event::Connect,
            Event::Error(melody_core::SessionError::PeerGone),
            Event::Disconnect { undelivered: 0 }
        ]
    );
    assert!(
        out.is_empty(),
        "the 101 was never written and is not handed out now"
    );
    assert_eq!(hub.state(id), Some(SessionState::Finished));
    assert!(hub.release(id).is_some());
    assert_eq!(hub.connection_count(), 0);
}

#[test]
fn disconnect_comes_exactly_once_and_last_for_every_session_of_a_mixed_run() {
    let config = Config::default()
        .message_buffer_size(4)
        .drop_policy(DropPolicy::Disconnect);
    let mut s = Sim::new(config);
    let mut all = Vec::new();

    let client_closes = s.connect();
    let hub_closes = s.connect();
    let silent = s.connect_raw();
    let never_shakes = s.open_raw();
    let bad_request = s.open_raw();
    s.peer(bad_request)
        .send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let stalls = s.connect();
    let slow = s.connect();
    let vanishes = s.connect();
    let violates = s.connect();
    let healthy_raw = s.connect_raw();
    let healthy = s.connect();
    let io_error = s.connect();
    s.pump();
    s.peer(silent).answer_pings = false;
    all.extend([
        client_closes,
        hub_closes,
        silent,
        never_shakes,
        bad_request,
        stalls,
        slow,
        vanishes,
        violates,
        healthy_raw,
        healthy,
        io_error,
    ]);
    for &id in &all {
        // Every connection not over yet can subscribe, a handshaking one too.
        assert_eq!(s.hub.subscribe(id, "everyone"), id != bad_request, "{id}");
    }

    s.client_send(client_closes, Message::Close(None));
    assert!(s.hub.close(hub_closes, s.now, CloseCode::Away, "bye"));
    s.peer(stalls).reading = Reading::Stalled;
    let _ = s.hub.send(stalls, s.now, &Prepared::text("stuck"));
    s.peer(slow).reading = Reading::Stalled;
    for i in 0..5 {
        let _ = s.hub.send(slow, s.now, &Prepared::text(format!("{i}")));
    }
    s.hub.handle_eof(vanishes, s.now).unwrap();
    s.peer(violates).send_raw(&[0x81, 0x02, b'h', b'i']); // unmasked: 1002
    s.hub
        .handle_io_error(io_error, s.now, &std::io::ErrorKind::BrokenPipe.into())
        .unwrap();
    s.pump();
    for step in 0..100 {
        let _ = s.hub.broadcast(
            s.now,
            &Prepared::text(format!("b{step}")),
            Target::Topic("everyone"),
        );
        s.advance(Duration::from_millis(700));
    }
    assert_eq!(s.hub.len(), 2, "only the healthy ones are left at 70 s");
    assert_eq!(s.hub.close_all(s.now, CloseCode::Away, "shutdown"), 2);
    s.advance(Duration::from_secs(10));

    for &id in &all {
        let p = s.peer(id);
        assert_eq!(
            p.count_events(|e| matches!(e, Event::Disconnect { .. })),
            1,
            "{id}: {:?}",
            p.events
        );
        assert!(
            matches!(p.events.last(), Some(Event::Disconnect { .. })),
            "{id}: {:?}",
            p.events
        );
        assert!(p.released);
    }
    let stats = s.hub.stats();
    assert_eq!(stats.opened, all.len() as u64);
    assert_eq!(stats.finished, all.len() as u64);
    assert_eq!(stats.rejected, 1);
    assert_eq!(stats.connected, all.len() as u64 - 2);
    assert_eq!(s.hub.connection_count(), 0);
    assert_eq!(s.hub.len(), 0);
    assert_eq!(s.hub.topic_count(), 0);
}
