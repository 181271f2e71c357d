//! Event-stream (Server-Sent Events) sessions: a `GET` that accepts `text/event-stream`
//! on the same port is a session of the same hub. Publications reach both kinds, the
//! request hook's refusals, keys, topics and limits apply to it, binary messages skip
//! it (counted), its outbox drops by the same rules, and it ends on EOF or shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melody_core::{Delivery, SessionKind};
use melody_driver::api::Event;
use melody_driver::{Runtime, Session, Verdict};

use crate::backend::Backend;
use crate::client::{Client, End};
use crate::harness::{config, wait_until, Call, Recorder, Server};
use crate::sse_client::{Chunk, Record, SseClient, SseEvent};

/// An event with data only.
fn data_event(data: &str) -> SseEvent {
    SseEvent {
        name: "message".to_owned(),
        id: None,
        data: data.to_owned(),
    }
}

/// Asserts the stream's next record is the `retry:` the config gives (3 s by default).
fn expect_retry(client: &mut SseClient) {
    assert_eq!(
        client.chunk(),
        Chunk::Data(b"retry: 3000\n\n".to_vec()),
        "client {}: the first chunk is the retry",
        client.local
    );
    match client.try_record(Duration::ZERO) {
        Ok(Record::Retry(3000)) => {}
        other => panic!("expected retry 3000, got {other:?}"),
    }
}

/// One `publish_event` reaches the WebSocket and the event-stream subscribers of its
/// topic and no one else: the stream gets the name, id and multi-line data (one chunk,
/// one `data:` per line), the WebSocket the data as one text frame, the `Delivery`
/// says queued 2. A session of another topic and an unsubscribed stream get nothing:
/// their next message is a marker sent after.
pub fn publish_event_reaches_both_kinds_and_no_one_else<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let mut ws = Client::connect(server.addr, "/ws");
    let mut sse = SseClient::connect(server.addr, "/events");
    let mut elsewhere = Client::connect(server.addr, "/elsewhere");
    let mut idle = SseClient::connect(server.addr, "/idle");
    server.wait_len(4);
    let [ws_s, sse_s, elsewhere_s, idle_s] =
        [ws.local, sse.local, elsewhere.local, idle.local].map(|a| server.session(a));
    assert_eq!(ws_s.kind(), SessionKind::WebSocket);
    assert_eq!(sse_s.kind(), SessionKind::EventStream);
    assert_eq!(idle_s.kind(), SessionKind::EventStream);
    assert!(ws_s.subscribe("news") && sse_s.subscribe("news"));
    assert!(elsewhere_s.subscribe("sport"));

    let data = "line one\nline two\r\n\nline four";
    let event = Event::new(data)
        .name("update")
        .and_then(|e| e.id("41"))
        .expect("a valid event");
    let m = server.melody();
    assert_eq!(
        m.publish_event("news", event),
        Delivery {
            queued: 2,
            ..Delivery::default()
        }
    );
    expect_retry(&mut sse);
    assert_eq!(
        sse.chunk(),
        Chunk::Data(
            b"event: update\nid: 41\ndata: line one\ndata: line two\ndata: \ndata: line four\n\n"
                .to_vec()
        ),
        "one event, one chunk, one data line per line"
    );
    assert_eq!(
        sse.event(),
        SseEvent {
            name: "update".to_owned(),
            id: Some("41".to_owned()),
            // The stream's line breaks are all LF to the client.
            data: "line one\nline two\n\nline four".to_owned(),
        }
    );
    assert_eq!(
        ws.recv_text(),
        data,
        "the WebSocket gets the data as it was"
    );

    assert_eq!(m.publish("sport", "marker sport").queued, 1);
    assert_eq!(elsewhere.recv_text(), "marker sport", "nothing before it");
    assert_eq!(idle_s.write_event(Event::new("marker idle")).queued, 1);
    expect_retry(&mut idle);
    assert_eq!(idle.event(), data_event("marker idle"), "nothing before it");
    assert_eq!(m.publish("news", "marker news").queued, 2);
    assert_eq!(ws.recv_text(), "marker news");
    assert_eq!(sse.event(), data_event("marker news"));
}

