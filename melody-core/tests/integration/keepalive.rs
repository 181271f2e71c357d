//! Keepalive and deadlines under a simulated clock: ping cadence, pong timeout, write
//! timeout, timer granularity, idempotent and monotonic time, config validation.

use std::time::Duration;

use melody_core::{Config, ConfigError, Event, Hub, Keys, Prepared, SessionError, SessionState};
use tungstenite::Message;

use crate::sim::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Moves simulated time to `t` after the start.
fn advance_to(s: &mut Sim, t: Duration) {
    let now = s.elapsed();
    assert!(t >= now, "advance_to({t:?}) from {now:?}");
    s.advance(t - now);
}

/// A raw peer, connected (handshake done) at the current simulated time.
fn raw_peer(s: &mut Sim) -> melody_core::SessionId {
    let id = s.connect_raw();
    s.pump();
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    id
}

/// The errors a peer's session reported, in order.
fn errors(p: &Peer) -> Vec<SessionError> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::Error(err) => Some(err.clone()),
            _ => None,
        })
        .collect()
}

/// Asserts the session ended with exactly `err`, then `Disconnect` as the last event.
fn assert_ended_with(p: &Peer, err: SessionError, undelivered: usize) {
    assert_eq!(errors(p), vec![err], "events: {:?}", p.events);
    assert_eq!(
        p.events.last(),
        Some(&Event::Disconnect { undelivered }),
        "events: {:?}",
        p.events
    );
    assert_eq!(p.count_events(|e| matches!(e, Event::Disconnect { .. })), 1);
    assert!(p.released);
}

// ---- ping cadence -------------------------------------------------------------------

#[test]
fn eleven_pings_in_ten_minutes_each_at_a_multiple_of_the_ping_period() {
    let mut s = Sim::new(Config::default());
    let id = raw_peer(&mut s);
    for k in 1..=11u64 {
        let due = secs(54 * k);
        advance_to(&mut s, due - ms(100));
        assert_eq!(
            s.peer(id).pings_seen as u64,
            k - 1,
            "before ping {k} at {due:?}"
        );
        advance_to(&mut s, due);
        assert_eq!(s.peer(id).pings_seen as u64, k, "ping {k} at {due:?}");
    }
    advance_to(&mut s, secs(600));
    assert_eq!(s.peer(id).pings_seen, 11, "no 12th ping before 648 s");
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert_eq!(s.peer(id).count_events(|e| matches!(e, Event::Pong(_))), 11);
    assert!(!s.peer(id).disconnected());
    assert_eq!(s.hub.len(), 1);
}

#[test]
fn a_tungstenite_client_gets_eleven_empty_pings_in_ten_minutes() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    s.advance(secs(600));
    let pings = s
        .peer(id)
        .messages
        .iter()
        .filter(|m| matches!(m, Message::Ping(p) if p.is_empty()))
        .count();
    assert_eq!(pings, 11);
    assert_eq!(s.peer(id).count_events(|e| matches!(e, Event::Pong(_))), 11);
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
}

#[test]
fn a_peer_that_answers_stays_connected_for_an_hour() {
    let mut s = Sim::new(Config::default());
    let raw = raw_peer(&mut s);
    let client = s.connect();
    s.advance(secs(3600));
    // 3600 / 54 = 66.67: pings at 54 s … 3564 s.
    assert_eq!(s.peer(raw).pings_seen, 66);
    for id in [raw, client] {
        assert_eq!(s.hub.state(id), Some(SessionState::Open));
        assert!(!s.peer(id).disconnected());
        assert_eq!(s.peer(id).count_events(|e| matches!(e, Event::Pong(_))), 66);
    }
    assert_eq!(s.hub.len(), 2);
    assert_eq!(s.hub.stats().finished, 0);
}

// ---- pong timeout -------------------------------------------------------------------

