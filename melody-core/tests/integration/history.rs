//! Topic history and resume, on the simulated clock: positions, replay from every
//! interesting position, gaps, eviction at exact times, memory given back.

use std::time::Duration;

use melody_core::history::{GapReason, HistoryLimits, HistoryRules, Position, Recovery, GAP_EVENT};
use melody_core::sse::Event as Sse;
use melody_core::{Admission, Config, ConfigError, Event, Publication, SessionId, Target};

use crate::sim::Sim;

const SEED: u64 = 0x100;

fn sim_with(limits: HistoryLimits) -> Sim {
    let rules = HistoryRules::new()
        .prefix("device/", limits)
        .epoch_seed(SEED);
    Sim::new(Config::default().history(rules))
}

/// Publishes `texts` to `topic`; returns the positions they got.
fn publish(s: &mut Sim, topic: &str, texts: &[&str]) -> Vec<Position> {
    texts
        .iter()
        .map(|t| {
            s.hub
                .publish(s.now, &Publication::text(t), Target::Topic(topic));
            s.hub
                .last_position(topic)
                .expect("a history topic gives every message a position")
        })
        .collect()
}

fn texts(s: &mut Sim, id: SessionId) -> Vec<String> {
    s.pump();
    s.peer(id).texts()
}

#[test]
fn resume_from_none_latest_and_middle_replays_exactly_what_followed() {
    let mut s = sim_with(HistoryLimits::new().max_messages(100));
    let positions = publish(&mut s, "device/1", &["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(
        positions[4].to_string(),
        "100.5",
        "hex epoch, dot, sequence"
    );

    let fresh = s.connect();
    let resume = s.hub.subscribe_from(fresh, s.now, "device/1", None);
    assert_eq!((resume.recovery, resume.replayed), (Recovery::Live, 0));

    let current = s.connect();
    let resume = s
        .hub
        .subscribe_from(current, s.now, "device/1", Some(positions[4]));
    assert_eq!((resume.recovery, resume.replayed), (Recovery::Complete, 0));
    assert!(resume.is_complete());

    let behind = s.connect();
    let resume = s
        .hub
        .subscribe_from(behind, s.now, "device/1", Some(positions[1]));
    assert_eq!((resume.recovery, resume.replayed), (Recovery::Complete, 3));
    assert_eq!(resume.last, Some(positions[4]));

    s.hub
        .publish(s.now, &Publication::text("live"), Target::Topic("device/1"));
    assert_eq!(texts(&mut s, fresh), ["live"]);
    assert_eq!(texts(&mut s, current), ["live"]);
    assert_eq!(texts(&mut s, behind), ["m3", "m4", "m5", "live"]);
    assert_eq!(s.hub.stats().history.gaps, 0);
}

#[test]
fn publishes_around_a_resume_are_neither_duplicated_nor_lost() {
    // Every interleaving: `before` messages published, a resume from each position,
    // then the rest published.
    const TOTAL: usize = 6;
    for before in 0..=TOTAL {
        for from in 0..=before {
            let mut s = sim_with(HistoryLimits::new().max_messages(100));
            let all: Vec<String> = (1..=TOTAL).map(|i| format!("m{i}")).collect();
            for text in &all[..before] {
                s.hub
                    .publish(s.now, &Publication::text(text), Target::Topic("device/9"));
            }
            let id = s.connect();
            let position = Position::new(SEED, from as u64);
            let resume = s.hub.subscribe_from(id, s.now, "device/9", Some(position));
            if before == 0 {
                // No history yet: the position cannot be from it.
                assert_eq!(resume.recovery, Recovery::Gap(GapReason::OtherEpoch));
            } else {
                assert_eq!(
                    resume.recovery,
                    Recovery::Complete,
                    "before={before} from={from}"
                );
            }
            for text in &all[before..] {
                s.hub
                    .publish(s.now, &Publication::text(text), Target::Topic("device/9"));
            }
            assert_eq!(
                texts(&mut s, id),
                all[from..],
                "before={before} from={from}: each message once, in order"
            );
        }
    }
}

#[test]
fn an_evicted_position_is_a_gap_the_session_is_told_about_and_gets_what_is_kept() {
    let mut s = sim_with(HistoryLimits::new().max_messages(3));
    let positions = publish(&mut s, "device/2", &["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(s.hub.stats().history.messages, 3);

    // Position 2 is just before the oldest kept (3): nothing is missing.
    let edge = s.connect();
    let resume = s
        .hub
        .subscribe_from(edge, s.now, "device/2", Some(positions[1]));
    assert_eq!((resume.recovery, resume.replayed), (Recovery::Complete, 3));

    let late = s.connect();
    let resume = s
        .hub
        .subscribe_from(late, s.now, "device/2", Some(positions[0]));
    assert_eq!(resume.recovery, Recovery::Gap(GapReason::TooOld));
    assert_eq!(resume.replayed, 3);
    assert!(!resume.is_complete());
    assert_eq!(texts(&mut s, late), ["m3", "m4", "m5"]);
    let gaps = s.peer(late).count_events(|e| {
        matches!(e, Event::HistoryGap { topic, reason: GapReason::TooOld } if topic == "device/2")
    });
    assert_eq!(gaps, 1);
    assert_eq!(s.hub.stats().history.gaps, 1);
}

#[test]
fn a_position_from_another_epoch_is_a_gap_and_dropping_a_history_starts_a_new_epoch() {
    let mut s = sim_with(HistoryLimits::new().max_messages(10));
    let old = publish(&mut s, "device/3", &["a", "b"]);
    assert!(s.hub.drop_history("device/3"));
    s.hub
        .publish(s.now, &Publication::text("c"), Target::Topic("device/3"));

    let id = s.connect();
    let resume = s.hub.subscribe_from(id, s.now, "device/3", Some(old[1]));
    assert_eq!(resume.recovery, Recovery::Gap(GapReason::OtherEpoch));
    assert_eq!(texts(&mut s, id), ["c"]);
    let last = resume.last.expect("c was replayed");
    assert_ne!(
        last.epoch(),
        old[1].epoch(),
        "a new epoch after the history was lost"
    );
    assert_eq!(last.sequence(), 1);

    // Ahead of the history in its own epoch: not a position it handed out.
    let ahead = s.connect();
    let resume = s.hub.subscribe_from(
        ahead,
        s.now,
        "device/3",
        Some(Position::new(last.epoch(), 99)),
    );
    assert_eq!(resume.recovery, Recovery::Gap(GapReason::Unrecognized));
    // Garbage from a client is a gap too, never an error.
    let garbage = s.connect();
    let resume = s.hub.subscribe_from_text(garbage, s.now, "device/3", "%%");
    assert_eq!(resume.recovery, Recovery::Gap(GapReason::Unrecognized));
    assert_eq!(texts(&mut s, garbage), ["c"]);
    assert_eq!(s.hub.stats().history.gaps, 3);
}

#[test]
fn count_bytes_and_age_bounds_evict_at_exact_points() {
    // Count: the fourth message evicts the first.
    let mut s = sim_with(HistoryLimits::new().max_messages(3));
    publish(&mut s, "device/c", &["1", "2", "3"]);
    assert_eq!(s.hub.stats().history.messages, 3);
    publish(&mut s, "device/c", &["4"]);
    assert_eq!(s.hub.stats().history.messages, 3);

    // Bytes: three 2+8-byte frames fit in 30 bytes; a fourth evicts the first.
    let mut s = sim_with(HistoryLimits::new().max_bytes(30));
    publish(&mut s, "device/b", &["12345678", "12345678", "12345678"]);
    assert_eq!(
        (s.hub.stats().history.messages, s.hub.stats().history.bytes),
        (3, 30)
    );
    publish(&mut s, "device/b", &["12345678"]);
    assert_eq!(
        (s.hub.stats().history.messages, s.hub.stats().history.bytes),
        (3, 30)
    );
    // One message larger than the bound is not kept at all.
    publish(&mut s, "device/b", &[&"x".repeat(40)]);
    assert_eq!(s.hub.stats().history.messages, 0);

    // Age: kept until just before max_age, gone at exactly max_age (time passed in).
    let age = Duration::from_secs(10);
    let mut s = sim_with(HistoryLimits::new().max_age(age));
    let first = publish(&mut s, "device/a", &["old"])[0];
    s.advance(Duration::from_secs(4));
    publish(&mut s, "device/a", &["newer"]);
    s.advance(age - Duration::from_secs(4) - Duration::from_nanos(1));
    assert_eq!(
        s.hub.stats().history.messages,
        2,
        "1 ns before max_age: kept"
    );
    s.advance(Duration::from_nanos(1));
    assert_eq!(s.hub.stats().history.messages, 1, "at max_age: evicted");
    let id = s.connect();
    let resume = s.hub.subscribe_from(id, s.now, "device/a", Some(first));
    assert_eq!((resume.recovery, resume.replayed), (Recovery::Complete, 1));
    assert_eq!(texts(&mut s, id), ["newer"]);
    s.advance(Duration::from_secs(4));
    assert_eq!(
        (s.hub.stats().history.messages, s.hub.stats().history.bytes),
        (0, 0)
    );
}

#[test]
fn topics_without_history_keep_nothing_and_dropped_histories_give_memory_back() {
    let mut s = sim_with(HistoryLimits::new().max_messages(10));
    let id = s.connect();
    s.hub.subscribe(id, "chat");
    s.hub
        .publish(s.now, &Publication::text("hi"), Target::Topic("chat"));
    s.hub.publish(
        s.now,
        &Publication::text("hi"),
        Target::Topic("nobody/listens"),
    );
    assert_eq!(s.hub.stats().history.topics, 0, "no rule, no history");
    assert_eq!(texts(&mut s, id), ["hi"], "no position on a plain topic");

    for i in 0..5 {
        publish(&mut s, &format!("device/{i}"), &["x", "y"]);
    }
    let stats = s.hub.stats().history;
    assert_eq!((stats.topics, stats.messages, stats.bytes), (5, 10, 30));
    for i in 0..5 {
        assert!(s.hub.drop_history(&format!("device/{i}")));
    }
    let stats = s.hub.stats().history;
    assert_eq!((stats.topics, stats.messages, stats.bytes), (0, 0, 0));
}

#[test]
fn the_history_topic_cap_refuses_new_topics_and_counts_them() {
    let rules = HistoryRules::new()
        .prefix("device/", HistoryLimits::new().max_messages(1))
        .max_topics(2);
    let mut s = Sim::new(Config::default().history(rules));
    for i in 0..3 {
        s.hub.publish(
            s.now,
            &Publication::text("x"),
            Target::Topic(&format!("device/{i}")),
        );
    }
    let stats = s.hub.stats().history;
    assert_eq!((stats.topics, stats.unrecorded), (2, 1));
}

#[test]
fn only_sessions_that_opt_in_see_positions_and_event_streams_get_them_as_ids() {
    let mut s = sim_with(HistoryLimits::new().max_messages(10));
    let plain = s.connect();
    let positioned = s.connect();
    s.hub
        .apply_admission(positioned, &Admission::new().positions(true))
        .expect("open");
    for id in [plain, positioned] {
        s.hub.subscribe(id, "device/5");
    }
    // An id the publisher set is replaced by the position on a history topic.
    let event = Sse::new("21.5")
        .name("reading")
        .and_then(|e| e.id("mine"))
        .expect("valid");
    s.hub
        .publish(s.now, &Publication::event(event), Target::Topic("device/5"));
    s.hub
        .publish(s.now, &Publication::text("two"), Target::Topic("device/5"));
    assert_eq!(texts(&mut s, plain), ["21.5", "two"]);
    assert_eq!(texts(&mut s, positioned), ["100.1\n21.5", "100.2\ntwo"]);

    // A plain topic's messages are never wrapped.
    s.hub.subscribe(positioned, "chat");
    s.hub
        .publish(s.now, &Publication::text("hi"), Target::Topic("chat"));
    assert_eq!(
        texts(&mut s, positioned).last().map(String::as_str),
        Some("hi")
    );
}

/// An event stream's raw output so far, as text (chunk framing included).
fn stream_output(s: &mut Sim, id: SessionId) -> String {
    s.pump();
    String::from_utf8_lossy(&s.peer(id).take_raw()).into_owned()
}

fn open_stream(s: &mut Sim, last_event_id: Option<&str>) -> SessionId {
    let header = last_event_id.map_or(String::new(), |p| format!("Last-Event-ID: {p}\r\n"));
    let id = s.open_raw();
    let request = format!(
        "GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n{header}\r\n"
    );
    s.peer(id).send_raw(request.as_bytes());
    s.pump();
    id
}

#[test]
fn an_event_stream_resumes_from_last_event_id_on_history_topics() {
    let mut s = sim_with(HistoryLimits::new().max_messages(3));
    let positions = publish(&mut s, "device/7", &["m1", "m2", "m3"]);

    let back = open_stream(&mut s, Some(&positions[0].to_string()));
    assert!(s.hub.subscribe(back, "device/7"));
    let out = stream_output(&mut s, back);
    assert!(out.contains("id: 100.2\ndata: m2\n\n"), "{out}");
    assert!(out.contains("id: 100.3\ndata: m3\n\n"), "{out}");
    assert!(!out.contains("m1"), "{out}");
    assert!(!out.contains(GAP_EVENT), "{out}");

    // Too old: told with the reserved event first, then everything kept.
    publish(&mut s, "device/7", &["m4", "m5"]);
    let late = open_stream(&mut s, Some(&positions[0].to_string()));
    s.hub.subscribe(late, "device/7");
    let out = stream_output(&mut s, late);
    let gap = out
        .find("event: melody-gap\ndata: too-old\n\n")
        .expect(&out);
    let m3 = out.find("id: 100.3\ndata: m3").expect(&out);
    assert!(gap < m3, "the gap event comes before the replay: {out}");

    // Garbage is a gap, never a failure; a plain topic ignores the header.
    let odd = open_stream(&mut s, Some("not-a-position"));
    s.hub.subscribe(odd, "device/7");
    s.hub.subscribe(odd, "chat");
    let out = stream_output(&mut s, odd);
    assert!(out.contains("data: unrecognized"), "{out}");
    assert_eq!(s.hub.stats().history.gaps, 2);

    // A WebSocket session's request header is not a resume.
    let ws = s.connect();
    s.hub.subscribe(ws, "device/7");
    s.hub
        .publish(s.now, &Publication::text("live"), Target::Topic("device/7"));
    assert_eq!(texts(&mut s, ws), ["live"]);
}

#[test]
fn history_rules_are_validated() {
    let unbounded = HistoryRules::new().topic("a", HistoryLimits::new());
    assert!(matches!(
        Config::default().history(unbounded).validate(),
        Err(ConfigError::History(_))
    ));
    let zero_age = HistoryRules::new().topic("a", HistoryLimits::new().max_age(Duration::ZERO));
    assert!(Config::default().history(zero_age).validate().is_err());
}

#[test]
fn positions_handed_out_elsewhere_are_kept_in_order_with_holes_and_new_epochs_detected() {
    use melody_core::history::HistoryStore;
    let rules = HistoryRules::new().topic("t", HistoryLimits::new().max_messages(10));
    let mut store = HistoryStore::new(rules);
    let s = Sim::new(Config::default());
    let msg = |text: &str| Publication::text(text);
    for seq in 5..=7 {
        let kept = store.append_at("t", s.now, Position::new(9, seq), &msg(&format!("m{seq}")));
        assert_eq!(kept.and_then(|m| m.position()), Some(Position::new(9, seq)));
    }
    assert!(store
        .append_at("t", s.now, Position::new(9, 6), &msg("again"))
        .is_none());
    let replay = store.replay("t", s.now, Some(Position::new(9, 5)));
    let got: Vec<_> = replay.messages.iter().map(|m| m.payload()).collect();
    assert_eq!((replay.recovery, got.len()), (Recovery::Complete, 2));

    // A hole (8 never came): what came before it is not a complete past any more.
    store.append_at("t", s.now, Position::new(9, 9), &msg("m9"));
    let replay = store.replay("t", s.now, Some(Position::new(9, 7)));
    assert_eq!(replay.recovery, Recovery::Gap(GapReason::TooOld));
    assert_eq!(replay.messages.len(), 1);

    // Another epoch: the shared log was lost and started over.
    store.append_at("t", s.now, Position::new(10, 1), &msg("fresh"));
    let replay = store.replay("t", s.now, Some(Position::new(9, 9)));
    assert_eq!(replay.recovery, Recovery::Gap(GapReason::OtherEpoch));
    assert_eq!(store.last_position("t"), Some(Position::new(10, 1)));
}

#[test]
fn a_replay_longer_than_the_outbox_keeps_its_newest_part_and_is_a_gap() {
    let rules = HistoryRules::new()
        .prefix("device/", HistoryLimits::new().max_messages(100))
        .epoch_seed(SEED);
    let mut s = Sim::new(Config::default().history(rules).message_buffer_size(4));
    let texts_sent: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    for t in &texts_sent {
        s.hub
            .publish(s.now, &Publication::text(t), Target::Topic("device/1"));
    }
    let id = s.connect();
    let resume = s
        .hub
        .subscribe_from(id, s.now, "device/1", Some(Position::new(SEED, 0)));
    assert_eq!(resume.recovery, Recovery::Gap(GapReason::OutboxFull));
    assert_eq!((resume.replayed, resume.dropped), (4, 0));
    assert_eq!(
        texts(&mut s, id),
        texts_sent[6..],
        "the newest four, nothing dropped unseen"
    );
    assert_eq!(s.hub.stats().history.gaps, 1);
    assert_eq!(s.hub.stats().dropped, 0);

    // An event stream: the gap event takes a place in the outbox as well.
    let stream = open_stream(&mut s, Some(&Position::new(SEED, 0).to_string()));
    s.hub.subscribe(stream, "device/1");
    let out = stream_output(&mut s, stream);
    let gap = out.find("data: outbox-full").expect(&out);
    let first = out.find("data: m8").expect(&out);
    assert!(gap < first && !out.contains("data: m7\n"), "{out}");
    assert!(out.contains("data: m10"), "{out}");
    assert_eq!(s.hub.stats().history.gaps, 2);
}

#[test]
fn a_replay_over_the_outbox_byte_bound_or_the_memory_budget_keeps_its_newest_part_and_is_a_gap() {
    // Ten 102-byte frames (2-byte header, 100 bytes of text): 1020 bytes in all.
    let text = |i: usize| format!("{i:0>100}");
    let setups = [
        (
            "byte bound",
            Config::default().message_buffer_bytes(Some(350)),
        ),
        ("memory budget", Config::default().memory_budget(Some(350))),
    ];
    for (name, config) in setups {
        let rules = HistoryRules::new()
            .prefix("device/", HistoryLimits::new().max_messages(100))
            .epoch_seed(SEED);
        let mut s = Sim::new(config.history(rules));
        for i in 1..=10 {
            s.hub.publish(
                s.now,
                &Publication::text(text(i)),
                Target::Topic("device/1"),
            );
        }
        let id = s.connect();
        let resume = s
            .hub
            .subscribe_from(id, s.now, "device/1", Some(Position::new(SEED, 0)));
        assert_eq!(
            resume.recovery,
            Recovery::Gap(GapReason::OutboxFull),
            "{name}"
        );
        // 3 × 102 = 306 bytes fit in 350; a fourth would make 408.
        assert_eq!((resume.replayed, resume.dropped), (3, 0), "{name}");
        let newest: Vec<String> = (8..=10).map(text).collect();
        assert_eq!(
            texts(&mut s, id),
            newest,
            "{name}: the newest three, no hole"
        );
        assert_eq!(s.hub.stats().dropped, 0, "{name}");
    }
}
