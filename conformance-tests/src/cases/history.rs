//! Topic history and resume over real sockets: a client that reconnects from the last
//! position it saw gets exactly what it missed, in order, then live messages; a
//! position the history no longer covers is signalled before what is kept.

use melody_core::history::{HistoryLimits, HistoryRules};
use melody_driver::api::Event;
use melody_driver::{Runtime, Verdict};

use crate::backend::Backend;
use crate::client::Client;
use crate::harness::{config, Server};
use crate::sse_client::{SseClient, SseEvent};

const TOPIC: &str = "device/1";

/// Every session is admitted on `TOPIC`; a WebSocket resumes from the
/// `last_event_id` query parameter and, with `positions=1`, sees positions.
fn start<B: Backend>(max_messages: usize) -> Server<B> {
    let rules =
        HistoryRules::new().prefix("device/", HistoryLimits::new().max_messages(max_messages));
    Server::<B>::serve(config().history(rules), |m| {
        m.on_request(|info| {
            let query = info.uri.query().unwrap_or("").to_owned();
            async move {
                let mut verdict = Verdict::admit().subscribe(TOPIC);
                for pair in query.split('&') {
                    if let Some(position) = pair.strip_prefix("last_event_id=") {
                        verdict = verdict.resume_from(position);
                    }
                    if pair == "positions=1" {
                        verdict = verdict.positions(true);
                    }
                }
                verdict
            }
        });
        m.on_history_gap(|session, topic, reason| {
            if session.kind() == melody_core::SessionKind::WebSocket {
                session.write(&format!("gap {topic} {}", reason.as_str()));
            }
        });
    })
}

/// Publishes `data` as events named `reading`; asserts how many sessions got each.
fn publish_all<R: Runtime>(m: &melody_driver::Melody<R>, data: &[String], queued: usize) {
    for d in data {
        let event = Event::new(d.as_str())
            .name("reading")
            .expect("a valid name");
        assert_eq!(
            m.publish_event(TOPIC, event).queued,
            queued,
            "publishing {d}"
        );
    }
}

fn numbered(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| format!("e{i}")).collect()
}

/// Reads `n` events; asserts their data and that each carries a position as its id.
fn read_events(client: &mut SseClient, expected: &[String]) -> Vec<SseEvent> {
    expected
        .iter()
        .map(|data| {
            let event = client.event();
            assert_eq!((&event.name[..], &event.data), ("reading", data));
            assert!(
                event.id.is_some(),
                "a history topic's event carries its position"
            );
            event
        })
        .collect()
}

/// An event stream reads 3 events and goes away; 5 are published meanwhile (to
/// nobody); it comes back with `Last-Event-ID` and gets exactly those 5, in order,
/// with increasing ids, then live events.
pub fn event_stream_resumes_from_last_event_id<B: Backend>() {
    let server = start::<B>(100);
    let m = server.melody();
    let mut first = SseClient::connect(server.addr, "/devices/1");
    server.wait_len(1);
    publish_all(m, &numbered(1..=3), 1);
    let seen = read_events(&mut first, &numbered(1..=3));
    let last_id = seen[2].id.clone().expect("an id");
    drop(first);
    server.wait_len(0);

    publish_all(m, &numbered(4..=8), 0);
    let mut back =
        SseClient::try_connect(server.addr, "/devices/1", &[("Last-Event-ID", &last_id)])
            .unwrap_or_else(|r| panic!("resume refused: {r:?}"));
    let replayed = read_events(&mut back, &numbered(4..=8));
    let ids: Vec<String> = replayed.iter().filter_map(|e| e.id.clone()).collect();
    let mut sorted = ids.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "five distinct positions: {ids:?}");
    assert!(!ids.contains(&last_id), "nothing seen before is replayed");

    server.wait_len(1);
    publish_all(m, &numbered(9..=9), 1);
    read_events(&mut back, &numbered(9..=9));
    let stats = m.stats().history;
    assert_eq!((stats.topics, stats.messages, stats.gaps), (1, 9, 0));
}

/// The same for a WebSocket through the request hook: it asked for positions, so
/// each message is `POSITION\nDATA`; it reconnects with `last_event_id` and gets
/// exactly the 5 it missed, in order, then live ones.
pub fn websocket_resumes_through_the_request_hook<B: Backend>() {
    let server = start::<B>(100);
    let m = server.melody();
    let mut plain = Client::connect(server.addr, "/devices/1");
    let mut ws = Client::connect(server.addr, "/devices/1?positions=1");
    server.wait_len(2);
    publish_all(m, &numbered(1..=3), 2);
    let mut last = String::new();
    for data in numbered(1..=3) {
        assert_eq!(plain.recv_text(), data, "no position unless asked for");
        let text = ws.recv_text();
        let (position, rest) = text.split_once('\n').expect("POSITION\\nDATA");
        assert_eq!(rest, data);
        last = position.to_owned();
    }
    drop(ws);
    server.wait_len(1);

    publish_all(m, &numbered(4..=8), 1);
    let mut back = Client::connect(
        server.addr,
        &format!("/devices/1?positions=1&last_event_id={last}"),
    );
    for data in numbered(4..=8) {
        let text = back.recv_text();
        let (position, rest) = text.split_once('\n').expect("POSITION\\nDATA");
        assert_eq!(rest, data, "in order, each once");
        assert_ne!(position, last);
    }
    publish_all(m, &numbered(9..=9), 2);
    assert!(back.recv_text().ends_with("\ne9"), "then live");
    for data in numbered(4..=9) {
        assert_eq!(plain.recv_text(), data);
    }
    assert_eq!(m.stats().history.gaps, 0);
}

