//! A hub's fan-outs through its frame logs: every recipient gets every message in
//! order whether its frames are held in a log or queued in its outbox, and a slow
//! session does not keep a log full.

use std::time::Instant;

use crate::frame_log::LOG_SLOTS;
use crate::test_support::UPGRADE;
use crate::{
    Batch, Config, ConnectionInfo, Event, Hub, Keys, Prepared, Publication, SessionId, Target,
    Transmit,
};

fn connect(hub: &mut Hub<Keys>, now: Instant) -> SessionId {
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    hub.handle_input(id, now, UPGRADE).expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Connect)));
    written(hub, id, now); // the 101
    id
}

/// Everything the session has to write now, written.
fn written(hub: &mut Hub<Keys>, id: SessionId, now: Instant) -> Vec<u8> {
    let mut batch = Batch::new();
    let mut out = Vec::new();
    while let Transmit::Write(_) = hub.poll_transmit(id, now, &mut batch) {
        let n = batch.unwritten_bytes();
        batch.iter().for_each(|buf| out.extend_from_slice(buf));
        hub.handle_transmitted(id, now, n, &mut batch)
            .expect("known session");
    }
    out
}

#[test]
fn a_slow_sessions_old_frames_leave_the_log_and_everyone_gets_all_in_order() {
    let t0 = Instant::now();
    let config = Config {
        message_buffer_size: 4 * LOG_SLOTS,
        ..Config::default()
    };
    let mut hub: Hub<Keys> = Hub::new(config, t0).expect("valid config");
    let fast = [connect(&mut hub, t0), connect(&mut hub, t0)];
    let slow = connect(&mut hub, t0);
    let published = 3 * LOG_SLOTS;
    let (mut expected, mut fast_got) = (Vec::new(), [Vec::new(), Vec::new()]);
    for i in 0..published {
        let msg = Prepared::text(format!("message {i}"));
        expected.extend_from_slice(msg.frame());
        let delivery = hub.publish(t0, &Publication::from(msg), Target::All);
        assert_eq!((delivery.queued, delivery.dropped), (3, 0));
        for (id, got) in fast.iter().zip(&mut fast_got) {
            got.extend(written(&mut hub, *id, t0));
        }
        // Spilled at three quarters: the log never fills, and the slow session's old
        // frames wait in its outbox, one entry each.
        let slots = hub.frame_log_slots();
        assert!(slots <= LOG_SLOTS / 4 * 3, "{slots} slots after {i}");
        let entries = hub.data_lane_entries(slow).unwrap_or(0);
        assert!(
            i < LOG_SLOTS / 4 * 3 || entries > LOG_SLOTS / 2,
            "{entries} after {i}"
        );
    }
    for got in &fast_got {
        assert_eq!(got, &expected);
    }
    assert_eq!(written(&mut hub, slow, t0), expected);
    hub.publish(t0, &Prepared::text("after").into(), Target::All);
    assert_eq!(hub.frame_log_slots(), 1, "every older slot was given back");
}

#[test]
fn a_session_closed_with_logged_frames_queued_gives_their_slots_back() {
    let t0 = Instant::now();
    let mut hub: Hub<Keys> = Hub::new(Config::default(), t0).expect("valid config");
    let ids = [connect(&mut hub, t0), connect(&mut hub, t0)];
    for i in 0..10 {
        hub.publish(t0, &Prepared::text(i.to_string()).into(), Target::All);
    }
    assert_eq!(hub.frame_log_slots(), 10);
    written(&mut hub, ids[0], t0);
    hub.handle_eof(ids[1], t0).expect("known session");
    assert!(hub.is_closed(ids[1]));
    hub.publish(t0, &Prepared::text("after").into(), Target::All);
    assert_eq!(hub.frame_log_slots(), 1);
}

#[test]
fn interleaved_sockets_and_streams_each_get_their_own_form_of_every_message() {
    let t0 = Instant::now();
    let config = Config::default().event_stream_retry(None);
    let mut hub: Hub<Keys> = Hub::new(config, t0).expect("valid config");
    let stream_request: &[u8] =
        b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n";
    let mut sockets = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..3 {
        sockets.push(connect(&mut hub, t0));
        let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
        hub.handle_input(id, t0, stream_request)
            .expect("known session");
        written(&mut hub, id, t0); // the head
        streams.push(id);
    }
    let (mut frames, mut events) = (Vec::new(), String::new());
    for i in 0..20 {
        let text = format!("m{i}");
        frames.extend_from_slice(Prepared::text(&text).frame());
        let inner = format!("data: {text}\n\n");
        events.push_str(&format!("{:x}\r\n{inner}\r\n", inner.len()));
        let delivery = hub.publish(t0, &Prepared::text(&text).into(), Target::All);
        assert_eq!(delivery.queued, 6);
    }
    assert_eq!(hub.frame_log_slots(), 40, "one slot per form per message");
    // Each form has a log of its own: each session's messages follow one another
    // there, so its outbox holds one run of them.
    assert!(sockets
        .iter()
        .chain(&streams)
        .all(|id| hub.data_lane_entries(*id) == Some(1)));
    for id in &sockets {
        assert_eq!(written(&mut hub, *id, t0), frames);
    }
    for id in &streams {
        assert_eq!(String::from_utf8_lossy(&written(&mut hub, *id, t0)), events);
    }
}
