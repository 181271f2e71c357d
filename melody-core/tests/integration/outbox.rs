//! Bounded outboxes under a simulated clock: every drop policy with exact counts, the
//! byte bound, the close frame behind queued data, undelivered messages, `Event::Sent`.

use std::time::Duration;

use melody_core::{
    Bytes, CloseCode, Config, Delivery, DropPolicy, Event, MessageKind, Prepared, SessionError,
    SessionId, SessionState, Target,
};
use tungstenite::Message;

use crate::sim::*;

fn text(i: usize) -> Prepared {
    Prepared::text(format!("m{i}"))
}

fn texts(range: impl IntoIterator<Item = usize>) -> Vec<String> {
    range.into_iter().map(|i| format!("m{i}")).collect()
}

/// Lets a stalled peer read everything from now on.
fn unstall(s: &mut Sim, id: SessionId) {
    s.peer(id).reading = Reading::All;
    s.pump();
}

/// The sum of the `Dropped` counts a session reported.
fn dropped_events(p: &Peer) -> u64 {
    p.events
        .iter()
        .map(|e| match e {
            Event::Dropped { count } => *count,
            _ => 0,
        })
        .sum()
}

fn config(buffer: usize, policy: DropPolicy) -> Config {
    Config::default()
        .message_buffer_size(buffer)
        .drop_policy(policy)
}

// ---- DropNewest ----------------------------------------------------------------------

#[test]
fn drop_newest_keeps_the_first_eight_counting_in_flight_against_the_bound() {
    let mut s = Sim::new(config(8, DropPolicy::DropNewest));
    let id = stalled(&mut s);
    let mut total = Delivery::default();
    for i in 0..20 {
        let d = s.hub.send(id, s.now, &text(i));
        assert_eq!(d, if i < 8 { queued(1) } else { dropped(1) }, "message {i}");
        total.merge(d);
        // Every accepted message is handed to the (stalled) transport at once: in flight.
        s.pump();
    }
    assert_eq!(
        total,
        Delivery {
            queued: 8,
            dropped: 12,
            closed: 0,
            disconnected: 0,
            skipped: 0,
        }
    );
    let stats = s.hub.session_stats(id).unwrap();
    assert_eq!((stats.queued, stats.dropped, stats.sent), (8, 12, 0));
    assert_eq!(s.hub.stats().dropped, 12);
    // One Dropped event per refused send (each was taken before the next send).
    assert_eq!(
        s.peer(id)
            .count_events(|e| matches!(e, Event::Dropped { count: 1 })),
        12
    );
    assert_eq!(dropped_events(s.peer(id)), 12);

    unstall(&mut s, id);
    assert_eq!(s.peer(id).texts(), texts(0..8));
    let stats = s.hub.session_stats(id).unwrap();
    assert_eq!((stats.queued, stats.dropped, stats.sent), (0, 12, 8));
    // Room again.
    assert_eq!(s.hub.send(id, s.now, &text(20)), queued(1));
    s.pump();
    assert_eq!(s.peer(id).texts().last().map(String::as_str), Some("m20"));
}

#[test]
fn drop_newest_drops_between_polls_merge_into_one_event() {
    let mut s = Sim::new(config(8, DropPolicy::DropNewest));
    let id = stalled(&mut s);
    let mut total = Delivery::default();
    for i in 0..20 {
        total.merge(s.hub.send(id, s.now, &text(i)));
    }
    assert_eq!(
        total,
        Delivery {
            queued: 8,
            dropped: 12,
            ..Delivery::default()
        }
    );
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![Event::Connect, Event::Dropped { count: 12 }]
    );
    unstall(&mut s, id);
    assert_eq!(s.peer(id).texts(), texts(0..8));
    assert_eq!(s.hub.stats().dropped, 12);
}

