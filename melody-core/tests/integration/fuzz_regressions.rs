//! Bugs the cargo-fuzz targets (`melody-core/fuzz`) found, each replayed by hand from
//! the smallest input that showed it.

use std::time::Instant;

use melody_core::{
    Batch, CloseCode, Config, ConnectionInfo, Event, Hub, Keys, Publication, SessionError, Target,
    Transmit,
};

/// Feeds a handshake in the given pieces; returns the HTTP status of the refusal and the
/// first line of what was written back.
fn refusal(config: &Config, pieces: &[&[u8]]) -> (Option<u16>, String) {
    let now = Instant::now();
    let mut hub: Hub<Keys> = Hub::new(config.clone(), now).expect("valid config");
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    for piece in pieces {
        hub.handle_input(id, now, piece).expect("a live session");
    }
    let mut status = None;
    while let Some(event) = hub.poll_event(id) {
        if let Event::Error(SessionError::Handshake(rejection)) = event {
            status = Some(rejection.status.as_u16());
        }
    }
    let mut out = Batch::new();
    let written = match hub.poll_transmit(id, now, &mut out) {
        Transmit::Write(_) => out.iter().flatten().copied().collect(),
        _ => Vec::new(),
    };
    let first_line = String::from_utf8_lossy(&written)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    (status, first_line)
}

/// Found by the `handshake` target: a head still incomplete at `max_handshake_size`,
/// followed by a byte no header may hold, got 400 when that byte arrived in the same
/// read as the limit and 431 when it came later. The verdict now rests on the first
/// `max_handshake_size` bytes only: 431 however the stream is cut.
#[test]
fn an_oversized_head_gets_431_however_the_transport_cuts_it() {
    let max = 96;
    let mut head = b"GET /ws HTTP/1.1\r\nHost: fuzz.test\r\nUpgrade: websocket\r\nX-Pad: ".to_vec();
    head.resize(max, b'a');
    let mut stream = head.clone();
    stream.extend_from_slice(b"\x00\r\n\r\n");
    let config = Config::default().max_handshake_size(max);

    let at_once = refusal(&config, &[&stream]);
    let byte_by_byte: Vec<&[u8]> = stream.chunks(1).collect();
    let in_pairs: Vec<&[u8]> = stream.chunks(2).collect();
    let limit_then_rest = [&stream[..max], &stream[max..]];
    let expected = (
        Some(431),
        "HTTP/1.1 431 Request Header Fields Too Large".to_owned(),
    );
    assert_eq!(at_once, expected, "in one read");
    assert_eq!(refusal(&config, &byte_by_byte), expected, "byte by byte");
    assert_eq!(refusal(&config, &in_pairs), expected, "in pairs");
    assert_eq!(
        refusal(&config, &limit_then_rest),
        expected,
        "the limit, then the rest"
    );
}

/// Found by the `session` target once it held requests for verdicts: `Hub::close` (and
/// so `close_all`) of a session whose request awaits its verdict, with messages already
/// queued for it from its topics, ends it and drops them; the session counts them in
/// `SessionStats::dropped` and reports them in `Disconnect { undelivered }`, but
/// `HubStats::dropped` never does: `Hub::close` discards the `Outcome` of
/// `SessionMachine::close`'s `finish` (only `finished` is passed on), so its
/// `undelivered` was lost. Fixed: `SessionMachine::close` returns that outcome.
#[test]
fn closing_a_held_request_counts_its_queued_messages_in_the_hub() {
    let now = Instant::now();
    let mut hub: Hub<Keys> = Hub::new(Config::default(), now).expect("valid config");
    hub.set_request_verdicts(true);
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    hub.handle_input(
        id,
        now,
        b"GET /events HTTP/1.1\r\nHost: fuzz.test\r\nAccept: text/event-stream\r\n\r\n",
    )
    .expect("a live session");
    assert_eq!(hub.poll_event(id), Some(Event::Request));
    assert!(hub.subscribe(id, "news"));
    let delivery = hub.publish(now, &Publication::text("hi"), Target::Topic("news"));
    assert_eq!(delivery.queued, 1, "a held session queues");

    assert!(hub.close(id, now, CloseCode::Away, "shutting down"));
    assert_eq!(
        hub.poll_event(id),
        Some(Event::Disconnect { undelivered: 1 })
    );
    let dropped = hub.session_stats(id).map(|s| s.dropped);
    assert_eq!(dropped, Some(1), "the session counts the message dropped");
    assert_eq!(
        hub.stats().dropped,
        1,
        "the hub counts every message a session dropped"
    );
}

/// Found by the `session` target once it held requests for verdicts: under
/// `DropPolicy::Disconnect`, a publish that overflows the outbox of a session whose
/// request awaits its verdict closes it as a slow consumer, and for a session still in
/// its handshake closing is finishing (`SessionMachine::send` -> `close` -> `finish`),
/// inside `Hub::publish`/`send_publication`. Its `Outcome` is never settled by the hub:
/// the session is `Finished` and has reported `Disconnect`, yet `HubStats::finished`
/// did not count it and it was still subscribed to its topics. Fixed: the fan-out
/// settles the outcomes of the sessions it ended once its walk is over.
#[test]
fn a_held_slow_consumer_is_finished_and_unsubscribed_in_the_hub() {
    let now = Instant::now();
    let config = Config::default()
        .message_buffer_size(1)
        .drop_policy(melody_core::DropPolicy::Disconnect);
    let mut hub: Hub<Keys> = Hub::new(config, now).expect("valid config");
    hub.set_request_verdicts(true);
    let id = hub.open(now, ConnectionInfo::default(), Keys::new());
    hub.handle_input(
        id,
        now,
        b"GET /events HTTP/1.1\r\nHost: fuzz.test\r\nAccept: text/event-stream\r\n\r\n",
    )
    .expect("a live session");
    assert_eq!(hub.poll_event(id), Some(Event::Request));
    assert!(hub.subscribe(id, "news"));
    hub.publish(now, &Publication::text("1"), Target::Topic("news"));
    let overflow = hub.publish(now, &Publication::text("2"), Target::Topic("news"));
    assert_eq!(overflow.disconnected, 1, "a slow consumer");
    let mut events = Vec::new();
    while let Some(event) = hub.poll_event(id) {
        events.push(event);
    }
    assert_eq!(
        events,
        [
            Event::Dropped { count: 2 },
            Event::Error(SessionError::SlowConsumer),
            Event::Disconnect { undelivered: 0 },
        ]
    );
    assert_eq!(hub.state(id), Some(melody_core::SessionState::Finished));
    assert_eq!(
        hub.stats().finished,
        1,
        "every session that ended counts as finished"
    );
    assert_eq!(
        hub.subscriber_count("news"),
        0,
        "a finished session left its topics"
    );
    assert_eq!(hub.topics(id).count(), 0);
}