/// A hook that refuses an event-stream request with 401 and `WWW-Authenticate`
/// answers exactly that (status line, header, body reason) and closes; the hook saw
/// the request as an event stream; no session, one refusal counted. With the token,
/// the stream opens.
pub fn request_hook_refuses_event_stream_401_with_header<B: Backend>() {
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let connects = Arc::new(Mutex::new(0usize));
    let server = Server::<B>::serve(config(), |m| {
        let kinds = kinds.clone();
        m.on_request(move |info| {
            kinds.lock().unwrap().push(info.kind);
            async move {
                if info.header("authorization") == Some("Bearer good") {
                    Verdict::admit()
                } else {
                    Verdict::refuse(401, "missing or bad token")
                        .header("WWW-Authenticate", "Bearer")
                }
            }
        });
        let connects = connects.clone();
        m.on_connect(move |_| *connects.lock().unwrap() += 1);
    });
    let mut refused = match SseClient::try_connect(server.addr, "/events", &[]) {
        Err(refused) => refused,
        Ok(_) => panic!("an event stream without a token was admitted"),
    };
    assert_eq!(refused.head.status_line, "HTTP/1.1 401 Unauthorized");
    assert_eq!(refused.head.header("www-authenticate"), Some("Bearer"));
    assert!(
        refused
            .head
            .header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{:?}",
        refused.head
    );
    assert_eq!(refused.body, "missing or bad token\n");
    refused.client.expect_eof(Duration::from_secs(5));

    let mut ok =
        SseClient::try_connect(server.addr, "/events", &[("Authorization", "Bearer good")])
            .expect("with the token the stream opens");
    assert_eq!(ok.head.status_line, "HTTP/1.1 200 OK");
    let session = server.session(ok.local);
    assert_eq!(session.write_event(Event::new("in")).queued, 1);
    assert_eq!(ok.event(), data_event("in"));
    assert_eq!(
        *kinds.lock().unwrap(),
        vec![SessionKind::EventStream, SessionKind::EventStream]
    );
    assert_eq!(server.melody().stats().rejected, 1);
    assert_eq!(
        *connects.lock().unwrap(),
        1,
        "only the admitted one connects"
    );
}

/// The hook's keys and topics apply to an event stream: `on_connect` sees the key and
/// the kind, and the stream is subscribed before its 200 — a publish made from
/// `on_connect`, and one made as soon as the client has its head, both reach it;
/// a stream of another topic gets neither.
pub fn request_hook_keys_and_topics_apply_to_event_streams<B: Backend>() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = Server::<B>::serve(config(), |m| {
        m.on_request(|info| {
            let room = info.uri.path().trim_start_matches('/').to_owned();
            async move { Verdict::admit().key("room", room.clone()).subscribe(room) }
        });
        let melody = m.clone();
        let seen = seen.clone();
        m.on_connect(move |s| {
            let room = s.get::<String>("room").unwrap_or_default();
            seen.lock().unwrap().push((s.kind(), room.clone()));
            let _ = melody.publish_event(&room, Event::new(format!("welcome to {room}")));
        });
    });
    let mut news = SseClient::connect(server.addr, "/news");
    let d = server
        .melody()
        .publish_event("news", Event::new("right after the head"));
    assert_eq!(d.queued, 1, "subscribed by its 200: {d:?}");
    let mut got = vec![news.event().data, news.event().data];
    got.sort();
    assert_eq!(got, vec!["right after the head", "welcome to news"]);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(SessionKind::EventStream, "news".to_owned())]
    );
    assert_eq!(
        server.session(news.local).get::<String>("room").as_deref(),
        Some("news")
    );
    let mut sport = SseClient::connect(server.addr, "/sport");
    assert_eq!(sport.event(), data_event("welcome to sport"));
    assert_eq!(server.melody().publish("news", "marker").queued, 1);
    assert_eq!(news.event(), data_event("marker"), "nothing of sport");
}

/// `Verdict::binary_writes(true)` makes that WebSocket receive text (broadcast,
/// published or written) as binary frames, while another WebSocket gets text; an
/// event stream admitted with it still gets events.
pub fn binary_writes_turn_text_into_binary_frames<B: Backend>() {
    let server = Server::<B>::serve(config(), |m| {
        m.on_request(|info| async move {
            Verdict::admit()
                .binary_writes(info.uri.path() == "/bin")
                .subscribe("t")
        });
    });
    let mut bin = Client::connect(server.addr, "/bin");
    let mut text = Client::connect(server.addr, "/text");
    let mut sse = SseClient::connect(server.addr, "/bin");
    server.wait_len(3);
    let m = server.melody();
    assert_eq!(m.broadcast("hello").queued, 3);
    assert_eq!(bin.recv_binary(), b"hello");
    assert_eq!(text.recv_text(), "hello");
    assert_eq!(sse.event(), data_event("hello"));
    assert_eq!(m.publish_event("t", Event::new("event")).queued, 3);
    assert_eq!(bin.recv_binary(), b"event");
    assert_eq!(text.recv_text(), "event");
    assert_eq!(sse.event(), data_event("event"));
    assert_eq!(server.session(bin.local).write("own").queued, 1);
    assert_eq!(bin.recv_binary(), b"own");
    let d = m.broadcast_binary(&[1, 2]);
    assert_eq!((d.queued, d.skipped), (2, 1));
    assert_eq!(bin.recv_binary(), vec![1, 2]);
    assert_eq!(text.recv_binary(), vec![1, 2]);
}