#[test]
fn drop_newest_broadcast_counts_per_recipient() {
    let mut s = Sim::new(config(8, DropPolicy::DropNewest));
    let ids: Vec<SessionId> = (0..3).map(|_| stalled(&mut s)).collect();
    let fast = s.connect();
    let mut total = Delivery::default();
    for i in 0..20 {
        let d = s.hub.broadcast(s.now, &text(i), Target::List(&ids));
        assert_eq!(d, if i < 8 { queued(3) } else { dropped(3) }, "message {i}");
        total.merge(d);
        // The fast reader takes everything.
        assert_eq!(s.hub.send(fast, s.now, &text(i)), queued(1));
        s.pump();
    }
    assert_eq!(
        total,
        Delivery {
            queued: 24,
            dropped: 36,
            ..Delivery::default()
        }
    );
    assert_eq!(s.hub.stats().dropped, 36);
    for &id in &ids {
        assert_eq!(s.hub.session_stats(id).unwrap().dropped, 12);
        assert_eq!(dropped_events(s.peer(id)), 12);
        unstall(&mut s, id);
        assert_eq!(s.peer(id).texts(), texts(0..8));
    }
    assert_eq!(s.peer(fast).texts(), texts(0..20));
    assert_eq!(s.hub.session_stats(fast).unwrap().dropped, 0);
}

// ---- DropOldest ----------------------------------------------------------------------

#[test]
fn drop_oldest_delivers_what_was_in_flight_plus_the_newest() {
    let mut s = Sim::new(config(8, DropPolicy::DropOldest));
    let id = stalled(&mut s);
    // Three messages go out to the transport in one batch (in flight, never evicted).
    for i in 0..3 {
        assert_eq!(s.hub.send(id, s.now, &text(i)), queued(1));
    }
    s.pump();
    // Seventeen more, without the driver running: five fit, then each evicts the oldest.
    let mut total = Delivery::default();
    for i in 3..20 {
        let d = s.hub.send(id, s.now, &text(i));
        let evicted = usize::from(i >= 8);
        assert_eq!(
            d,
            Delivery {
                queued: 1,
                dropped: evicted,
                ..Delivery::default()
            },
            "{i}"
        );
        total.merge(d);
    }
    assert_eq!(
        total,
        Delivery {
            queued: 17,
            dropped: 12,
            ..Delivery::default()
        }
    );
    let stats = s.hub.session_stats(id).unwrap();
    assert_eq!((stats.queued, stats.dropped), (8, 12));
    assert_eq!(s.hub.stats().dropped, 12);
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![Event::Connect, Event::Dropped { count: 12 }]
    );

    unstall(&mut s, id);
    let mut expected = texts(0..3);
    expected.extend(texts(15..20));
    assert_eq!(s.peer(id).texts(), expected);
    assert_eq!(s.hub.session_stats(id).unwrap().sent, 8);
}

#[test]
fn drop_oldest_refuses_the_new_message_when_everything_is_in_flight() {
    let mut s = Sim::new(config(8, DropPolicy::DropOldest));
    let id = stalled(&mut s);
    for i in 0..8 {
        assert_eq!(s.hub.send(id, s.now, &text(i)), queued(1));
    }
    s.pump(); // all eight in one batch, in flight
    for i in 8..20 {
        assert_eq!(s.hub.send(id, s.now, &text(i)), dropped(1), "{i}");
    }
    assert_eq!(s.hub.stats().dropped, 12);
    unstall(&mut s, id);
    assert_eq!(s.peer(id).texts(), texts(0..8));
    assert_eq!(dropped_events(s.peer(id)), 12);
}

// ---- Disconnect ----------------------------------------------------------------------

#[test]
fn disconnect_policy_closes_a_slow_consumer_with_1008_after_what_is_in_flight() {
    let mut s = Sim::new(config(8, DropPolicy::Disconnect));
    let id = stalled(&mut s);
    for i in 0..3 {
        assert_eq!(s.hub.send(id, s.now, &text(i)), queued(1));
    }
    s.pump(); // in flight, one batch
    for i in 3..8 {
        assert_eq!(s.hub.send(id, s.now, &text(i)), queued(1));
    }
    // The ninth message finds the outbox full: it and the five queued ones are dropped.
    assert_eq!(
        s.hub.send(id, s.now, &text(8)),
        Delivery {
            dropped: 6,
            disconnected: 1,
            ..Delivery::default()
        }
    );
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    for i in 9..20 {
        assert_eq!(s.hub.send(id, s.now, &text(i)), closed(1), "{i}");
    }
    let stats = s.hub.session_stats(id).unwrap();
    assert_eq!((stats.queued, stats.dropped), (3, 6));
    assert_eq!(s.hub.stats().dropped, 6);
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Dropped { count: 6 },
            Event::Error(SessionError::SlowConsumer)
        ]
    );

    unstall(&mut s, id);
    let p = s.peer(id);
    assert_eq!(p.texts(), texts(0..3));
    assert_eq!(
        p.close_received(),
        Some((1008, "slow consumer: outbox full".to_string()))
    );
    assert!(
        matches!(p.messages.last(), Some(Message::Close(_))),
        "the close frame comes after the in-flight data"
    );
    // The client answered the close: the session ends cleanly, nothing left unwritten.
    assert_eq!(p.events.last(), Some(&Event::Disconnect { undelivered: 0 }));
    assert_eq!(p.count_events(|e| matches!(e, Event::Error(_))), 1);
    assert_eq!(s.hub.stats().dropped, 6);
    assert_eq!(s.hub.stats().finished, 1);
}