#[test]
fn a_silent_peer_times_out_at_exactly_pong_wait() {
    let mut s = Sim::new(Config::default());
    let id = raw_peer(&mut s);
    s.peer(id).answer_pings = false;
    advance_to(&mut s, ms(59_900));
    assert_eq!(s.peer(id).pings_seen, 1, "the ping at 54 s went out");
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert!(s.peer(id).events.iter().all(|e| *e == Event::Connect));
    assert_eq!(s.hub.len(), 1);

    advance_to(&mut s, secs(60));
    assert_ended_with(s.peer(id), SessionError::PongTimeout, 0);
    assert_eq!(s.hub.len(), 0);
    assert_eq!(s.hub.stats().finished, 1);
    // No close frame can be sent to a peer that is gone: the transport just closes.
    assert!(*s.peer(id).server_closed.borrow());
}

#[test]
fn answering_only_the_first_ping_times_out_sixty_seconds_after_that_pong() {
    let mut s = Sim::new(Config::default());
    let id = raw_peer(&mut s);
    advance_to(&mut s, secs(54));
    assert_eq!(s.peer(id).pings_seen, 1);
    assert_eq!(s.peer(id).count_events(|e| matches!(e, Event::Pong(_))), 1);
    s.peer(id).answer_pings = false;

    // The pong at 54 s moved the deadline from 60 s to 114 s.
    advance_to(&mut s, ms(113_900));
    assert_eq!(
        s.peer(id).pings_seen,
        2,
        "the ping at 108 s went unanswered"
    );
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    advance_to(&mut s, secs(114));
    assert_ended_with(s.peer(id), SessionError::PongTimeout, 0);
}

#[test]
fn a_late_unsolicited_pong_moves_the_deadline_to_its_arrival_plus_pong_wait() {
    let mut s = Sim::new(Config::default());
    let id = raw_peer(&mut s);
    s.peer(id).answer_pings = false;
    // At 57.3 s, three seconds after the unanswered ping, a pong arrives after all.
    advance_to(&mut s, ms(57_300));
    s.peer(id).send_raw(&client_frame(0x8a, b"late"));
    s.pump();
    assert_eq!(
        s.peer(id).events.last(),
        Some(&Event::Pong(melody_core::Bytes::from_static(b"late")))
    );
    advance_to(&mut s, ms(117_200));
    assert_eq!(s.hub.state(id), Some(SessionState::Open), "60 s not passed");
    advance_to(&mut s, ms(117_300));
    assert_ended_with(s.peer(id), SessionError::PongTimeout, 0);
}

// ---- write timeout ------------------------------------------------------------------

#[test]
fn a_stalled_peer_is_cut_exactly_write_wait_after_data_was_queued() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    advance_to(&mut s, ms(3_700));
    s.peer(id).reading = Reading::Stalled;
    let d = s.hub.send(id, s.now, &Prepared::text("stuck"));
    assert_eq!(d.queued, 1);
    s.pump();

    advance_to(&mut s, ms(13_600));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert!(!s.peer(id).disconnected());
    advance_to(&mut s, ms(13_700));
    assert_ended_with(s.peer(id), SessionError::WriteTimeout, 1);
    assert_eq!(s.hub.stats().dropped, 1, "the unwritten message is counted");
}

#[test]
fn a_stalled_peer_with_nothing_to_send_is_not_cut_by_the_write_deadline() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    s.peer(id).reading = Reading::Stalled;
    advance_to(&mut s, secs(50));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    // The ping at 54 s is pending bytes: the write deadline starts then.
    advance_to(&mut s, ms(59_900));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    // The pong deadline (60 s) comes before the write deadline (64 s).
    advance_to(&mut s, secs(60));
    assert_ended_with(s.peer(id), SessionError::PongTimeout, 0);
}