/// Events of 64 KiB: a few of them fill the socket buffers of a stream that does not
/// read.
const BIG: usize = 64 * 1024;
const MAX_EVENTS: usize = 2000;

fn big_event(i: usize) -> Event {
    let mut data = format!("{i:08}");
    data.push_str(&"x".repeat(BIG - data.len()));
    Event::new(data).id(i.to_string()).expect("a valid id")
}

/// The index of a [`big_event`], checking it arrived whole.
fn big_index(event: &SseEvent) -> usize {
    assert_eq!(event.data.len(), BIG, "an event was cut");
    let i: usize = event.data[..8].parse().expect("an index");
    assert_eq!(event.id.as_deref(), Some(i.to_string().as_str()));
    i
}

/// The hook's `message_buffer_size(4)` bounds a stream's outbox (the config's is 1,024):
/// while its client does not read, 64 KiB events fill the socket buffers, then the
/// outbox, which never holds more than 4; then they are refused (`DropNewest`). Once
/// the client reads, it receives exactly the events reported queued, and received +
/// dropped == sent by `Delivery`, `Session::stats`, `on_dropped` and `HubStats`.
pub fn request_hook_bounds_an_event_stream_outbox<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config(), |m| {
        rec.lifecycle(m);
        m.on_request(|info| async move {
            match info.kind {
                SessionKind::EventStream => Verdict::admit().message_buffer_size(4),
                _ => Verdict::admit(),
            }
        });
    });
    let stalled = SseClient::connect(server.addr, "/stalled");
    let session = server.session(stalled.local);
    let mut deliveries = Vec::new();
    let mut most_queued = 0;
    for i in 0..MAX_EVENTS {
        let d = session.write_event(big_event(i));
        most_queued = most_queued.max(session.stats().queued);
        deliveries.push(d);
        // A few more after the first refusal: they are refused too, or fit where the
        // socket took more.
        if deliveries.iter().filter(|d| d.dropped > 0).count() >= 8 {
            break;
        }
    }
    let mut total = Delivery::default();
    deliveries.iter().for_each(|d| total.merge(*d));
    assert!(
        total.dropped > 0,
        "{} events of 64 KiB cannot fit in 4 messages and socket buffers",
        deliveries.len()
    );
    assert!(
        most_queued <= 4,
        "the outbox held {most_queued} messages, over the hook's bound of 4"
    );
    let accepted: Vec<usize> = deliveries
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match (d.queued, d.dropped) {
            (1, 0) => Some(i),
            (0, 1) => None,
            _ => panic!("event {i}: {d:?}: queued or refused, never both"),
        })
        .collect();

    let reader = std::thread::spawn(move || {
        let mut stalled = stalled;
        let mut got = Vec::new();
        loop {
            let event = stalled.event();
            if event.data == "end" {
                return (stalled, got);
            }
            got.push(big_index(&event));
        }
    });
    wait_until(Duration::from_secs(10), "the outbox to drain", || {
        session.stats().queued == 0
    });
    assert_eq!(session.write_event(Event::new("end")).queued, 1);
    let (_stalled, got) = reader.join().expect("the reader");
    assert_eq!(got, accepted, "received exactly what was reported queued");
    let stats = session.stats();
    assert_eq!(
        (got.len() as u64 + stats.dropped, stats.dropped),
        (deliveries.len() as u64, total.dropped as u64),
        "received + dropped == sent; Delivery and stats agree"
    );
    let addr = session.remote_addr();
    rec.wait(
        Duration::from_secs(5),
        "on_dropped to report every drop",
        |calls| {
            let reported: u64 = calls
                .iter()
                .filter(|(a, _)| *a == addr)
                .map(|(_, c)| match c {
                    Call::Dropped(n) => *n,
                    _ => 0,
                })
                .sum();
            reported == stats.dropped
        },
    );
    assert_eq!(server.melody().stats().dropped, stats.dropped);
}