#[test]
fn disconnect_policy_by_broadcast_counts_disconnected_recipients() {
    let mut s = Sim::new(config(2, DropPolicy::Disconnect));
    let slow = stalled(&mut s);
    let fast = s.connect();
    let mut total = Delivery::default();
    for i in 0..4 {
        total.merge(s.hub.broadcast(s.now, &text(i), Target::All));
        if i == 1 {
            s.pump(); // m0 and m1 go out in one batch: in flight for slow
        }
    }
    s.pump();
    // m0, m1 reach both; m2 finds slow's outbox full (both in flight): m2 dropped, slow
    // disconnected; m3 finds slow closing.
    assert_eq!(
        total,
        Delivery {
            queued: 6,
            dropped: 1,
            closed: 1,
            disconnected: 1,
            skipped: 0,
        }
    );
    assert_eq!(s.peer(fast).texts(), texts(0..4));
    unstall(&mut s, slow);
    assert_eq!(s.peer(slow).texts(), texts(0..2));
    assert_eq!(s.peer(slow).close_received().map(|c| c.0), Some(1008));
    assert!(s.peer(slow).disconnected());
    assert_eq!(s.hub.len(), 1);
}

// ---- byte bound ----------------------------------------------------------------------

#[test]
fn the_byte_bound_counts_wire_bytes_queued_and_in_flight() {
    let config = Config::default().message_buffer_bytes(Some(100));
    let mut s = Sim::new(config);
    let id = stalled(&mut s);
    let ten = |i: usize| Prepared::text(format!("{i:0>10}"));
    assert_eq!(ten(0).wire_len(), 12);
    let mut total = Delivery::default();
    for i in 0..20 {
        let d = s.hub.send(id, s.now, &ten(i));
        // 8 × 12 = 96 bytes fit in 100; a ninth would make 108.
        assert_eq!(d, if i < 8 { queued(1) } else { dropped(1) }, "{i}");
        total.merge(d);
        s.pump();
    }
    assert_eq!(
        total,
        Delivery {
            queued: 8,
            dropped: 12,
            ..Delivery::default()
        }
    );
    // A message larger than the whole bound never fits.
    let big = Prepared::text("x".repeat(99));
    assert_eq!(big.wire_len(), 101);
    assert_eq!(s.hub.send(id, s.now, &big), dropped(1));
    assert_eq!(s.hub.stats().dropped, 13);

    unstall(&mut s, id);
    let expected: Vec<String> = (0..8).map(|i| format!("{i:0>10}")).collect();
    assert_eq!(s.peer(id).texts(), expected);
    // Written bytes free the bound.
    assert_eq!(
        s.hub.send(id, s.now, &Prepared::text("y".repeat(98))),
        queued(1)
    );
    assert_eq!(s.hub.send(id, s.now, &big), dropped(1));
}

