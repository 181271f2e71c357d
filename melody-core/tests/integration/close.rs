//! How sessions end: the close handshake from either side, the close deadline, EOF and
//! transport errors; `Disconnect` exactly once and last; released ids are inert.

use std::io;
use std::time::Duration;

use melody_core::{
    Batch, CloseCode, Config, ConnectionInfo, Delivery, Event, Keys, Prepared, SessionError,
    SessionId, SessionState, Transmit, UnknownSession,
};
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::Message;

use crate::sim::*;

/// A session opened and upgraded by hand (no peer in the simulation).
fn open_by_hand(s: &mut Sim) -> SessionId {
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    s.hub
        .handle_input(id, s.now, upgrade_request("").as_bytes())
        .unwrap();
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(step_events(&steps), vec![Event::Connect]);
    id
}

/// A server close frame (unmasked), as the hub writes it.
fn server_close(code: u16, reason: &str) -> Vec<u8> {
    let mut f = vec![0x88, (2 + reason.len()) as u8];
    f.extend(code.to_be_bytes());
    f.extend(reason.as_bytes());
    f
}

/// A masked client close frame.
fn client_close(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend(reason.as_bytes());
    client_frame(0x88, &payload)
}

/// Pokes a finished (not yet released) session every way there is and checks that
/// nothing happens: no event after its `Disconnect`, nothing to write.
fn assert_inert_after_disconnect(s: &mut Sim, id: SessionId) {
    assert_eq!(s.hub.state(id), Some(SessionState::Finished));
    let _ = s.hub.handle_input(id, s.now, &client_frame(0x81, b"more"));
    let _ = s.hub.handle_input(id, s.now, &client_close(1000, ""));
    let _ = s.hub.handle_eof(id, s.now);
    let err = io::Error::new(io::ErrorKind::BrokenPipe, "late");
    let _ = s.hub.handle_io_error(id, s.now, &err);
    let _ = s.hub.handle_transmitted(id, s.now, 100, &mut Batch::new());
    assert!(!s.hub.close(id, s.now, CloseCode::Normal, "again"));
    let d = s.hub.send(id, s.now, &Prepared::text("late"));
    assert_eq!(
        d,
        Delivery {
            closed: 1,
            ..Delivery::default()
        }
    );
    assert_eq!(s.hub.poll_event(id), None, "an event after Disconnect");
    // Every deadline it ever had passes; checked at each step before the harness
    // pumps (which lets other sessions answer their pings).
    let seen = s.peers.get(&id).map(|p| p.events.clone());
    for _ in 0..120 {
        s.now += Duration::from_secs(1);
        s.hub.handle_timeout(s.now);
        assert_eq!(s.hub.poll_event(id), None, "a timer fired after Disconnect");
        s.pump();
    }
    assert_eq!(s.peers.get(&id).map(|p| p.events.clone()), seen);
    let mut out = Batch::new();
    assert_eq!(s.hub.poll_transmit(id, s.now, &mut out), Transmit::Finished);
    assert!(out.is_empty());
    assert!(s.hub.is_closed(id));
    assert!(s.hub.sessions().all(|open| open != id));
}

/// Exactly one `Disconnect`, and it is the last event.
fn assert_disconnect_once_and_last(events: &[Event]) {
    let disconnects = events
        .iter()
        .filter(|e| matches!(e, Event::Disconnect { .. }))
        .count();
    assert_eq!(disconnects, 1, "{events:?}");
    assert!(
        matches!(events.last(), Some(Event::Disconnect { .. })),
        "{events:?}"
    );
}

// ---- client-initiated -------------------------------------------------------------