/// A stream's client that closes its socket (after sending bytes, which a stream
/// discards) ends the session: `on_disconnect` runs exactly once, with no `on_error`
/// and no `on_message` ever.
pub fn event_stream_disconnect_fires_once<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config(), |m| {
        rec.lifecycle(m);
        let r = rec.clone();
        m.on_message(move |s, text| r.record(s, Call::Text(text.to_owned())));
        let r = rec.clone();
        m.on_message_binary(move |s, data| r.record(s, Call::Binary(data.to_vec())));
    });
    let mut first = SseClient::connect(server.addr, "/events");
    let addr = first.local;
    let session = server.session(addr);
    // Bytes a stream's client has no business sending: text, and a masked text frame.
    first.send(b"hello\r\n\r\n");
    first.send(&crate::client::frame(true, 0x1, b"hi", Some([1, 2, 3, 4])));
    // They were read (the session got past them) when this round trip completes.
    assert_eq!(session.write_event(Event::new("still open")).queued, 1);
    assert_eq!(first.event(), data_event("still open"));
    drop(first);
    rec.wait_disconnect(addr);
    assert!(session.is_closed());
    // A second stream, closed after, orders the check: had the first a second
    // on_disconnect, it would have come before this one's.
    let second = SseClient::connect(server.addr, "/events");
    let second_addr = second.local;
    drop(second);
    rec.wait_disconnect(second_addr);
    assert_eq!(rec.of(addr), vec![Call::Connect, Call::Disconnect]);
    server.wait_len(0);
}

/// The outbox bound of [`shutdown_ends_event_streams`].
const BUFFER: usize = 8;

/// Writes [`big_event`]s to a stream whose client does not read, keeping its outbox
/// full, until its writer is blocked: `bound` messages queued and nothing written for
/// 250 ms. Returns the indices of the events reported queued.
fn fill_until_blocked<R: Runtime>(session: &Session<R>, bound: usize) -> Vec<usize> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut queued = Vec::new();
    let mut next = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "the stalled stream's writer never blocked ({next} events written)"
        );
        let stats = session.stats();
        if stats.queued < bound {
            if session.write_event(big_event(next)).queued == 1 {
                queued.push(next);
            }
            next += 1;
            continue;
        }
        let quiet_until = Instant::now() + Duration::from_millis(250);
        let blocked = loop {
            let now = session.stats();
            if now.sent != stats.sent || now.queued < bound {
                break false;
            }
            if Instant::now() >= quiet_until {
                break true;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if blocked {
            return queued;
        }
    }
}

