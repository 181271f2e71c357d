//! History topics across nodes: positions come from the topic's Redis stream, so a
//! client resumes on any node, every node delivers in one order, and a Redis that lost
//! its data starts a new epoch that resuming clients are told of.

use std::time::Duration;

use melody_core::history::{HistoryLimits, HistoryRules, Position};
use melody_core::SessionKind;
use melody_driver::Verdict;
use melody_tokio::{Config, Melody};

use crate::events::StreamClient;
use crate::harness::{config, wait_until, Client, Node, SharedRedis, SETTLE};
use crate::outage::own_redis;

/// A melody config keeping the last 100 messages of every `device/` topic, with
/// outboxes that hold a whole burst of the ordering test (a drop would be a test
/// artefact: the session's own drop policy, not the backplane).
fn with_history() -> Config {
    let limits = HistoryLimits::new().max_messages(100);
    Config::default()
        .message_buffer_size(1024)
        .history(HistoryRules::new().prefix("device/", limits))
}

/// Sessions on `/h/TOPIC` are admitted on TOPIC by the request hook, resume from the
/// `last_event_id` query parameter (event streams: from `Last-Event-ID`) and, with
/// `positions=1`, see positions; a WebSocket is told of a gap with a text message.
fn wire_resume(melody: &Melody) {
    melody.on_request(|info| {
        let path = info.uri.path().to_owned();
        let query = info.uri.query().unwrap_or("").to_owned();
        async move {
            let Some(topic) = path.strip_prefix("/h/") else {
                return Verdict::admit();
            };
            let mut verdict = Verdict::admit().subscribe(topic);
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
    melody.on_history_gap(|session, topic, reason| {
        if session.kind() == SessionKind::WebSocket {
            session.write(&format!("gap {topic} {}", reason.as_str()));
        }
    });
}

fn start_pair(cfg: melody_redis::RedisBackplaneConfig) -> (Node, Node) {
    (
        Node::start_with(cfg.clone(), with_history(), wire_resume),
        Node::start_with(cfg, with_history(), wire_resume),
    )
}

/// A WebSocket message of a session that asked for positions: the position, a line
/// feed, the data.
fn positioned(frame: &str) -> (Position, String) {
    let (position, data) = frame
        .split_once('\n')
        .unwrap_or_else(|| panic!("no position in {frame:?}"));
    let position = position
        .parse()
        .unwrap_or_else(|_| panic!("not a position: {frame:?}"));
    (position, data.to_owned())
}

fn recv_positioned(client: &mut Client, n: usize) -> Vec<(Position, String)> {
    (0..n).map(|_| positioned(&client.recv())).collect()
}

/// An event-stream event's `id:` and `data:`.
fn id_and_data(event: &str) -> (Option<String>, String) {
    let field = |name: &str| {
        event
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::to_owned)
    };
    (field("id: "), field("data: ").unwrap_or_default())
}

fn publish_numbered(node: &Node, topic: &str, range: std::ops::RangeInclusive<u32>) {
    for i in range {
        node.melody.publish(topic, format!("e{i}").as_str());
    }
}

fn after(position: Position, n: u64) -> Position {
    Position::new(position.epoch(), position.sequence() + n)
}

#[test]
fn a_client_resumes_on_another_node_from_what_it_saw_on_the_first() {
    const TOPIC: &str = "device/1";
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let (a, b) = start_pair(config(&redis.url, "history-resume"));
    let mut ws = b.connect(&format!("/h/{TOPIC}?positions=1"));
    b.wait_subscribers(TOPIC, 1);
    b.wait_ready(&[TOPIC], SETTLE);
    a.wait_ready(&[], SETTLE);

    publish_numbered(&a, TOPIC, 1..=3);
    let seen = recv_positioned(&mut ws, 3);
    let data: Vec<&str> = seen.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(data, ["e1", "e2", "e3"]);
    let last = seen[2].0;
    assert_eq!(seen[0].0.sequence(), 1, "a fresh stream starts at 1");
    for pair in seen.windows(2) {
        assert_eq!(pair[1].0, after(pair[0].0, 1), "consecutive positions");
    }
    drop(ws);
    b.wait_sessions(0);

    // Published on A while the client is away; node B keeps its copy of the stream.
    publish_numbered(&a, TOPIC, 4..=8);
    wait_until("node B's copy to reach e8", SETTLE, || {
        b.melody.last_position(TOPIC) == Some(after(last, 5))
    });

    let mut ws = b.connect(&format!("/h/{TOPIC}?positions=1&last_event_id={last}"));
    let replay = recv_positioned(&mut ws, 5);
    let expected: Vec<(Position, String)> = (1..=5)
        .map(|n| (after(last, n), format!("e{}", 3 + n)))
        .collect();
    assert_eq!(replay, expected, "exactly what was missed, in order");

    let header = format!("Last-Event-ID: {last}\r\n");
    let mut stream = StreamClient::connect_with(b.addr, &format!("/h/{TOPIC}"), &header);
    let events: Vec<(Option<String>, String)> =
        (0..5).map(|_| id_and_data(&stream.next_event())).collect();
    let expected_events: Vec<(Option<String>, String)> = expected
        .iter()
        .map(|(p, d)| (Some(p.to_string()), d.clone()))
        .collect();
    assert_eq!(events, expected_events, "the event stream resumes the same");

    b.wait_subscribers(TOPIC, 2);
    publish_numbered(&a, TOPIC, 9..=9);
    assert_eq!(ws.recv(), format!("{}\ne9", after(last, 6)), "then live");
    assert_eq!(
        id_and_data(&stream.next_event()),
        (Some(after(last, 6).to_string()), "e9".to_owned())
    );
    wait_until("node A to count its 9 appends", SETTLE, || {
        a.redis.stats().history_appended == 9
    });
    assert_eq!(b.redis.stats().malformed, 0);
}

#[test]
fn two_publishers_on_two_nodes_give_every_subscriber_one_order() {
    const TOPIC: &str = "device/2";
    const EACH: usize = 150;
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let (a, b) = start_pair(config(&redis.url, "history-order"));
    let mut on_a = a.connect(&format!("/h/{TOPIC}?positions=1"));
    let mut on_b = b.connect(&format!("/h/{TOPIC}?positions=1"));
    a.wait_subscribers(TOPIC, 1);
    b.wait_subscribers(TOPIC, 1);
    a.wait_ready(&[TOPIC], SETTLE);
    b.wait_ready(&[TOPIC], SETTLE);

    // Readers read while the publishers publish, so no outbox bound is reached.
    let (got_a, got_b) = std::thread::scope(|scope| {
        let read_a = scope.spawn(|| recv_positioned(&mut on_a, 2 * EACH));
        let read_b = scope.spawn(|| recv_positioned(&mut on_b, 2 * EACH));
        for (name, node) in [("a", &a), ("b", &b)] {
            scope.spawn(move || {
                for i in 0..EACH {
                    node.melody.publish(TOPIC, format!("{name}{i}").as_str());
                }
            });
        }
        let joined = |h: std::thread::ScopedJoinHandle<'_, Vec<(Position, String)>>| {
            h.join().unwrap_or_else(|_| {
                let (a, b) = (a.melody.stats(), b.melody.stats());
                panic!(
                    "a reader failed: dropped on A {}, on B {}",
                    a.dropped, b.dropped
                )
            })
        };
        (joined(read_a), joined(read_b))
    });
    assert_eq!(
        got_a, got_b,
        "both nodes deliver one order, at the same positions"
    );
    let epoch = got_a[0].0.epoch();
    for (n, (position, _)) in got_a.iter().enumerate() {
        assert_eq!(
            *position,
            Position::new(epoch, n as u64 + 1),
            "strictly increasing"
        );
    }
    for name in ["a", "b"] {
        let own: Vec<&str> = got_a
            .iter()
            .map(|(_, d)| d.as_str())
            .filter(|d| d.starts_with(name))
            .collect();
        let sent: Vec<String> = (0..EACH).map(|i| format!("{name}{i}")).collect();
        assert_eq!(own, sent, "each publisher's messages in its order");
    }
    assert_eq!(
        on_a.try_recv(Duration::from_millis(200)),
        None,
        "no duplicate"
    );
}

#[test]
fn a_redis_that_lost_its_data_starts_a_new_epoch_and_resumes_are_told() {
    const TOPIC: &str = "device/3";
    const MAX_BACKOFF: Duration = Duration::from_millis(400);
    let Some(mut redis) = own_redis() else {
        return;
    };
    let cfg = config(&redis.url(), "history-restart")
        .min_backoff(Duration::from_millis(50))
        .max_backoff(MAX_BACKOFF);
    let (a, b) = start_pair(cfg);
    let mut on_a = a.connect(&format!("/h/{TOPIC}?positions=1"));
    let mut on_b = b.connect(&format!("/h/{TOPIC}?positions=1"));
    a.wait_subscribers(TOPIC, 1);
    b.wait_subscribers(TOPIC, 1);
    a.wait_ready(&[TOPIC], SETTLE);
    b.wait_ready(&[TOPIC], SETTLE);
    publish_numbered(&a, TOPIC, 1..=2);
    let before = recv_positioned(&mut on_b, 2);
    assert_eq!(recv_positioned(&mut on_a, 2), before);
    let last_before = before[1].0;

    // Redis goes away (and comes back empty: the test server keeps nothing on disk).
    redis.kill();
    wait_until("both nodes to see Redis gone", SETTLE, || {
        !a.redis.is_ready() && !b.redis.is_ready()
    });
    a.melody.publish(TOPIC, "while-down");
    assert_eq!(
        on_a.recv(),
        "while-down",
        "delivered on its own node, without a position"
    );
    wait_until("the local-only publish to be counted", SETTLE, || {
        a.redis.stats().history_local_only == 1
    });
    assert_eq!(on_b.try_recv(Duration::from_millis(300)), None);

    redis.restart();
    let bound = MAX_BACKOFF + Duration::from_secs(3);
    a.wait_ready(&[TOPIC], bound);
    b.wait_ready(&[TOPIC], bound);
    a.melody.publish(TOPIC, "after");
    let (fresh, data) = positioned(&on_b.recv());
    assert_eq!(data, "after");
    assert_ne!(fresh.epoch(), last_before.epoch(), "a new epoch");
    assert_eq!(fresh.sequence(), 1);

    // A client resuming from the old epoch gets what the new one holds, and the gap.
    let mut late = b.connect(&format!(
        "/h/{TOPIC}?positions=1&last_event_id={last_before}"
    ));
    assert_eq!(late.recv(), format!("{fresh}\nafter"));
    assert_eq!(late.recv(), format!("gap {TOPIC} other-epoch"));
    let header = format!("Last-Event-ID: {last_before}\r\n");
    let mut stream = StreamClient::connect_with(b.addr, &format!("/h/{TOPIC}"), &header);
    let gap = stream.next_event();
    assert!(
        gap.contains("melody-gap") && gap.contains("other-epoch"),
        "{gap:?}"
    );
    assert_eq!(
        id_and_data(&stream.next_event()),
        (Some(fresh.to_string()), "after".to_owned())
    );
}

#[test]
fn a_node_that_starts_listening_late_reads_the_stream_back() {
    const TOPIC: &str = "device/4";
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "history-read-back");
    let a = Node::start_with(cfg.clone(), with_history(), wire_resume);
    let mut on_a = a.connect(&format!("/h/{TOPIC}?positions=1"));
    a.wait_subscribers(TOPIC, 1);
    a.wait_ready(&[TOPIC], SETTLE);
    publish_numbered(&a, TOPIC, 1..=5);
    let seen = recv_positioned(&mut on_a, 5);
    let from = seen[1].0;

    // Node C starts after all that: its first subscriber makes it listen, and it reads
    // the stream back into its copy.
    let c = Node::start_with(cfg, with_history(), wire_resume);
    let _first = c.connect(&format!("/h/{TOPIC}"));
    c.wait_subscribers(TOPIC, 1);
    c.wait_ready(&[TOPIC], SETTLE);
    wait_until("node C's copy to hold the stream", SETTLE, || {
        c.melody.last_position(TOPIC) == Some(seen[4].0)
    });
    assert_eq!(c.melody.stats().history.messages, 5);

    let mut resumed = c.connect(&format!("/h/{TOPIC}?positions=1&last_event_id={from}"));
    assert_eq!(recv_positioned(&mut resumed, 3), seen[2..].to_vec());
    c.wait_subscribers(TOPIC, 2);
    publish_numbered(&a, TOPIC, 6..=6);
    assert_eq!(
        positioned(&resumed.recv()),
        (after(seen[4].0, 1), "e6".to_owned())
    );
    assert_eq!(c.redis.stats().malformed, 0);
}