#[test]
fn a_slow_window_reader_drained_every_9_9_seconds_is_never_cut() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    s.peer(id).reading = Reading::Window(64);
    let payload = "x".repeat(30); // 32 bytes on the wire: two messages per window
    for _ in 0..10 {
        let d = s.hub.send(id, s.now, &Prepared::text(&payload));
        assert_eq!(d.queued, 1);
    }
    s.pump();
    // 10 messages, 2 per drain: 4 drains leave 2 messages pending 39.6 s later.
    for round in 1..=4u64 {
        advance_to(&mut s, ms(9_900 * round));
        assert_eq!(s.hub.state(id), Some(SessionState::Open), "round {round}");
        s.drain(id);
        assert_eq!(s.peer(id).texts().len() as u64, 2 * round);
    }
    advance_to(&mut s, ms(49_500));
    s.drain(id);
    assert_eq!(s.peer(id).texts().len(), 10);
    assert_eq!(s.hub.session_stats(id).map(|st| st.sent), Some(10));
    assert!(errors(s.peer(id)).is_empty());
    assert_eq!(s.hub.state(id), Some(SessionState::Open));

    // With nothing left the reader may stall forever as far as writes go.
    s.peer(id).reading = Reading::All;
    advance_to(&mut s, secs(300));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
}

#[test]
fn a_window_reader_that_pauses_for_write_wait_is_cut_at_its_last_progress_plus_write_wait() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    s.peer(id).reading = Reading::Window(64);
    for _ in 0..10 {
        let _ = s.hub.send(id, s.now, &Prepared::text("x".repeat(30)));
    }
    s.pump();
    advance_to(&mut s, secs(5));
    s.drain(id); // progress at 5 s: the deadline is 15 s
    advance_to(&mut s, ms(14_900));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    advance_to(&mut s, secs(15));
    // 2 messages read by the peer, 2 more written into its window: 6 never written.
    assert_eq!(s.peer(id).texts().len(), 2);
    assert_ended_with(s.peer(id), SessionError::WriteTimeout, 6);
}

// ---- granularity and time ------------------------------------------------------------

#[test]
fn poll_timeout_is_rounded_up_to_the_granularity_from_a_non_aligned_start() {
    let mut s = Sim::new(Config::default());
    advance_to(&mut s, ms(1_234));
    let id = s.open_raw();
    // Handshake deadline 11.234 s, reported as 11.3 s.
    assert_eq!(s.hub.poll_timeout(), Some(s.t0 + ms(11_300)));
    s.peer(id).kind = Some(PeerKind::Raw);
    s.peer(id).send_raw(upgrade_request("").as_bytes());
    s.pump();
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    // The stale handshake entry (11.3 s) may wake the loop early; waking there fires nothing.
    let first = s.hub.poll_timeout().unwrap();
    assert!(first == s.t0 + ms(11_300) || first == s.t0 + ms(55_300));
    s.hub.handle_timeout(first);
    s.now = first;
    s.pump();
    // Ping due at 55.234 s → 55.3 s, the pong deadline 61.234 s → 61.3 s.
    assert_eq!(s.hub.poll_timeout(), Some(s.t0 + ms(55_300)));
    assert_eq!(s.peer(id).pings_seen, 0);

    let mut wakeups = Vec::new();
    let end = s.t0 + secs(250);
    while let Some(at) = s.hub.poll_timeout() {
        if at > end {
            break;
        }
        let since = at - s.t0;
        assert_eq!(
            since.as_nanos() % ms(100).as_nanos(),
            0,
            "{since:?} is aligned"
        );
        assert!(at >= s.now);
        wakeups.push(since);
        s.now = at;
        s.hub.handle_timeout(at);
        s.pump();
    }
    // Pings at 55.3, then every 54 s from the tick it fired on: 109.3, 163.3, 217.3.
    assert_eq!(s.peer(id).pings_seen, 4);
    for ping in [55_300, 109_300, 163_300, 217_300] {
        assert!(wakeups.contains(&ms(ping)), "{ping} ms in {wakeups:?}");
    }
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
}