/// Graceful shutdown ends event streams: a stream that reads gets what was queued
/// for it, then the last chunk `0\r\n\r\n`, then EOF; a WebSocket gets the close code;
/// a stream that never reads (outbox full) is cut off at the deadline, and what it
/// received plus `ShutdownReport::undelivered` is what was reported queued for it.
pub fn shutdown_ends_event_streams<B: Backend>() {
    let server = Server::<B>::serve(config().message_buffer_size(BUFFER), |_| {});
    let mut reading = SseClient::connect(server.addr, "/reading");
    let mut ws = Client::connect(server.addr, "/ws");
    let mut stalled = SseClient::connect(server.addr, "/stalled");
    server.wait_len(3);
    let [reading_s, stalled_s] = [reading.local, stalled.local].map(|a| server.session(a));
    for i in 0..3 {
        assert_eq!(
            reading_s
                .write_event(Event::new(format!("queued {i}")))
                .queued,
            1
        );
    }
    let queued = fill_until_blocked(&stalled_s, BUFFER);
    let ws_reader = std::thread::spawn(move || {
        let code = ws.recv_close();
        ws.finish_close();
        code
    });
    let m = server.melody();
    let started = Instant::now();
    let report = server.block_on(m.shutdown_with(Duration::from_secs(1), 4000u16, "maintenance"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert_eq!(
        ws_reader.join().expect("the ws reader"),
        (4000, "maintenance".to_owned())
    );

    for i in 0..3 {
        assert_eq!(reading.event(), data_event(&format!("queued {i}")));
    }
    assert_eq!(
        reading.chunk(),
        Chunk::Last,
        "the stream ends with the last chunk"
    );
    reading.expect_eof(Duration::from_secs(5));

    let (chunks, ended) = stalled.drain(Duration::from_secs(10));
    assert!(!ended, "a stream cut off gets no last chunk");
    assert_eq!(
        chunks.first().map(Vec::as_slice),
        Some(&b"retry: 3000\n\n"[..])
    );
    let mut got = Vec::new();
    while let Ok(record) = stalled.try_record(Duration::ZERO) {
        if let Record::Event(event) = record {
            got.push(big_index(&event));
        }
    }
    assert_eq!(
        got,
        queued[..got.len()],
        "what arrived is the first of what was queued"
    );
    assert_eq!(
        (
            report.closed,
            report.cut_off,
            got.len() + report.undelivered
        ),
        (3, 1, queued.len()),
        "{report:?}: received {} of {} queued",
        got.len(),
        queued.len()
    );
    assert!(report.undelivered > 0, "{report:?}");
    assert_eq!(
        stalled_s.stats().dropped,
        report.undelivered as u64,
        "what was left unwritten is the stalled stream's drops"
    );
    assert_eq!(m.len(), 0);
}

/// A binary message is not offered to event streams, which carry text: a binary
/// publish, broadcast or write counts them in `Delivery::skipped` (not `dropped`),
/// while WebSockets get it; the stream's next event is a text marker sent after.
pub fn binary_messages_skip_event_streams<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let mut ws = Client::connect(server.addr, "/ws");
    let mut sse = SseClient::connect(server.addr, "/events");
    server.wait_len(2);
    let [ws_s, sse_s] = [ws.local, sse.local].map(|a| server.session(a));
    assert!(ws_s.subscribe("t") && sse_s.subscribe("t"));
    let m = server.melody();
    let one_skip = |queued| Delivery {
        queued,
        skipped: 1,
        ..Delivery::default()
    };
    assert_eq!(m.publish_binary("t", &[1, 2, 3]), one_skip(1));
    assert_eq!(m.broadcast_binary(&[4]), one_skip(1));
    assert_eq!(sse_s.write_binary(&[5]), one_skip(0));
    assert_eq!(ws.recv_binary(), vec![1, 2, 3]);
    assert_eq!(ws.recv_binary(), vec![4]);
    assert_eq!(m.stats().dropped, 0, "a skip is not a drop");
    assert_eq!(sse_s.stats().dropped, 0, "a skip is not a drop");
    assert_eq!(m.publish("t", "after").queued, 2);
    assert_eq!(ws.recv_text(), "after");
    assert_eq!(sse.event(), data_event("after"), "nothing before it");
}

/// `HubStats::skipped` (`Melody::stats`) counts the binary messages not offered to
/// event streams, as `Delivery::skipped` reported them — over every shard. (Fails
/// while `Melody::stats` leaves `skipped` out of its sum over the shards.)
pub fn hub_stats_count_skipped_binary_messages<B: Backend>() {
    let server = Server::<B>::serve(config(), |_| {});
    let streams: Vec<SseClient> = (0..4)
        .map(|i| SseClient::connect(server.addr, &format!("/events{i}")))
        .collect();
    let mut ws = Client::connect(server.addr, "/ws");
    server.wait_len(5);
    let m = server.melody();
    let mut total = Delivery::default();
    total.merge(m.broadcast_binary(&[1]));
    total.merge(server.session(streams[0].local).write_binary(&[2]));
    assert_eq!((total.queued, total.skipped), (1, 5), "{total:?}");
    assert_eq!(ws.recv_binary(), vec![1]);
    let stats = m.stats();
    assert_eq!(
        (stats.skipped, stats.dropped),
        (5, 0),
        "HubStats must count what Delivery reported skipped: {stats:?}"
    );
}

/// A stream gets a keepalive comment every `ping_period` and, since it cannot answer
/// pings, is never cut by `pong_wait`: past several pong waits it is open and still
/// carries events.
pub fn event_stream_keepalive_comments_and_no_pong_timeout<B: Backend>() {
    let cfg = config()
        .ping_period(Duration::from_millis(100))
        .pong_wait(Duration::from_millis(300));
    let server = Server::<B>::serve(cfg, |_| {});
    let mut sse = SseClient::connect(server.addr, "/events");
    let session = server.session(sse.local);
    expect_retry(&mut sse);
    let start = Instant::now();
    let mut comments = 0;
    while start.elapsed() < Duration::from_millis(1200) {
        match sse.try_record(Duration::from_millis(1200).saturating_sub(start.elapsed())) {
            Ok(Record::Comment(c)) => {
                assert_eq!(c, "", "the keepalive is an empty comment");
                comments += 1;
            }
            Ok(other) => panic!("expected keepalive comments, got {other:?}"),
            Err(End::Timeout) => break,
            Err(End::Closed) => panic!("the stream ended after {:?}", start.elapsed()),
        }
    }
    assert!(
        (5..=16).contains(&comments),
        "{comments} keepalives in 1.2 s at a 100 ms period"
    );
    assert!(!session.is_closed(), "a stream is not cut by pong_wait");
    assert_eq!(session.write_event(Event::new("alive")).queued, 1);
    assert_eq!(sse.event(), data_event("alive"));
}
