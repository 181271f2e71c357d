//! `Hub::report_may_wait`: a driver that wrote a whole batch may report it at its next
//! turn instead of at once. Until then, anything queued makes the session ready, and a
//! write deadline that passes asks for the report instead of failing the session; a
//! turn that brings no report fails it then, as the deadline would have.

use std::time::{Duration, Instant};

use melody_core::{
    Batch, CloseCode, Config, ConnectionInfo, Event, Hub, Keys, Prepared, SessionError, SessionId,
    SessionState, Transmit,
};

use crate::sim::*;

const WRITE_WAIT: Duration = Duration::from_secs(10);

/// An open session whose 101 response is written and reported, nothing left ready.
fn open(config: Config, now: Instant) -> (Hub<Keys>, SessionId) {
    let mut hub = Hub::new(config.write_wait(WRITE_WAIT), now).expect("valid config");
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    hub.handle_input(id, now, upgrade_request("").as_bytes())
        .expect("known session");
    let _ = drive(&mut hub, id, now);
    while hub.poll_ready().is_some() {}
    (hub, id)
}

/// Queues one message and hands it out; the batch holds its bytes.
fn hand_out(hub: &mut Hub<Keys>, id: SessionId, now: Instant, text: &str) -> Batch {
    hub.send(id, now, &Prepared::text(text));
    let mut batch = Batch::new();
    assert!(matches!(
        hub.poll_transmit(id, now, &mut batch),
        Transmit::Write(1)
    ));
    while hub.poll_ready().is_some() {}
    batch
}

fn events(hub: &mut Hub<Keys>, id: SessionId) -> Vec<Event> {
    std::iter::from_fn(|| hub.poll_event(id)).collect()
}

/// A session whose driver was handed `text` and left its report to wait, one second
/// past the write deadline: not failed, and ready (woken to report). Returns the hub,
/// the session, the batch still holding the message, and the time.
fn past_the_deadline_waiting(text: &str) -> (Hub<Keys>, SessionId, Batch, Instant) {
    let t0 = Instant::now();
    let (mut hub, id) = open(Config::default(), t0);
    let batch = hand_out(&mut hub, id, t0, text);
    assert!(hub.report_may_wait(id));

    let late = t0 + WRITE_WAIT + Duration::from_secs(1);
    hub.handle_timeout(late);
    assert_eq!(hub.state(id), Some(SessionState::Open), "not failed yet");
    assert_eq!(hub.poll_ready(), Some(id), "woken to report");
    (hub, id, batch, late)
}

#[test]
fn a_deadline_that_passes_while_the_report_waits_asks_for_it_and_the_report_keeps_the_session() {
    let (mut hub, id, mut batch, late) = past_the_deadline_waiting("hello");
    let written = batch.unwritten_bytes();
    hub.handle_transmitted(id, late, written, &mut batch)
        .expect("known session");
    assert!(batch.is_empty());
    assert_eq!(hub.poll_transmit(id, late, &mut batch), Transmit::Idle);
    hub.handle_timeout(late + WRITE_WAIT * 3);
    assert_eq!(hub.state(id), Some(SessionState::Open));
    assert!(!events(&mut hub, id)
        .iter()
        .any(|e| matches!(e, Event::Error(_))));
    let stats = hub.session_stats(id).expect("open");
    assert_eq!((stats.sent, stats.dropped), (1, 0));
}

#[test]
fn a_turn_without_the_report_after_the_deadline_fails_the_session_as_the_deadline_would() {
    let (mut hub, id, mut batch, late) = past_the_deadline_waiting("stuck");
    // The driver's turn: nothing was written, so nothing is reported.
    assert_eq!(hub.poll_transmit(id, late, &mut batch), Transmit::Finished);
    assert!(batch.is_empty(), "the batch is given up");
    let events = events(&mut hub, id);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Error(SessionError::WriteTimeout))));
    assert!(matches!(events.last(), Some(Event::Disconnect { .. })));
    assert_eq!(hub.stats().dropped, 1, "the unwritten message is counted");
}

#[test]
fn without_the_wait_the_deadline_fails_the_session_at_once_as_before() {
    let t0 = Instant::now();
    let (mut hub, id) = open(Config::default(), t0);
    let _batch = hand_out(&mut hub, id, t0, "stuck");

    hub.handle_timeout(t0 + WRITE_WAIT + Duration::from_secs(1));
    assert_eq!(hub.state(id), Some(SessionState::Finished));
    assert!(events(&mut hub, id)
        .iter()
        .any(|e| matches!(e, Event::Error(SessionError::WriteTimeout))));
}

#[test]
fn anything_queued_while_the_report_waits_makes_the_session_ready() {
    let t0 = Instant::now();
    let (mut hub, id) = open(Config::default(), t0);

    // Usually the driver comes back after its write: a message queued behind the
    // batch does not wake it.
    let mut batch = hand_out(&mut hub, id, t0, "first");
    hub.send(id, t0, &Prepared::text("second"));
    assert_eq!(hub.poll_ready(), None);
    let written = batch.unwritten_bytes();
    hub.handle_transmitted(id, t0, written, &mut batch)
        .expect("known session");
    let _ = drive(&mut hub, id, t0);
    while hub.poll_ready().is_some() {}

    // Waiting to report, it is not coming back: the next message wakes it.
    let _batch = hand_out(&mut hub, id, t0, "third");
    assert!(hub.report_may_wait(id));
    hub.send(id, t0, &Prepared::text("fourth"));
    assert_eq!(hub.poll_ready(), Some(id));
}

#[test]
fn the_report_may_not_wait_for_sent_events_a_close_a_ping_or_nothing_handed_out() {
    let t0 = Instant::now();
    let (mut hub, id) = open(Config::default().sent_events(true), t0);
    let _batch = hand_out(&mut hub, id, t0, "watched");
    assert!(!hub.report_may_wait(id), "a Sent event waits on the report");

    let (mut hub, id) = open(Config::default(), t0);
    assert!(!hub.report_may_wait(id), "nothing handed out");
    let _batch = hand_out(&mut hub, id, t0, "last");
    assert!(hub.close(id, t0, CloseCode::Normal, "bye"));
    assert!(
        !hub.report_may_wait(id),
        "the close frame waits on the report"
    );

    let (mut hub, id) = open(Config::default().ping_period(Duration::from_secs(5)), t0);
    let tick = t0 + Duration::from_secs(6);
    hub.handle_timeout(tick);
    let mut batch = Batch::new();
    assert!(matches!(
        hub.poll_transmit(id, tick, &mut batch),
        Transmit::Write(1)
    ));
    assert!(!hub.report_may_wait(id), "a ping is not data");

    let (mut hub, id) = open(Config::default(), t0);
    hub.release(id);
    assert!(!hub.report_may_wait(id), "unknown session");
}