#[test]
fn drop_oldest_under_the_byte_bound_evicts_as_many_as_needed() {
    let config = Config::default()
        .message_buffer_bytes(Some(100))
        .drop_policy(DropPolicy::DropOldest);
    let mut s = Sim::new(config);
    let id = stalled(&mut s);
    for i in 0..8 {
        assert_eq!(s.hub.send(id, s.now, &text(i * 10 + 10)), queued(1)); // "mNN": 5 bytes
    }
    // 8 × 5 = 40 bytes; a 62-byte message needs 40 + 62 − 100 = 2 bytes freed: one evicted.
    let big = Prepared::text("x".repeat(60));
    assert_eq!(big.wire_len(), 62);
    assert_eq!(
        s.hub.send(id, s.now, &big),
        Delivery {
            queued: 1,
            dropped: 1,
            ..Delivery::default()
        }
    );
    // Another 62 bytes onto 97: the seven small ones (35 bytes) are not enough to free
    // 59, so the first big one goes too: eight evicted.
    let d = s.hub.send(id, s.now, &big);
    assert_eq!(
        d,
        Delivery {
            queued: 1,
            dropped: 8,
            ..Delivery::default()
        }
    );
    s.pump();
    unstall(&mut s, id);
    assert_eq!(s.peer(id).texts(), vec!["x".repeat(60)]);
    assert_eq!(s.hub.session_stats(id).unwrap().dropped, 9);
}

#[test]
fn drop_oldest_evicts_nothing_when_even_an_empty_queue_would_not_make_room() {
    let config = Config::default()
        .message_buffer_bytes(Some(100))
        .drop_policy(DropPolicy::DropOldest);
    let mut s = Sim::new(config);
    let id = stalled(&mut s);
    let ten = |i: usize| Prepared::text(format!("{i:0>10}")); // 12 bytes
    for i in 0..5 {
        assert_eq!(s.hub.send(id, s.now, &ten(i)), queued(1));
    }
    s.pump(); // 60 bytes in flight, one batch
    for i in 5..8 {
        assert_eq!(s.hub.send(id, s.now, &ten(i)), queued(1)); // 36 bytes queued
    }
    // 50 bytes: 60 in flight + 50 > 100 even with the queue emptied. Evicting the three
    // queued messages would lose them for nothing: the new one alone is refused.
    let big = Prepared::text("x".repeat(48));
    assert_eq!(big.wire_len(), 50);
    assert_eq!(s.hub.send(id, s.now, &big), dropped(1));
    assert_eq!(s.hub.session_stats(id).unwrap().queued, 8);
    // 40 bytes fit once all three queued ones go: 60 + 40 = 100.
    let fits = Prepared::text("y".repeat(38));
    assert_eq!(
        s.hub.send(id, s.now, &fits),
        Delivery {
            queued: 1,
            dropped: 3,
            ..Delivery::default()
        }
    );
    let stats = s.hub.session_stats(id).unwrap();
    assert_eq!((stats.queued, stats.dropped), (6, 4));
    assert_eq!(s.hub.stats().dropped, 4);
    s.pump();
    assert_eq!(dropped_events(s.peer(id)), 4);
    unstall(&mut s, id);
    let mut expected: Vec<String> = (0..5).map(|i| format!("{i:0>10}")).collect();
    expected.push("y".repeat(38));
    assert_eq!(s.peer(id).texts(), expected, "every loss was counted");
}

// ---- close behind data ---------------------------------------------------------------

#[test]
fn a_close_goes_out_after_all_queued_data() {
    let mut s = Sim::new(Config::default());
    let id = stalled(&mut s);
    for i in 0..5 {
        assert_eq!(s.hub.send(id, s.now, &text(i)), queued(1));
    }
    s.pump();
    assert!(s.hub.close(id, s.now, CloseCode::Normal, "bye"));
    assert!(
        !s.hub.close(id, s.now, CloseCode::Away, "again"),
        "already closing"
    );
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    assert_eq!(s.hub.send(id, s.now, &text(5)), closed(1));
    assert_eq!(
        s.hub.broadcast(s.now, &text(5), Target::All),
        closed(1),
        "a closing session is counted, not reached"
    );
    for i in 6..8 {
        assert_eq!(s.hub.send(id, s.now, &text(i)), closed(1));
    }
    s.pump();
    unstall(&mut s, id);
    let p = s.peer(id);
    assert_eq!(p.texts(), texts(0..5));
    assert_eq!(p.messages.len(), 6);
    assert_eq!(
        p.messages.last(),
        Some(&Message::Close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into()
        })))
    );
    // Clean end: no error, nothing undelivered.
    assert_eq!(p.count_events(|e| matches!(e, Event::Error(_))), 0);
    assert_eq!(p.events.last(), Some(&Event::Disconnect { undelivered: 0 }));
    assert_eq!(s.hub.stats().dropped, 0);
}

