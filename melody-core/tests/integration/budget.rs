//! The hub-wide memory budget (`Config::memory_budget`) under a simulated clock:
//! refusal at its exact byte, for sends and broadcasts and under each drop policy,
//! counted everywhere; bytes given back as they are written or dropped; new sessions
//! admitted meanwhile; partial inbound messages charged as they arrive, a session whose
//! message would pass the budget closed with 1013.

use melody_core::{
    Config, Delivery, DropPolicy, Event, Prepared, SessionError, SessionId, SessionState, Target,
};

use crate::inbound::frame;

use crate::sim::*;

/// A 12-byte frame: a 2-byte header and 10 bytes of text.
fn ten(i: usize) -> Prepared {
    Prepared::text(format!("{i:0>10}"))
}

fn dropped_events(p: &Peer) -> u64 {
    p.events
        .iter()
        .map(|e| match e {
            Event::Dropped { count } => *count,
            _ => 0,
        })
        .sum()
}

#[test]
fn a_send_is_refused_at_the_budgets_exact_byte_and_counted_everywhere() {
    assert_eq!(ten(0).wire_len(), 12);
    let mut s = Sim::new(Config::default().memory_budget(Some(24)));
    let (a, b) = (stalled(&mut s), stalled(&mut s));
    assert_eq!(s.hub.send(a, s.now, &ten(0)), queued(1));
    assert_eq!(
        s.hub.send(b, s.now, &ten(1)),
        queued(1),
        "12 + 12 = 24 fits"
    );
    s.pump();
    assert_eq!(s.hub.stats().memory_held, 24);
    assert_eq!(
        s.hub.send(a, s.now, &ten(2)),
        dropped(1),
        "one byte more than the budget"
    );
    s.pump();
    let stats = s.hub.stats();
    assert_eq!((stats.dropped, stats.over_budget), (1, 1));
    assert_eq!(s.hub.session_stats(a).unwrap().dropped, 1);
    assert_eq!(dropped_events(s.peer(a)), 1);
    // The session's own lane had room: only the budget refused it.
    assert_eq!(s.hub.session_stats(a).unwrap().queued_bytes, 12);

    // b's reader catches up: its bytes go back to the budget, and a's next one fits.
    s.peer(b).reading = Reading::All;
    s.pump();
    assert_eq!(s.peer(b).texts(), vec![format!("{:0>10}", 1)]);
    assert_eq!(s.hub.stats().memory_held, 12);
    assert_eq!(s.hub.send(a, s.now, &ten(3)), queued(1));
    assert_eq!(s.hub.stats().memory_held, 24);
}

#[test]
fn a_broadcast_reaches_the_recipients_that_fit_and_counts_the_rest() {
    let mut s = Sim::new(Config::default().memory_budget(Some(30)));
    let ids: Vec<SessionId> = (0..3).map(|_| stalled(&mut s)).collect();
    let d = s.hub.broadcast(s.now, &ten(0), Target::All);
    assert_eq!(
        d,
        Delivery {
            queued: 2,
            dropped: 1,
            ..Delivery::default()
        },
        "30 bytes hold two 12-byte frames"
    );
    s.pump();
    assert_eq!(s.hub.stats().over_budget, 1);
    let refused: u64 = ids.iter().map(|&id| dropped_events(s.peer(id))).sum();
    assert_eq!(refused, 1, "the refused recipient was told");
}

#[test]
fn every_drop_policy_drops_past_the_budget_and_drop_oldest_may_evict_to_fit() {
    for policy in [DropPolicy::DropNewest, DropPolicy::Disconnect] {
        let mut s = Sim::new(
            Config::default()
                .memory_budget(Some(12))
                .drop_policy(policy),
        );
        let (a, b) = (stalled(&mut s), stalled(&mut s));
        assert_eq!(s.hub.send(a, s.now, &ten(0)), queued(1));
        // b's own lane is empty: the budget, not b's reading, refuses. No disconnect.
        assert_eq!(s.hub.send(b, s.now, &ten(1)), dropped(1), "{policy:?}");
        s.pump();
        assert!(!s.hub.is_closed(b), "{policy:?}");
    }
    // DropOldest with a full one-message lane: evicting the old frame frees its bytes.
    let config = Config::default()
        .memory_budget(Some(12))
        .message_buffer_size(1)
        .drop_policy(DropPolicy::DropOldest);
    let mut s = Sim::new(config);
    let a = stalled(&mut s);
    assert_eq!(s.hub.send(a, s.now, &ten(0)), queued(1));
    s.pump(); // in flight now: never evicted
    assert_eq!(s.hub.send(a, s.now, &ten(1)), dropped(1));
    let mut s = Sim::new(
        Config::default()
            .memory_budget(Some(24))
            .message_buffer_size(2)
            .drop_policy(DropPolicy::DropOldest),
    );
    let a = s.connect();
    s.peer(a).reading = Reading::Stalled;
    // Two queued before any pump: the second is queued, not in flight.
    assert_eq!(s.hub.send(a, s.now, &ten(0)), queued(1));
    assert_eq!(s.hub.send(a, s.now, &ten(1)), queued(1));
    assert_eq!(
        s.hub.send(a, s.now, &ten(2)),
        Delivery {
            queued: 1,
            dropped: 1,
            ..Delivery::default()
        },
        "the oldest queued frame makes room in the lane and in the budget"
    );
    assert_eq!(s.hub.stats().memory_held, 24);
}