#[test]
fn a_client_close_is_answered_with_its_code_then_the_transport_finishes() {
    let mut s = Sim::new(Config::default());
    let id = open_by_hand(&mut s);
    s.hub
        .handle_input(id, s.now, &client_close(1000, "bye"))
        .unwrap();
    // The reply is queued: closing, still counted as open until it is written.
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    assert!(s.hub.is_closed(id));
    assert_eq!(s.hub.len(), 1);
    assert_eq!(s.hub.sessions().collect::<Vec<_>>(), vec![id]);
    let steps = drive(&mut s.hub, id, s.now);
    assert_eq!(
        steps,
        vec![
            Step::Event(Event::Close {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }),
            Step::Write(server_close(1000, "bye")),
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
    assert_eq!(s.hub.len(), 0);
    assert_eq!(s.hub.sessions().count(), 0);
    assert_inert_after_disconnect(&mut s, id);
    assert!(s.hub.release(id).is_some());
    assert_eq!(s.hub.connection_count(), 0);
}

#[test]
fn a_client_close_without_a_code_is_reported_as_1005_and_answered_empty() {
    let mut s = Sim::new(Config::default());
    let id = open_by_hand(&mut s);
    s.hub
        .handle_input(id, s.now, &client_frame(0x88, b""))
        .unwrap();
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![
            Step::Event(Event::Close {
                code: CloseCode::Status,
                reason: "".into(),
            }),
            Step::Write(vec![0x88, 0x00]),
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
}

#[test]
fn a_client_close_comes_after_our_queued_data_and_stops_further_sends() {
    let mut s = Sim::new(Config::default());
    let id = open_by_hand(&mut s);
    assert_eq!(s.hub.send(id, s.now, &Prepared::text("first")).queued, 1);
    assert_eq!(s.hub.send(id, s.now, &Prepared::binary([9u8])).queued, 1);
    s.hub
        .handle_input(id, s.now, &client_close(1001, "leaving"))
        .unwrap();
    assert_eq!(
        s.hub.send(id, s.now, &Prepared::text("too late")),
        Delivery {
            closed: 1,
            ..Delivery::default()
        }
    );
    let mut wire = Prepared::text("first").frame().to_vec();
    wire.extend(Prepared::binary([9u8]).frame().iter());
    wire.extend(server_close(1001, "leaving"));
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![
            Step::Event(Event::Close {
                code: CloseCode::Away,
                reason: "leaving".into(),
            }),
            Step::Write(wire),
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
    assert_eq!(s.hub.session_stats(id).unwrap().sent, 2);
}

#[test]
fn a_tungstenite_client_closing_gets_1000_back() {
    let mut s = Sim::new(Config::default());
    s.auto_release = false;
    let id = s.connect();
    s.peer(id)
        .client()
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "done".into(),
        }))
        .unwrap();
    s.pump();
    assert_eq!(s.peer(id).close_received(), Some((1000, "done".into())));
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Close {
                code: CloseCode::Normal,
                reason: "done".into(),
            },
            Event::Disconnect { undelivered: 0 },
        ]
    );
    let mut out = Batch::new();
    assert_eq!(s.hub.poll_transmit(id, s.now, &mut out), Transmit::Finished);
    assert_inert_after_disconnect(&mut s, id);
}

// ---- server-initiated -------------------------------------------------------------

#[test]
fn a_server_close_goes_out_after_the_data_queued_before_it() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    let other = s.connect();
    for msg in [
        Prepared::text("one"),
        Prepared::text("two"),
        Prepared::binary([3u8]),
    ] {
        assert_eq!(s.hub.send(id, s.now, &msg).queued, 1);
    }
    assert!(s.hub.close(id, s.now, CloseCode::Away, "shutting down"));
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    assert!(s.hub.is_closed(id));
    assert!(
        !s.hub.close(id, s.now, CloseCode::Normal, "twice"),
        "already closing"
    );
    assert_eq!(
        s.hub.send(id, s.now, &Prepared::text("after close")),
        Delivery {
            closed: 1,
            ..Delivery::default()
        }
    );
    assert_eq!(s.hub.session_stats(id).unwrap().queued, 3);
    s.pump();
    assert_eq!(
        s.peer(id).messages,
        vec![
            Message::text("one"),
            Message::text("two"),
            Message::binary(vec![3u8]),
            Message::Close(Some(CloseFrame {
                code: CloseCode::Away,
                reason: "shutting down".into(),
            })),
        ]
    );
    // The client echoed our close; that ends the session.
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Close {
                code: CloseCode::Away,
                reason: "shutting down".into(),
            },
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_eq!(s.hub.stats().dropped, 0);
    assert_eq!(s.hub.len(), 1);
    assert_eq!(s.hub.sessions().collect::<Vec<_>>(), vec![other]);
    assert_eq!(s.peer(other).events, vec![Event::Connect]);
}