#[test]
fn a_close_queued_before_the_driver_runs_still_follows_the_data() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    for i in 0..3 {
        let _ = s.hub.send(id, s.now, &text(i));
    }
    assert!(s.hub.close(id, s.now, CloseCode::Away, "shutdown"));
    s.pump();
    let p = s.peer(id);
    assert_eq!(p.texts(), texts(0..3));
    assert_eq!(p.messages.len(), 4);
    assert_eq!(p.close_received(), Some((1001, "shutdown".to_string())));
    assert_eq!(p.events.last(), Some(&Event::Disconnect { undelivered: 0 }));
}

// ---- undelivered ---------------------------------------------------------------------

#[test]
fn messages_left_unwritten_by_a_vanished_peer_are_reported_and_counted() {
    let mut s = Sim::new(Config::default());
    s.auto_release = false;
    let a = stalled(&mut s);
    let b = stalled(&mut s);
    for i in 0..3 {
        assert_eq!(s.hub.send(a, s.now, &text(i)), queued(1));
    }
    s.pump(); // a's three messages are in flight
    for i in 0..2 {
        assert_eq!(s.hub.send(b, s.now, &text(i)), queued(1)); // b's stay queued
    }
    s.hub.handle_eof(a, s.now).unwrap();
    s.hub.handle_eof(b, s.now).unwrap();
    s.pump();
    assert_eq!(
        s.peer(a).events,
        vec![
            Event::Connect,
            Event::Error(SessionError::PeerGone),
            Event::Disconnect { undelivered: 3 }
        ]
    );
    assert_eq!(
        s.peer(b).events[1..],
        [
            Event::Error(SessionError::PeerGone),
            Event::Disconnect { undelivered: 2 }
        ]
    );
    assert_eq!(s.hub.session_stats(a).unwrap().dropped, 3);
    assert_eq!(s.hub.session_stats(b).unwrap().dropped, 2);
    assert_eq!(s.hub.session_stats(a).unwrap().queued, 0);
    assert_eq!(s.hub.stats().dropped, 5);
    assert_eq!(s.hub.stats().finished, 2);
    assert_eq!(s.hub.send(a, s.now, &text(9)), closed(1), "over");
    assert!(s.hub.release(a).is_some());
    assert!(s.hub.release(b).is_some());
    assert_eq!(s.hub.stats().dropped, 5, "release counts nothing twice");
}

#[test]
fn a_partly_written_message_is_undelivered_and_not_sent() {
    let mut s = Sim::new(Config::default().sent_events(true));
    s.auto_release = false;
    let id = s.connect();
    s.peer(id).reading = Reading::Window(20);
    for i in 0..3 {
        assert_eq!(
            s.hub.send(id, s.now, &Prepared::text(format!("{i:0>10}"))),
            queued(1)
        );
    }
    s.pump();
    // 20 bytes written: the first 12-byte message whole, 8 bytes of the second.
    let stats = s.hub.session_stats(id).unwrap();
    assert_eq!((stats.sent, stats.queued), (1, 2));
    assert_eq!(
        s.peer(id).count_events(|e| matches!(e, Event::Sent { .. })),
        1
    );
    s.hub
        .handle_io_error(id, s.now, &std::io::ErrorKind::ConnectionReset.into())
        .unwrap();
    s.pump();
    let p = s.peer(id);
    assert_eq!(p.events.last(), Some(&Event::Disconnect { undelivered: 2 }));
    assert!(matches!(
        p.events[p.events.len() - 2],
        Event::Error(SessionError::Io {
            kind: std::io::ErrorKind::ConnectionReset,
            ..
        })
    ));
    assert_eq!(s.hub.session_stats(id).unwrap().dropped, 2);
    assert_eq!(s.hub.stats().dropped, 2);
}