#[test]
fn a_ping_is_not_sent_before_its_rounded_deadline() {
    let mut s = Sim::new(Config::default());
    advance_to(&mut s, ms(1_234));
    let id = raw_peer(&mut s);
    advance_to(&mut s, ms(55_234)); // the true deadline: not yet fired (tick at 55.3 s)
    assert_eq!(s.peer(id).pings_seen, 0);
    advance_to(&mut s, ms(55_299));
    assert_eq!(s.peer(id).pings_seen, 0);
    advance_to(&mut s, ms(55_300));
    assert_eq!(s.peer(id).pings_seen, 1);
    // Silent from here: the pong at 55.3 s sets the deadline at 115.3 s.
    s.peer(id).answer_pings = false;
    advance_to(&mut s, ms(115_200));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    advance_to(&mut s, ms(115_300));
    assert_ended_with(s.peer(id), SessionError::PongTimeout, 0);
}

#[test]
fn handle_timeout_twice_with_the_same_now_changes_nothing() {
    let mut s = Sim::new(Config::default());
    let silent = raw_peer(&mut s);
    let talker = raw_peer(&mut s);
    s.peer(silent).answer_pings = false;
    s.peer(talker).reading = Reading::Stalled;

    let at = s.t0 + secs(54);
    s.now = at;
    s.hub.handle_timeout(at);
    // Both got a ping queued: both are ready.
    let mut ready = Vec::new();
    while let Some(id) = s.hub.poll_ready() {
        ready.push(id);
    }
    ready.sort();
    let mut both = vec![silent, talker];
    both.sort();
    assert_eq!(ready, both);
    let deadline = s.hub.poll_timeout();
    let stats = s.hub.stats();

    s.hub.handle_timeout(at);
    assert_eq!(s.hub.poll_ready(), None, "nothing fired again");
    assert_eq!(s.hub.poll_timeout(), deadline);
    assert_eq!(s.hub.stats(), stats);
    // Exactly one ping per session, not two.
    for id in [silent, talker] {
        let mut out = melody_core::Batch::new();
        assert_eq!(
            s.hub.poll_transmit(id, at, &mut out),
            melody_core::Transmit::Write(1)
        );
        assert_eq!(out.iter().next(), Some(&[0x89, 0x00][..]));
        assert_eq!(s.hub.poll_event(id), None);
    }

    // Neither ping was answered (nothing was written): at 60 s both time out, once.
    let at = s.t0 + secs(60);
    s.hub.handle_timeout(at);
    let stats = s.hub.stats();
    assert_eq!(stats.finished, 2);
    s.hub.handle_timeout(at);
    assert_eq!(s.hub.stats(), stats);
    for id in [silent, talker] {
        assert_eq!(
            s.hub.poll_event(id),
            Some(Event::Error(SessionError::PongTimeout))
        );
        assert_eq!(
            s.hub.poll_event(id),
            Some(Event::Disconnect { undelivered: 0 })
        );
        assert_eq!(s.hub.poll_event(id), None);
    }
    assert_eq!(s.hub.len(), 0);
}

#[test]
fn time_passed_backwards_is_ignored() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    s.peer(id).reading = Reading::Stalled;
    advance_to(&mut s, secs(30));
    let before = s.hub.poll_timeout();
    assert_eq!(before, Some(s.t0 + secs(54)), "the first ping");

    // An old `now`: nothing fires, and the hub's clock stays at 30 s.
    s.hub.handle_timeout(s.t0);
    s.hub.handle_timeout(s.t0 + secs(29));
    assert_eq!(s.hub.poll_timeout(), before);
    assert_eq!(s.hub.poll_ready(), None);

    // A send stamped 30 s in the past arms the write deadline from 30 s: at 40 s.
    let d = s.hub.send(id, s.t0, &Prepared::text("late stamp"));
    assert_eq!(d.queued, 1);
    assert_eq!(s.hub.poll_timeout(), Some(s.t0 + secs(40)));
    s.pump();
    advance_to(&mut s, ms(39_900));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    advance_to(&mut s, secs(40));
    assert_ended_with(s.peer(id), SessionError::WriteTimeout, 1);
}