/// Publishes `e1..=e5` on `a` to `topic` and returns the positions a subscriber on
/// `a` saw.
fn five_on(a: &Node, topic: &str) -> Vec<(Position, String)> {
    let mut on_a = a.connect(&format!("/h/{topic}?positions=1"));
    a.wait_subscribers(topic, 1);
    a.wait_ready(&[topic], SETTLE);
    publish_numbered(a, topic, 1..=5);
    recv_positioned(&mut on_a, 5)
}

#[test]
fn a_websocket_resumes_on_a_node_that_never_listened_to_the_topic() {
    const TOPIC: &str = "device/5";
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "history-fresh-ws");
    let a = Node::start_with(cfg.clone(), with_history(), wire_resume);
    let seen = five_on(&a, TOPIC);
    let from = seen[1].0;

    // Node C never had a subscriber to the topic: the resume is its first one, and
    // waits for C to listen and read the stream back before it is applied.
    let c = Node::start_with(cfg, with_history(), wire_resume);
    c.wait_ready(&[], SETTLE);
    assert!(!c.redis.is_listening(TOPIC));
    let mut resumed = c.connect(&format!("/h/{TOPIC}?positions=1&last_event_id={from}"));
    assert_eq!(
        recv_positioned(&mut resumed, 3),
        seen[2..].to_vec(),
        "exactly the missed messages, in order"
    );
    c.wait_subscribers(TOPIC, 1);
    publish_numbered(&a, TOPIC, 6..=6);
    assert_eq!(
        positioned(&resumed.recv()),
        (after(seen[4].0, 1), "e6".to_owned()),
        "then live, without a gap signal before it"
    );
    assert_eq!(
        resumed.try_recv(Duration::from_millis(200)),
        None,
        "no duplicate"
    );
    assert_eq!(c.melody.stats().history.gaps, 0, "complete recovery");
    assert_eq!(c.redis.stats().malformed, 0);
}