#[test]
fn a_write_timeout_reports_queued_and_in_flight_messages_as_undelivered() {
    let mut s = Sim::new(config(4, DropPolicy::DropNewest));
    let id = stalled(&mut s);
    for i in 0..2 {
        let _ = s.hub.send(id, s.now, &text(i));
        s.pump();
    }
    for i in 2..6 {
        let _ = s.hub.send(id, s.now, &text(i)); // 2 queued, 2 dropped
    }
    assert_eq!(s.hub.stats().dropped, 2);
    s.advance(Duration::from_secs(10));
    let p = s.peer(id);
    assert_eq!(
        p.events[1..],
        [
            Event::Dropped { count: 2 },
            Event::Error(SessionError::WriteTimeout),
            Event::Disconnect { undelivered: 4 }
        ]
    );
    assert_eq!(s.hub.stats().dropped, 6);
}

// ---- Event::Sent ---------------------------------------------------------------------

#[test]
fn sent_events_report_each_fully_written_message_once_in_order() {
    let mut s = Sim::new(Config::default().sent_events(true));
    let id = s.connect();
    let other = s.connect();
    let msgs = [
        Prepared::text("one"),
        Prepared::binary([2u8, 2]),
        Prepared::text("three"),
    ];
    for m in &msgs {
        assert_eq!(s.hub.send(id, s.now, m), queued(1));
    }
    assert_eq!(
        s.hub.broadcast(s.now, &Prepared::text("four"), Target::All),
        queued(2)
    );
    s.pump();
    let sent: Vec<&Event> = s
        .peer(id)
        .events
        .iter()
        .filter(|e| matches!(e, Event::Sent { .. }))
        .collect();
    assert_eq!(
        sent,
        vec![
            &Event::Sent {
                kind: MessageKind::Text,
                payload: Bytes::from_static(b"one")
            },
            &Event::Sent {
                kind: MessageKind::Binary,
                payload: Bytes::from_static(&[2, 2])
            },
            &Event::Sent {
                kind: MessageKind::Text,
                payload: Bytes::from_static(b"three")
            },
            &Event::Sent {
                kind: MessageKind::Text,
                payload: Bytes::from_static(b"four")
            },
        ]
    );
    assert_eq!(
        s.peer(other).events,
        vec![
            Event::Connect,
            Event::Sent {
                kind: MessageKind::Text,
                payload: Bytes::from_static(b"four")
            }
        ]
    );
    // Pings, pongs and the close frame are not data: no Sent for them.
    s.advance(Duration::from_secs(60));
    assert!(s.hub.close(id, s.now, CloseCode::Normal, ""));
    s.pump();
    assert_eq!(
        s.peer(id).count_events(|e| matches!(e, Event::Sent { .. })),
        4
    );
    assert_eq!(s.hub.stats().dropped, 0);
}

#[test]
fn sent_events_wait_for_the_last_byte_of_a_message() {
    let mut s = Sim::new(Config::default().sent_events(true));
    let id = s.connect();
    s.peer(id).reading = Reading::Window(5);
    let msg = Prepared::text("hello world"); // 13 bytes on the wire
    assert_eq!(s.hub.send(id, s.now, &msg), queued(1));
    s.pump();
    let sent = |s: &mut Sim| s.peer(id).count_events(|e| matches!(e, Event::Sent { .. }));
    assert_eq!(sent(&mut s), 0, "5 of 13 bytes");
    s.drain(id);
    assert_eq!(sent(&mut s), 0, "10 of 13 bytes");
    s.drain(id);
    assert_eq!(sent(&mut s), 1, "13 of 13 bytes");
    s.drain(id);
    assert_eq!(s.peer(id).texts(), vec!["hello world"]);
    assert_eq!(sent(&mut s), 1);
}

#[test]
fn sent_events_are_off_by_default_and_can_be_switched_on() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    let _ = s.hub.send(id, s.now, &text(0));
    s.pump();
    assert_eq!(
        s.peer(id).count_events(|e| matches!(e, Event::Sent { .. })),
        0
    );
    assert_eq!(s.hub.session_stats(id).unwrap().sent, 1);
    s.hub.set_sent_events(true);
    let _ = s.hub.send(id, s.now, &text(1));
    s.pump();
    assert_eq!(
        s.peer(id).events.last(),
        Some(&Event::Sent {
            kind: MessageKind::Text,
            payload: Bytes::from_static(b"m1")
        })
    );
    assert_eq!(s.hub.session_stats(id).unwrap().sent, 2);
}