/// With room for 3 messages, a client 5 behind gets the 3 kept and is told of the
/// gap: an event stream by a `melody-gap` event before them, a WebSocket by what the
/// `on_history_gap` handler writes (after them: the replay is queued with the
/// subscription, the handler runs later). Both gaps are counted.
pub fn resume_past_the_history_is_signalled<B: Backend>() {
    let server = start::<B>(3);
    let m = server.melody();
    let mut sse = SseClient::connect(server.addr, "/devices/1");
    let mut ws = Client::connect(server.addr, "/devices/1?positions=1");
    server.wait_len(2);
    publish_all(m, &numbered(1..=1), 2);
    let sse_last = read_events(&mut sse, &numbered(1..=1))[0]
        .id
        .clone()
        .expect("an id");
    let ws_text = ws.recv_text();
    let ws_last = ws_text.split_once('\n').expect("a position").0.to_owned();
    assert_eq!(
        sse_last, ws_last,
        "one position per message, whatever the session"
    );
    drop((sse, ws));
    server.wait_len(0);

    publish_all(m, &numbered(2..=6), 0); // e2 and e3 fall out of the history
    let mut sse =
        SseClient::try_connect(server.addr, "/devices/1", &[("Last-Event-ID", &sse_last)])
            .unwrap_or_else(|r| panic!("resume refused: {r:?}"));
    let gap = sse.event();
    assert_eq!(
        (&gap.name[..], &gap.data[..], &gap.id),
        ("melody-gap", "too-old", &None)
    );
    read_events(&mut sse, &numbered(4..=6));

    let mut ws = Client::connect(
        server.addr,
        &format!("/devices/1?positions=1&last_event_id={ws_last}"),
    );
    // The replay is queued with the subscription; the handler runs after, so what it
    // writes follows the replay.
    for data in numbered(4..=6) {
        assert!(ws.recv_text().ends_with(&format!("\n{data}")));
    }
    assert_eq!(ws.recv_text(), format!("gap {TOPIC} too-old"));
    assert_eq!(m.stats().history.gaps, 2);
}

/// A publisher races a WebSocket's resume: whenever the subscription lands among the
/// publishes, the client gets every message after its position exactly once, in
/// order (the replay and the live subscription happen under one lock).
pub fn resume_racing_publishes_has_no_duplicate_and_no_gap<B: Backend>() {
    const COUNT: u32 = 2000;
    let rules = HistoryRules::new().prefix("device/", HistoryLimits::new().max_messages(10_000));
    // Room for the whole replay in the outbox: this case is about order, not bounds.
    let config = config()
        .history(rules)
        .message_buffer_size(4 * COUNT as usize);
    let server = Server::<B>::serve(config, |m| {
        m.on_request(|info| {
            let query = info.uri.query().unwrap_or("").to_owned();
            async move {
                let verdict = Verdict::admit().subscribe(TOPIC).positions(true);
                match query.strip_prefix("last_event_id=") {
                    Some(position) => verdict.resume_from(position),
                    None => verdict,
                }
            }
        });
    });
    let m = server.melody().clone();
    let mut first = Client::connect(server.addr, "/devices/1");
    server.wait_len(1);
    publish_all(&m, &numbered(1..=1), 1);
    let text = first.recv_text();
    let position = text.split_once('\n').expect("a position").0.to_owned();
    drop(first);
    server.wait_len(0);

    let publisher = std::thread::spawn(move || {
        for i in 2..=COUNT {
            let event = Event::new(format!("e{i}"))
                .name("reading")
                .expect("a valid name");
            m.publish_event(TOPIC, event);
        }
    });
    let mut back = Client::connect(server.addr, &format!("/devices/1?last_event_id={position}"));
    let mut got = Vec::new();
    while got.last().map(String::as_str) != Some(&format!("e{COUNT}")) {
        let text = back.recv_text();
        let (_, data) = text.split_once('\n').expect("POSITION\\nDATA");
        got.push(data.to_owned());
        assert!(got.len() <= COUNT as usize, "more messages than published");
    }
    publisher.join().expect("the publisher finished");
    assert_eq!(got, numbered(2..=COUNT), "each message once, in order");
    assert_eq!(server.melody().stats().dropped, 0);
}