#[test]
fn an_event_stream_resumes_on_a_node_that_never_listened_to_the_topic() {
    const TOPIC: &str = "device/6";
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "history-fresh-sse");
    let a = Node::start_with(cfg.clone(), with_history(), wire_resume);
    let seen = five_on(&a, TOPIC);
    let from = seen[1].0;

    let c = Node::start_with(cfg, with_history(), wire_resume);
    c.wait_ready(&[], SETTLE);
    assert!(!c.redis.is_listening(TOPIC));
    let header = format!("Last-Event-ID: {from}\r\n");
    let mut stream = StreamClient::connect_with(c.addr, &format!("/h/{TOPIC}"), &header);
    let events: Vec<(Option<String>, String)> =
        (0..3).map(|_| id_and_data(&stream.next_event())).collect();
    let expected: Vec<(Option<String>, String)> = seen[2..]
        .iter()
        .map(|(p, d)| (Some(p.to_string()), d.clone()))
        .collect();
    assert_eq!(
        events, expected,
        "exactly the missed events, in order, no gap event"
    );
    c.wait_subscribers(TOPIC, 1);
    publish_numbered(&a, TOPIC, 6..=6);
    assert_eq!(
        id_and_data(&stream.next_event()),
        (Some(after(seen[4].0, 1).to_string()), "e6".to_owned()),
        "then live"
    );
    assert_eq!(c.melody.stats().history.gaps, 0, "complete recovery");
}