#[test]
fn a_pong_stamped_in_the_past_counts_from_the_hubs_clock() {
    let mut s = Sim::new(Config::default());
    let id = raw_peer(&mut s);
    s.peer(id).answer_pings = false;
    advance_to(&mut s, secs(58));
    // A pong reported with the start instant: the deadline is 58 + 60, not 0 + 60.
    s.hub
        .handle_input(id, s.t0, &client_frame(0x8a, b""))
        .unwrap();
    s.pump();
    advance_to(&mut s, ms(117_900));
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    advance_to(&mut s, secs(118));
    assert_ended_with(s.peer(id), SessionError::PongTimeout, 0);
}

// ---- config validation ---------------------------------------------------------------

fn refused(config: Config) -> ConfigError {
    let expected = config.validate().expect_err("invalid config");
    let err = Hub::<Keys>::new(config, std::time::Instant::now())
        .err()
        .expect("Hub::new refuses it");
    assert_eq!(err, expected, "Hub::new and validate agree");
    err
}

#[test]
fn hub_new_refuses_invalid_configs_with_typed_errors() {
    let d = Config::default;
    assert_eq!(
        refused(d().ping_period(secs(60))),
        ConfigError::PingNotBeforePongWait {
            ping_period: secs(60),
            pong_wait: secs(60)
        }
    );
    assert_eq!(
        refused(d().pong_wait(secs(30))),
        ConfigError::PingNotBeforePongWait {
            ping_period: secs(54),
            pong_wait: secs(30)
        }
    );
    for (config, field) in [
        (d().write_wait(Duration::ZERO), "write_wait"),
        (d().pong_wait(Duration::ZERO), "pong_wait"),
        (d().ping_period(Duration::ZERO), "ping_period"),
        (d().handshake_timeout(Duration::ZERO), "handshake_timeout"),
        (d().close_timeout(Duration::ZERO), "close_timeout"),
        (d().timer_granularity(Duration::ZERO), "timer_granularity"),
    ] {
        assert_eq!(refused(config), ConfigError::ZeroDuration { field });
    }
    for (config, field) in [
        (d().max_message_size(0), "max_message_size"),
        (d().message_buffer_size(0), "message_buffer_size"),
        (d().message_buffer_bytes(Some(0)), "message_buffer_bytes"),
        (d().memory_budget(Some(0)), "memory_budget"),
        (d().max_handshake_size(0), "max_handshake_size"),
        (d().read_buffer_size(0), "read_buffer_size"),
        (d().max_sessions(Some(0)), "max_sessions"),
    ] {
        assert_eq!(refused(config), ConfigError::ZeroSize { field });
    }
    for bad in ["", "chat v2", "chat,v2", "chät", "a/b", "x\"y"] {
        assert_eq!(
            refused(d().subprotocols(vec!["ok".into(), bad.into()])),
            ConfigError::InvalidSubprotocol(bad.into())
        );
    }
    // Deadlines are rounded to the granularity (100 ms): a ping closer than one tick to
    // the pong deadline can share its tick, so every peer would time out.
    assert_eq!(
        refused(d().ping_period(ms(59_950))),
        ConfigError::PingNotBeforePongWait {
            ping_period: ms(59_950),
            pong_wait: secs(60)
        }
    );
    assert!(d().ping_period(ms(59_900)).validate().is_ok());
    // The boundaries that are allowed.
    let fine = d()
        .ping_period(ms(59_999))
        .subprotocols(vec!["chat.v2".into(), "x-y_z~1".into()])
        .message_buffer_size(1)
        .message_buffer_bytes(Some(1))
        .max_sessions(Some(1))
        .timer_granularity(Duration::from_nanos(1));
    assert!(Hub::<Keys>::new(fine, std::time::Instant::now()).is_ok());
}

