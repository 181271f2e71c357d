//! An idle session gives its tungstenite context back and makes it again, the same, at
//! its next frame: seen through the crate-private accessor.

use std::time::Instant;

use crate::test_support::{open, UPGRADE};
use crate::verdict::Admission;
use crate::{Batch, Config, ConnectionInfo, Event, Hub, Keys, SessionError, SessionId, Transmit};

/// A masked frame (zero key, so the payload reads as sent) with a short length.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![first, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}

/// Everything the session has to write now, written.
fn written(hub: &mut Hub<Keys>, id: SessionId, now: Instant) -> Vec<u8> {
    let mut batch = Batch::new();
    let mut out = Vec::new();
    while let Transmit::Write(_) = hub.poll_transmit(id, now, &mut batch) {
        let n = batch.unwritten_bytes();
        for buf in batch.iter() {
            out.extend_from_slice(buf);
        }
        hub.handle_transmitted(id, now, n, &mut batch)
            .expect("known session");
    }
    out
}

#[test]
fn an_idle_session_holds_no_tungstenite_context_until_its_next_frame() {
    let (mut hub, id, t0) = open(Config::default());
    let _ = written(&mut hub, id, t0); // the 101
    assert_eq!(
        hub.ws_allocated(id),
        Some(false),
        "none before the first frame"
    );
    // A whole message in one frame needs none: the gate hands it over itself.
    hub.handle_input(id, t0, &frame(0x81, b"hi"))
        .expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Text(t)) if t == "hi"));
    assert_eq!(
        hub.ws_allocated(id),
        Some(false),
        "none for a whole message"
    );
    // A control frame takes one.
    hub.handle_input(id, t0, &frame(0x89, b"p"))
        .expect("known session");
    assert_eq!(written(&mut hub, id, t0), [0x8a, 1, b'p']);
    assert_eq!(hub.ws_allocated(id), Some(true));
    assert!(hub.trim(id));
    assert_eq!(hub.ws_allocated(id), Some(false), "given back when idle");
    // A ping after that is answered by the new context, as by the first.
    hub.handle_input(id, t0, &frame(0x89, b"q"))
        .expect("known session");
    assert_eq!(written(&mut hub, id, t0), [0x8a, 1, b'q']);
    hub.handle_input(id, t0, &frame(0x81, b"again"))
        .expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Text(t)) if t == "again"));
}

#[test]
fn a_message_in_fragments_keeps_its_context_across_a_trim() {
    let (mut hub, id, t0) = open(Config::default());
    hub.handle_input(id, t0, &frame(0x01, b"hel"))
        .expect("known session");
    hub.trim(id);
    assert_eq!(hub.ws_allocated(id), Some(true), "a message is under way");
    hub.handle_input(id, t0, &frame(0x80, b"lo"))
        .expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Text(t)) if t == "hello"));
}

#[test]
fn an_admissions_message_limit_outlives_the_context() {
    let t0 = Instant::now();
    let mut hub: Hub<Keys> = Hub::new(Config::default(), t0).expect("valid config");
    hub.set_request_verdicts(true);
    let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    hub.handle_input(id, t0, UPGRADE).expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Request)));
    assert_eq!(
        hub.admit(id, t0, Admission::new().max_message_size(4)),
        Ok(true)
    );
    assert!(matches!(hub.poll_event(id), Some(Event::Connect)));
    hub.handle_input(id, t0, &frame(0x81, b"1234"))
        .expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Text(_))));
    assert!(hub.trim(id));
    assert_eq!(hub.ws_allocated(id), Some(false));
    hub.handle_input(id, t0, &frame(0x81, b"12345"))
        .expect("known session");
    assert_eq!(
        hub.poll_event(id),
        Some(Event::Error(SessionError::MessageTooBig {
            size: 5,
            max: 4
        }))
    );
}

#[test]
fn a_session_idle_after_its_handshake_holds_no_outbox_lanes() {
    let (mut hub, id, t0) = open(Config::default());
    let _ = written(&mut hub, id, t0); // the 101
    assert!(hub.trim(id));
    assert_eq!(hub.lanes_allocated(id), Some(false));
    hub.send(id, t0, &crate::Prepared::text("x"));
    assert_eq!(hub.lanes_allocated(id), Some(true));
    let _ = written(&mut hub, id, t0);
    assert!(!hub.trim(id), "data since the last ping: kept for the next");
    assert_eq!(hub.lanes_allocated(id), Some(true));
}

#[test]
fn a_session_is_quiet_until_data_goes_either_way_and_again_after_its_next_ping() {
    let config = Config::default();
    let ping_tick = config.ping_period + config.timer_granularity;
    let (mut hub, id, t0) = open(config);
    let _ = written(&mut hub, id, t0); // the 101
    assert!(hub.is_quiet(id), "nothing sent or received since it opened");
    hub.handle_input(id, t0, &frame(0x81, b"in"))
        .expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Text(_))));
    assert!(!hub.is_quiet(id), "a message received");
    assert!(hub.trim(id), "receiving alone keeps no buffer warm");
    let tick = t0 + ping_tick;
    hub.handle_timeout(tick);
    let ping = written(&mut hub, id, tick);
    assert_eq!(ping.first(), Some(&0x89), "the keepalive ping went out");
    assert!(!hub.is_quiet(id), "its pong is due");
    hub.handle_input(id, tick, &frame(0x8a, b""))
        .expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Pong(_))));
    assert!(hub.is_quiet(id), "nothing since the ping tick, the pong in");
    hub.send(id, tick, &crate::Prepared::text("out"));
    assert!(!hub.is_quiet(id), "a message queued");
    // A control frame answered is not data: a ping from the peer keeps it quiet.
    let (mut hub, id, t0) = open(Config::default());
    let _ = written(&mut hub, id, t0);
    hub.handle_input(id, t0, &frame(0x89, b"p"))
        .expect("known session");
    assert_eq!(written(&mut hub, id, t0), [0x8a, 1, b'p']);
    assert!(hub.is_quiet(id));
    hub.release(id);
    assert!(!hub.is_quiet(id), "a released session is not known");
}

#[test]
fn an_event_streams_keepalive_expects_no_answer_and_leaves_it_quiet() {
    const STREAM: &[u8] = b"GET /events HTTP/1.1\r\nHost: localhost\r\n\
        Accept: text/event-stream\r\n\r\n";
    let config = Config::default();
    let ping_tick = config.ping_period + config.timer_granularity;
    let t0 = Instant::now();
    let mut hub: Hub<Keys> = Hub::new(config, t0).expect("valid config");
    let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    hub.handle_input(id, t0, STREAM).expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Connect)));
    let _ = written(&mut hub, id, t0); // the 200 and the retry field
    assert!(hub.is_quiet(id));
    let tick = t0 + ping_tick;
    hub.handle_timeout(tick);
    let comment = written(&mut hub, id, tick);
    assert!(!comment.is_empty(), "the keepalive comment went out");
    assert!(hub.is_quiet(id), "no pong to wait for");
}

/// Every session's machine sits in the hub's slab whether it is busy or idle, so its
/// size is most of what an idle session costs; a field that grows it shows here first.
#[test]
fn a_session_machine_stays_within_its_size() {
    use std::mem::size_of;
    assert_eq!(size_of::<crate::timers::SessionTimers>(), 64);
    let size = size_of::<crate::session::SessionMachine<Keys>>();
    assert!(size <= 248, "{size} bytes");
}