#[test]
fn a_session_that_ends_gives_its_bytes_back() {
    let mut s = Sim::new(Config::default().memory_budget(Some(100)));
    let a = stalled(&mut s);
    for i in 0..5 {
        assert_eq!(s.hub.send(a, s.now, &ten(i)), queued(1));
    }
    s.pump();
    assert_eq!(s.hub.stats().memory_held, 60);
    s.hub.handle_eof(a, s.now).unwrap();
    s.pump();
    assert!(s.peer(a).disconnected());
    assert_eq!(s.hub.stats().memory_held, 0);
    assert_eq!(
        s.hub.stats().over_budget,
        0,
        "undelivered on close is not a budget refusal"
    );
}

#[test]
fn new_sessions_are_admitted_while_the_budget_is_full_and_served_once_it_frees() {
    let mut s = Sim::new(Config::default().memory_budget(Some(12)));
    let a = stalled(&mut s);
    assert_eq!(s.hub.send(a, s.now, &ten(0)), queued(1));
    s.pump();
    // Slow readers filling the budget do not lock newcomers out: an idle session
    // holds nothing here.
    let late = s.connect();
    assert!(!s.hub.is_closed(late));
    assert_eq!(s.hub.stats().rejected, 0);
    assert_eq!(s.hub.send(late, s.now, &ten(1)), dropped(1));
    s.peer(a).reading = Reading::All;
    s.pump();
    assert_eq!(s.hub.stats().memory_held, 0);
    assert_eq!(s.hub.send(late, s.now, &ten(2)), queued(1));
    s.pump();
    assert_eq!(s.peer(late).texts(), vec![format!("{:0>10}", 2)]);
}

#[test]
fn the_default_config_bounds_outboxes_in_bytes_and_all_of_them_together() {
    let config = Config::default();
    assert_eq!(config.message_buffer_bytes, Some(1 << 20));
    assert_eq!(config.memory_budget, Some(1 << 30));
    // A slow reader of a 64 KiB echo holds at most 16 such messages (1 MiB), not 256.
    let mut s = Sim::new(config);
    let a = stalled(&mut s);
    let big = Prepared::binary(vec![7u8; 64 * 1024 - 10]);
    assert!(big.wire_len() <= 64 * 1024);
    let mut total = Delivery::default();
    for _ in 0..256 {
        total.merge(s.hub.send(a, s.now, &big));
    }
    assert_eq!(total.queued, 16);
    assert_eq!(total.dropped, 240);
    assert!(s.hub.session_stats(a).unwrap().queued_bytes <= 1 << 20);
}

#[test]
fn a_partial_inbound_message_past_the_budget_closes_its_session_with_1013() {
    let mut s = Sim::new(Config::default().memory_budget(Some(100))).with_app(echo_app);
    let (a, b) = (s.connect(), s.connect());
    // First fragments (text, not final): their payloads are held until the message ends.
    s.peer(a).send_raw(&frame(0x01, &[b'a'; 60]));
    s.pump();
    assert_eq!(s.hub.stats().memory_held, 60);
    s.peer(b).send_raw(&frame(0x01, &[b'b'; 40]));
    s.pump();
    assert_eq!(s.hub.stats().memory_held, 100, "60 + 40 = 100 fits");
    assert_eq!(s.hub.state(b), Some(SessionState::Open));

    // One byte more than the budget: b's message is refused, its bytes given back.
    s.peer(b).send_raw(&frame(0x00, b"!"));
    s.pump();
    assert_eq!(s.hub.stats().inbound_over_budget, 1);
    assert_eq!(s.hub.stats().memory_held, 60);
    assert_eq!(
        s.peer(b)
            .count_events(|e| *e == Event::Error(SessionError::OverBudget)),
        1
    );
    let (code, _) = s.peer(b).close_received().expect("a close frame");
    assert_eq!(code, 1013);

    // a is untouched: its message completes, is echoed, and nothing stays charged.
    s.peer(a).send_raw(&frame(0x80, b"end"));
    s.pump();
    assert_eq!(s.hub.state(a), Some(SessionState::Open));
    let echoed = format!("{}end", "a".repeat(60));
    assert!(s.peer(a).texts().contains(&echoed));
    assert_eq!(s.hub.stats().memory_held, 0);
}