#[test]
fn a_ping_period_one_tick_short_of_pong_wait_keeps_answering_peers() {
    // The tightest valid setting: pings at 59.9 s, 119.8 s, …; pong deadline 60 s after
    // each answer. An answering peer is never cut; a silent one at 60 s exactly.
    let mut s = Sim::new(Config::default().ping_period(ms(59_900)));
    let answers = raw_peer(&mut s);
    let silent = raw_peer(&mut s);
    s.peer(silent).answer_pings = false;
    advance_to(&mut s, ms(59_900));
    assert_eq!(s.peer(answers).pings_seen, 1);
    assert_eq!(s.peer(silent).pings_seen, 1);
    advance_to(&mut s, secs(60));
    assert_ended_with(s.peer(silent), SessionError::PongTimeout, 0);
    advance_to(&mut s, secs(600));
    assert_eq!(s.peer(answers).pings_seen, 10);
    assert_eq!(s.hub.state(answers), Some(SessionState::Open));
}

#[test]
fn a_pong_while_closing_does_not_rearm_the_pong_deadline() {
    // The close timeout is longer than pong_wait here: a pong that arrives after our
    // close frame must not let the pong deadline end the session first.
    let mut s = Sim::new(Config::default().close_timeout(secs(120)));
    let id = raw_peer(&mut s); // raw peers never answer a close frame
    advance_to(&mut s, secs(1));
    assert!(s
        .hub
        .close(id, s.now, melody_core::CloseCode::Normal, "bye"));
    s.pump(); // the close frame is written at 1 s: the peer has until 121 s
    advance_to(&mut s, secs(2));
    s.peer(id).send_raw(&client_frame(0x8a, b""));
    s.pump();
    assert_eq!(
        s.peer(id).events.last(),
        Some(&Event::Pong(melody_core::Bytes::new()))
    );
    advance_to(&mut s, ms(120_900));
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    assert_eq!(s.peer(id).pings_seen, 0, "no keepalive while closing");
    advance_to(&mut s, secs(121));
    assert_ended_with(s.peer(id), SessionError::CloseTimeout, 0);
}

#[test]
fn a_late_handle_timeout_does_not_lose_the_ping_timer() {
    // The loop wakes 66 s late (a suspended machine, a stalled event loop): the ping due
    // at 54 s fires at 120 s, and the next one (due at 108 s) is already past. Pings must
    // carry on, or a healthy peer times out once pong_wait (200 s here) passes.
    let mut s = Sim::new(Config::default().pong_wait(secs(200)));
    let id = raw_peer(&mut s);
    s.now = s.t0 + secs(120);
    s.hub.handle_timeout(s.now);
    s.pump();
    assert_eq!(s.peer(id).pings_seen, 1, "one ping, however late");
    // The overdue one goes out at the next wakeup, then every 54 s from 108 s.
    advance_to(&mut s, ms(120_100));
    assert_eq!(s.peer(id).pings_seen, 2);
    advance_to(&mut s, ms(161_900));
    assert_eq!(s.peer(id).pings_seen, 2);
    advance_to(&mut s, secs(162));
    assert_eq!(s.peer(id).pings_seen, 3);
    advance_to(&mut s, secs(600));
    // 162 + 54 k ≤ 600: k = 0..=8.
    assert_eq!(s.peer(id).pings_seen, 11);
    assert_eq!(s.hub.state(id), Some(SessionState::Open));
    assert!(errors(s.peer(id)).is_empty());
}

#[test]
fn trim_keeps_the_buffers_of_a_session_in_use_until_a_ping_period_passes_without_data() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    // Only the handshake so far: an idle session gives its buffers back.
    assert!(s.hub.trim(id));
    let _ = s.hub.send(id, s.now, &melody_core::Prepared::text("hi"));
    s.pump();
    assert!(
        !s.hub.trim(id),
        "data since the last ping: buffers stay warm"
    );
    // The first ping tick at 54 s starts a new period with no data in it.
    s.advance(Duration::from_secs(54));
    assert!(s.hub.trim(id));
    assert_eq!(s.peer(id).texts(), vec!["hi"]);
}