#[test]
fn a_server_close_waits_for_the_peer_then_finishes() {
    let mut s = Sim::new(Config::default());
    let id = open_by_hand(&mut s);
    assert_eq!(s.hub.send(id, s.now, &Prepared::text("bye soon")).queued, 1);
    assert!(s.hub.close(id, s.now, CloseCode::Normal, "done"));
    let mut wire = Prepared::text("bye soon").frame().to_vec();
    wire.extend(server_close(1000, "done"));
    assert_eq!(drive(&mut s.hub, id, s.now), vec![Step::Write(wire)]);
    // Written, but the session waits for the peer's close.
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    assert_eq!(s.hub.len(), 1);
    // Data from the peer that crossed our close is still delivered.
    s.hub
        .handle_input(id, s.now, &client_frame(0x81, b"crossing"))
        .unwrap();
    s.hub
        .handle_input(id, s.now, &client_close(1000, ""))
        .unwrap();
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![
            Step::Event(Event::Text("crossing".into())),
            Step::Event(Event::Close {
                code: CloseCode::Normal,
                reason: "".into(),
            }),
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
    assert_eq!(s.hub.len(), 0);
    assert_inert_after_disconnect(&mut s, id);
}

#[test]
fn a_long_close_reason_is_cut_at_a_character_boundary() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    // 200 bytes of two-byte characters; a close frame has room for 123.
    assert!(s
        .hub
        .close(id, s.now, CloseCode::Normal, &"\u{e9}".repeat(100)));
    s.pump();
    assert_eq!(
        s.peer(id).close_received(),
        Some((1000, "\u{e9}".repeat(61)))
    );
}

#[test]
fn closing_a_handshaking_connection_drops_it() {
    let mut s = Sim::new(Config::default());
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    s.hub
        .handle_input(id, s.now, &upgrade_request("").as_bytes()[..10])
        .unwrap();
    assert!(!s.hub.is_closed(id));
    assert!(s.hub.close(id, s.now, CloseCode::Normal, ""));
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
    assert_eq!(s.hub.stats().finished, 1);
    assert_inert_after_disconnect(&mut s, id);
}

// ---- the close deadline -----------------------------------------------------------

#[test]
fn a_peer_that_never_answers_our_close_is_cut_at_exactly_close_timeout_after_the_write() {
    let mut s = Sim::new(Config::default());
    // A raw peer answers pings but never a close.
    let id = s.connect_raw();
    s.pump();
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
    // Our close frame cannot be written for 3 s: the deadline starts with the write.
    s.peer(id).reading = Reading::Stalled;
    assert!(s.hub.close(id, s.now, CloseCode::Normal, "bye"));
    s.advance(Duration::from_secs(3));
    assert_eq!(s.peer(id).events, vec![Event::Connect]);
    s.peer(id).reading = Reading::All;
    s.pump();
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    assert_eq!(s.hub.poll_timeout(), Some(s.t0 + Duration::from_secs(8)));
    s.advance(Duration::from_millis(4_900));
    assert_eq!(s.peer(id).events, vec![Event::Connect], "not before 5 s");
    assert_eq!(s.hub.state(id), Some(SessionState::Closing));
    s.advance(Duration::from_millis(100));
    assert_eq!(s.elapsed(), Duration::from_secs(8));
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Error(SessionError::CloseTimeout),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_eq!(s.hub.len(), 0);
}

#[test]
fn the_close_timeout_follows_the_config() {
    let mut s = Sim::new(Config::default().close_timeout(Duration::from_millis(1_500)));
    s.auto_release = false;
    let id = s.connect_raw();
    s.pump();
    assert!(s.hub.close(id, s.now, CloseCode::Away, ""));
    s.pump();
    s.advance(Duration::from_millis(1_400));
    assert_eq!(s.peer(id).events.len(), 1);
    s.advance(Duration::from_millis(100));
    assert_eq!(
        s.peer(id).events[1..],
        [
            Event::Error(SessionError::CloseTimeout),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_inert_after_disconnect(&mut s, id);
}

// ---- the transport ends -----------------------------------------------------------

#[test]
fn eof_without_a_close_is_peer_gone() {
    let mut s = Sim::new(Config::default());
    s.auto_release = false;
    let id = s.connect();
    let other = s.connect();
    s.hub.handle_eof(id, s.now).unwrap();
    assert_eq!(s.hub.state(id), Some(SessionState::Finished));
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Error(SessionError::PeerGone),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_inert_after_disconnect(&mut s, id);
    assert_eq!(s.hub.sessions().collect::<Vec<_>>(), vec![other]);
    assert_eq!(s.hub.len(), 1);
}

#[test]
fn eof_with_unwritten_data_counts_it_undelivered() {
    let mut s = Sim::new(Config::default());
    let id = s.connect();
    s.peer(id).reading = Reading::Stalled;
    for text in ["a", "b", "c"] {
        assert_eq!(s.hub.send(id, s.now, &Prepared::text(text)).queued, 1);
    }
    s.pump(); // handed to the transport, never written
    assert_eq!(s.hub.send(id, s.now, &Prepared::text("d")).queued, 1);
    s.hub.handle_eof(id, s.now).unwrap();
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Error(SessionError::PeerGone),
            Event::Disconnect { undelivered: 4 },
        ]
    );
    assert_eq!(s.hub.stats().dropped, 4);
}

