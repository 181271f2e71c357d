//! Redis going away: killed and restarted, or stalled. Local delivery never waits for
//! it; cross-node delivery resumes once it is back.

use std::time::Duration;

use crate::harness::{
    config, redis_url, until_delivered, wait_until, Node, NO_REDIS, REDIS_TESTS, SETTLE,
};
use crate::redis_server::RedisServer;
use crate::skip::not_run;

/// The configured bound between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(400);
/// What reconnecting may take beyond the backoff bound: a connection, a probe and the
/// subscriptions, on a loaded 2-core machine.
const RECONNECT_SLACK: Duration = Duration::from_secs(3);

/// A server of the test's own, to kill and pause; `None` (after [`not_run`] said why, or
/// failed the test) when there is no `redis-server` to run.
pub fn own_redis() -> Option<RedisServer> {
    let server = RedisServer::start_if_installed();
    if server.is_none() {
        if redis_url().is_some() {
            // The other Redis tests run against MELODY_REDIS_URL; say why these do not.
            not_run(
                "melody-redis's outage tests",
                "no redis-server on PATH, and they need one of their own to kill and pause \
                 (MELODY_REDIS_URL's is not theirs to stop)",
            );
        } else {
            not_run(REDIS_TESTS, NO_REDIS);
        }
    }
    server
}

#[test]
fn a_redis_restart_pauses_cross_node_delivery_only() {
    let Some(mut redis) = own_redis() else {
        return;
    };
    let cfg = config(&redis.url(), "restart")
        .min_backoff(Duration::from_millis(50))
        .max_backoff(MAX_BACKOFF);
    let (a, b) = (Node::start(cfg.clone()), Node::start(cfg));
    let mut reader = a.connect("/t/news");
    let mut local_writer = a.connect("/t/news");
    let mut remote_writer = b.connect("/t/news");
    a.wait_subscribers("news", 2);
    a.wait_ready(&["news"], SETTLE);
    b.wait_ready(&["news"], SETTLE);
    remote_writer.send("before");
    assert_eq!(reader.recv(), "before");

    redis.kill();
    wait_until("both nodes to see Redis gone", SETTLE, || {
        !a.redis.is_ready() && !b.redis.is_ready()
    });
    let failed_before = a.redis.stats().failed;
    local_writer.send("during");
    let during = reader.recv();
    assert_eq!(during, "during", "local delivery goes on without Redis");
    wait_until("the failure counter to move", SETTLE, || {
        a.redis.stats().failed > failed_before
    });

    redis.restart();
    // Reconnection is tried at most MAX_BACKOFF apart: both nodes are back within it,
    // plus the time a connection and its subscriptions take.
    let bound = MAX_BACKOFF + RECONNECT_SLACK;
    a.wait_ready(&["news"], bound);
    b.wait_ready(&["news"], bound);
    // Both nodes are connected and subscribed again: nothing is lost from here on.
    remote_writer.send("after");
    assert_eq!(reader.recv(), "after", "cross-node delivery resumed");
    let stats = a.redis.stats();
    let expected = "publisher and subscriber connected twice";
    assert!(stats.connects >= 4, "{expected}: {stats:?}");
}

#[test]
fn a_stalled_redis_does_not_block_local_broadcasts() {
    const MESSAGES: usize = 200;
    let Some(redis) = own_redis() else {
        return;
    };
    let cfg = config(&redis.url(), "stalled")
        .response_timeout(Duration::from_millis(300))
        .max_backoff(MAX_BACKOFF)
        .queue_capacity(16)
        .max_batch(8);
    let (a, b) = (Node::start(cfg.clone()), Node::start(cfg));
    let mut writer = a.connect("/all");
    let mut local_reader = a.connect("/t/x");
    let mut remote_reader = b.connect("/t/x");
    a.wait_sessions(2);
    b.wait_sessions(1);
    a.wait_ready(&[], SETTLE);
    b.wait_ready(&[], SETTLE);

    redis.pause();
    for i in 0..MESSAGES {
        writer.send(&format!("m{i}"));
    }
    // Redis answers nothing until resumed: every broadcast was delivered locally
    // without waiting for it.
    let got = local_reader.recv_n(MESSAGES);
    assert_eq!(got.last().map(String::as_str), Some("m199"));
    // The command in flight when Redis stalled times out and counts as failed.
    wait_until("the stalled publish to count as failed", SETTLE, || {
        a.redis.stats().failed > 0
    });
    redis.resume();

    // Node B may or may not have heard some of the stalled messages (at most once);
    // what node A sends once Redis is back reaches it.
    let bound = MAX_BACKOFF + RECONNECT_SLACK + Duration::from_secs(1);
    a.wait_ready(&[], bound);
    b.wait_ready(&[], bound);
    until_delivered(&mut writer, &mut remote_reader, bound);
}
