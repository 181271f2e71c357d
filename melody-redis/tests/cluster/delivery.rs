//! Cross-node delivery: order per publisher, topic filtering, `publish_others`.

use melody_redis::PubSubMode;

use crate::harness::{config, wait_until, Node, SharedRedis, SETTLE};

const PER_PUBLISHER: usize = 100;

#[test]
fn what_one_node_publishes_reaches_the_other_in_order_per_publisher() {
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "order");
    let (a, b) = (Node::start(cfg.clone()), Node::start(cfg));
    let mut a_reader = a.connect("/t/news");
    let mut b_reader = b.connect("/t/news");
    let mut a_writer = a.connect("/t/news");
    let mut b_writer = b.connect("/t/news");
    a.wait_subscribers("news", 2);
    b.wait_subscribers("news", 2);
    a.wait_ready(&["news"], SETTLE);
    b.wait_ready(&["news"], SETTLE);

    for i in 0..PER_PUBLISHER {
        a_writer.send(&format!("a{i}"));
        b_writer.send(&format!("b{i}"));
    }
    for (name, reader) in [("a", &mut a_reader), ("b", &mut b_reader)] {
        let got = reader.recv_n(2 * PER_PUBLISHER);
        for publisher in ["a", "b"] {
            let sequence: Vec<&String> = got.iter().filter(|m| m.starts_with(publisher)).collect();
            let expected: Vec<String> = (0..PER_PUBLISHER)
                .map(|i| format!("{publisher}{i}"))
                .collect();
            assert_eq!(
                sequence,
                expected.iter().collect::<Vec<_>>(),
                "reader on node {name}: messages of publisher {publisher} out of order or missing"
            );
        }
    }
    // Redis acknowledges a publish (and echoes it back) after it reached the other
    // node, so the counters may lag what the readers saw.
    let all = PER_PUBLISHER as u64;
    wait_until("the counters to catch up", SETTLE, || {
        let (sa, sb) = (a.redis.stats(), b.redis.stats());
        sa.published == all && sb.published == all && sa.received == all && sb.received == all
            // Each node hears its own messages back on the topic channel and ignores them.
            && sa.echoes == all && sb.echoes == all
    });
    let sa = a.redis.stats();
    assert_eq!((sa.dropped, sa.failed, sa.malformed), (0, 0, 0), "{sa:?}");
    assert_ne!(a.redis.node_id(), b.redis.node_id());
    assert!(
        a.redis.sharded().is_some(),
        "the mode is known once connected"
    );
}

#[test]
fn a_broadcast_reaches_every_session_of_every_node() {
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "broadcast");
    let (a, b) = (Node::start(cfg.clone()), Node::start(cfg));
    let mut on_a = a.connect("/t/anything");
    let mut writer = b.connect("/all");
    a.wait_sessions(1);
    b.wait_sessions(1);
    a.wait_ready(&[], SETTLE);
    b.wait_ready(&[], SETTLE);

    writer.send("to everyone");
    assert_eq!(on_a.recv(), "to everyone");
    assert_eq!(
        writer.recv(),
        "to everyone",
        "the sender's node delivers locally too"
    );
}

#[test]
fn topics_filter_across_nodes() {
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "filter");
    let (a, b) = (Node::start(cfg.clone()), Node::start(cfg));
    let mut red_on_a = a.connect("/t/red");
    let mut blue_on_a = a.connect("/t/blue");
    let mut red_on_b = b.connect("/t/red");
    let mut blue_on_b = b.connect("/t/blue");
    a.wait_ready(&["red", "blue"], SETTLE);
    b.wait_ready(&["red", "blue"], SETTLE);

    red_on_b.send("for red");
    assert_eq!(red_on_a.recv(), "for red");
    // Published after "for red" reached node A: had blue received "for red", it would
    // come first.
    blue_on_b.send("for blue");
    assert_eq!(blue_on_a.recv(), "for blue");
    assert_eq!(red_on_b.recv(), "for red");
    assert_eq!(blue_on_b.recv(), "for blue");
    // And the other way round, from node A.
    blue_on_a.send("blue from a");
    assert_eq!(blue_on_b.recv(), "blue from a");
    red_on_a.send("red from a");
    assert_eq!(red_on_b.recv(), "red from a");
}

#[test]
fn publish_others_leaves_out_the_sender_only() {
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "others");
    let (a, b) = (Node::start(cfg.clone()), Node::start(cfg));
    let mut sender = b.connect("/o/room");
    let mut neighbour = b.connect("/o/room");
    let mut remote = a.connect("/o/room");
    b.wait_subscribers("room", 2);
    a.wait_subscribers("room", 1);
    a.wait_ready(&["room"], SETTLE);
    b.wait_ready(&["room"], SETTLE);

    sender.send("hello");
    assert_eq!(neighbour.recv(), "hello", "same node, other session");
    assert_eq!(remote.recv(), "hello", "other node");
    // The sender's first message is the neighbour's later one: it never got "hello".
    neighbour.send("marker");
    assert_eq!(sender.recv(), "marker");
    assert_eq!(remote.recv(), "marker");
}

#[test]
fn classic_pub_sub_carries_topics_too() {
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "classic").mode(PubSubMode::Classic);
    let (a, b) = (Node::start(cfg.clone()), Node::start(cfg));
    let mut reader = a.connect("/t/news");
    let mut writer = b.connect("/t/news");
    a.wait_ready(&["news"], SETTLE);
    b.wait_ready(&["news"], SETTLE);
    assert_eq!(a.redis.sharded(), Some(false));

    writer.send("over PUBLISH");
    assert_eq!(reader.recv(), "over PUBLISH");
}