#[test]
fn eof_once_a_close_is_under_way_is_not_an_error() {
    // After our close frame was written.
    let mut s = Sim::new(Config::default());
    let id = open_by_hand(&mut s);
    assert!(s.hub.close(id, s.now, CloseCode::Normal, ""));
    assert_eq!(drive(&mut s.hub, id, s.now).len(), 1);
    s.hub.handle_eof(id, s.now).unwrap();
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
    // After the peer's close, before our answer went out.
    let id = open_by_hand(&mut s);
    s.hub
        .handle_input(id, s.now, &client_close(1000, ""))
        .unwrap();
    s.hub.handle_eof(id, s.now).unwrap();
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![
            Step::Event(Event::Close {
                code: CloseCode::Normal,
                reason: "".into(),
            }),
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
    // During the handshake: the client gave up, nothing to report but the end.
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    s.hub.handle_input(id, s.now, b"GET / HT").unwrap();
    s.hub.handle_eof(id, s.now).unwrap();
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
}

#[test]
fn an_io_error_ends_the_session_with_error_io() {
    let mut s = Sim::new(Config::default());
    s.auto_release = false;
    let id = s.connect();
    let err = io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
    s.hub.handle_io_error(id, s.now, &err).unwrap();
    s.pump();
    assert_eq!(
        s.peer(id).events,
        vec![
            Event::Connect,
            Event::Error(SessionError::Io {
                kind: io::ErrorKind::ConnectionReset,
                message: "reset by peer".into(),
            }),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_inert_after_disconnect(&mut s, id);
    // During the handshake as well.
    let id = s.hub.open(s.now, ConnectionInfo::default(), Keys::new());
    let err = io::Error::from(io::ErrorKind::TimedOut);
    s.hub.handle_io_error(id, s.now, &err).unwrap();
    assert_eq!(
        drive(&mut s.hub, id, s.now),
        vec![
            Step::Event(Event::Error(SessionError::Io {
                kind: io::ErrorKind::TimedOut,
                message: io::Error::from(io::ErrorKind::TimedOut).to_string(),
            })),
            Step::Event(Event::Disconnect { undelivered: 0 }),
            Step::Finished,
        ]
    );
}

// ---- bookkeeping ------------------------------------------------------------------

#[test]
fn len_is_closed_and_sessions_follow_each_stage() {
    let mut s = Sim::new(Config::default());
    s.auto_release = false;
    assert!(s.hub.is_empty());
    let a = s.connect();
    let b = s.connect();
    let c = s.connect();
    let h = s.open_raw(); // still in its handshake
    let mut open: Vec<SessionId> = s.hub.sessions().collect();
    open.sort();
    assert_eq!(open, {
        let mut v = vec![a, b, c];
        v.sort();
        v
    });
    assert_eq!((s.hub.len(), s.hub.connection_count()), (3, 4));
    assert_eq!(s.hub.all_connections().count(), 4);
    assert!(!s.hub.is_closed(h), "handshaking is not closed");
    assert!(!s.hub.is_closed(a));

    // a: closing (its peer does not read), still open and listed.
    s.peer(a).reading = Reading::Stalled;
    assert!(s.hub.close(a, s.now, CloseCode::Normal, ""));
    s.pump();
    assert!(s.hub.is_closed(a));
    assert_eq!(s.hub.state(a), Some(SessionState::Closing));
    assert!(s.hub.session(a).unwrap().is_closed());
    assert_eq!(s.hub.len(), 3);
    assert!(s.hub.sessions().any(|id| id == a));

    // b: over, not yet released.
    s.hub.handle_eof(b, s.now).unwrap();
    s.pump();
    assert!(s.hub.is_closed(b));
    assert_eq!(s.hub.len(), 2);
    assert!(s.hub.sessions().all(|id| id != b));
    assert!(s.hub.all_connections().all(|id| id != b));
    assert_eq!(s.hub.connection_count(), 4);
    assert!(s.hub.release(b).is_some());
    assert_eq!(s.hub.connection_count(), 3);
    assert!(s.hub.is_closed(b), "unknown counts as closed");

    // a finishes its close handshake.
    s.peer(a).reading = Reading::All;
    s.pump();
    assert_eq!(s.hub.state(a), Some(SessionState::Finished));
    assert_eq!(s.hub.len(), 1);
    assert_eq!(s.hub.sessions().collect::<Vec<_>>(), vec![c]);
    assert!(!s.hub.is_closed(c));

    // The handshaking one completes.
    s.peer(h).send_raw(upgrade_request("").as_bytes());
    s.pump();
    assert_eq!(s.hub.len(), 2);
    let stats = s.hub.stats();
    assert_eq!((stats.opened, stats.connected, stats.finished), (4, 4, 2));
}

#[test]
fn disconnect_is_reported_exactly_once_and_last_however_the_session_ends() {
    type Ending = fn(&mut Sim, SessionId);
    let endings: [(&str, Ending); 7] = [
        ("client close", |s, id| {
            s.client_send(id, Message::Close(None));
        }),
        ("server close", |s, id| {
            assert!(s.hub.close(id, s.now, CloseCode::Normal, ""));
        }),
        ("eof", |s, id| {
            s.hub.handle_eof(id, s.now).unwrap();
        }),
        ("io error", |s, id| {
            let err = io::Error::from(io::ErrorKind::BrokenPipe);
            s.hub.handle_io_error(id, s.now, &err).unwrap();
        }),
        ("protocol error", |s, id| {
            s.peer(id).send_raw(&[0x81, 0x01, b'x']);
        }),
        ("pong timeout", |s, id| {
            // The client answers pings only when it reads; it never will.
            s.peer(id).reading = Reading::Stalled;
            s.advance(Duration::from_secs(61));
        }),
        ("eof and error and close at once", |s, id| {
            assert!(s.hub.close(id, s.now, CloseCode::Away, ""));
            s.hub.handle_eof(id, s.now).unwrap();
            let err = io::Error::from(io::ErrorKind::BrokenPipe);
            s.hub.handle_io_error(id, s.now, &err).unwrap();
        }),
    ];
    for (name, end) in endings {
        let mut s = Sim::new(Config::default()).with_app(echo_app);
        s.auto_release = false;
        let id = s.connect();
        s.client_send(id, Message::text("hi"));
        s.pump();
        end(&mut s, id);
        s.pump();
        let events = s.peer(id).events.clone();
        assert_eq!(
            events[..2],
            [Event::Connect, Event::Text("hi".into())],
            "{name}"
        );
        assert_disconnect_once_and_last(&events);
        assert_inert_after_disconnect(&mut s, id);
        assert_eq!(
            s.peer(id).events,
            events,
            "{name}: an event after Disconnect"
        );
        assert_eq!(s.hub.stats().finished, 1, "{name}");
    }
}

#[test]
fn a_finished_session_is_ready_until_its_driver_is_told_finished() {
    let mut s = Sim::new(Config::default());
    let id = open_by_hand(&mut s);
    while s.hub.poll_ready().is_some() {}
    s.hub.handle_eof(id, s.now).unwrap();
    assert_eq!(s.hub.poll_ready(), Some(id));
    assert_eq!(s.hub.poll_ready(), None, "listed once until taken");
    assert_eq!(
        s.hub.poll_event(id),
        Some(Event::Error(SessionError::PeerGone))
    );
    assert_eq!(
        s.hub.poll_event(id),
        Some(Event::Disconnect { undelivered: 0 })
    );
    let mut out = Batch::new();
    assert_eq!(s.hub.poll_transmit(id, s.now, &mut out), Transmit::Finished);
    // Told: it is not listed again for that, however often the driver asks before it
    // releases the id (a driver looping on `poll_ready` would otherwise spin).
    assert_eq!(s.hub.poll_ready(), None);
    for _ in 0..3 {
        assert_eq!(s.hub.poll_transmit(id, s.now, &mut out), Transmit::Finished);
        assert_eq!(s.hub.poll_ready(), None);
    }
    assert!(out.is_empty());
    assert!(s.hub.release(id).is_some());
    assert_eq!(s.hub.poll_ready(), None);
}

#[test]
fn a_released_id_is_inert_and_its_slot_gets_a_new_id() {
    let mut s = Sim::new(Config::default());
    let old = s.connect();
    s.hub.handle_eof(old, s.now).unwrap();
    s.pump();
    assert!(s.peer(old).released);
    assert_eq!(s.hub.state(old), None);
    assert!(s.hub.session(old).is_none());
    assert_eq!(
        s.hub.send(old, s.now, &Prepared::text("x")),
        Delivery {
            closed: 1,
            ..Delivery::default()
        }
    );
    assert_eq!(s.hub.poll_event(old), None);
    assert_eq!(
        s.hub.handle_input(old, s.now, &client_frame(0x81, b"x")),
        Err(UnknownSession)
    );
    assert_eq!(s.hub.handle_eof(old, s.now), Err(UnknownSession));
    assert_eq!(
        s.hub.handle_transmitted(old, s.now, 1, &mut Batch::new()),
        Err(UnknownSession)
    );
    let mut out = Batch::new();
    assert_eq!(
        s.hub.poll_transmit(old, s.now, &mut out),
        Transmit::Finished
    );
    assert!(!s.hub.close(old, s.now, CloseCode::Normal, ""));
    assert!(!s.hub.subscribe(old, "news"));
    assert!(s.hub.user(old).is_none());
    assert!(s.hub.release(old).is_none());

    // The slot is reused under a new id; the old id does not reach the new session.
    let new = s.connect();
    assert_eq!(new.index(), old.index());
    assert_ne!(new, old);
    assert!(!s.hub.close(old, s.now, CloseCode::Normal, ""));
    assert_eq!(s.hub.send(old, s.now, &Prepared::text("x")).closed, 1);
    assert_eq!(s.hub.handle_eof(old, s.now), Err(UnknownSession));
    let d = s.hub.broadcast(
        s.now,
        &Prepared::text("list"),
        melody_core::Target::List(&[old, new]),
    );
    assert_eq!(
        d,
        Delivery {
            queued: 1,
            closed: 1,
            ..Delivery::default()
        }
    );
    s.pump();
    assert_eq!(s.hub.state(new), Some(SessionState::Open));
    assert_eq!(s.peer(new).texts(), vec!["list"]);
    assert_eq!(s.peer(new).events, vec![Event::Connect]);
}

/// Churn: sessions that come and go leave their timer entries behind until due, but
/// the wheel sweeps them once they dominate, so it stays bounded by the live sessions
/// rather than growing with the churn rate × the periods.
#[test]
fn churn_does_not_pile_up_stale_timer_entries() {
    let mut s = Sim::new(Config::default());
    let mut live = std::collections::VecDeque::new();
    let mut most = 0;
    for _ in 0..5_000 {
        live.push_back(open_by_hand(&mut s));
        if live.len() > 8 {
            let gone = live.pop_front().unwrap();
            s.hub.handle_eof(gone, s.now).unwrap();
            let steps = drive(&mut s.hub, gone, s.now);
            assert!(matches!(
                step_events(&steps).last(),
                Some(Event::Disconnect { .. })
            ));
            assert!(s.hub.release(gone).is_some());
        }
        most = most.max(s.hub.timer_entries());
        s.advance(Duration::from_millis(2));
    }
    // Without the sweep: about 3 entries per released session (15,000 here). With it:
    // at most 9 sessions × 5 kinds, twice over, plus the sweep's floor of 1024.
    assert!(most <= 2 * 9 * 5 + 1024, "wheel held {most} entries");
    for id in live {
        s.hub.handle_eof(id, s.now).unwrap();
        drive(&mut s.hub, id, s.now);
        s.hub.release(id);
    }
    s.advance(Duration::from_secs(120));
    assert_eq!(s.hub.timer_entries(), 0);
}
