//! The publisher task: takes what this node broadcasts and publishes, and sends it to
//! Redis in pipelines, in order, over one connection; reconnects with backoff.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::task::Poll;

use melody_driver::{Audience, BackplaneLink, Outgoing, Runtime};
use redis::{RedisError, Value};

use crate::backoff::Backoff;
use crate::connect::{self, Connection};
use crate::envelope::{self, NodeId};
use crate::history;
use crate::node::Node;
use crate::observe::{self, Role};
use crate::stats::add;
use crate::wait;

pub(crate) async fn run<R: Runtime>(node: std::sync::Arc<Node>, link: BackplaneLink<R>) {
    let (min, max) = node.config.backoff_bounds();
    let mut backoff = Backoff::new(min, max, node.id.0);
    let mut batch: Vec<Outgoing> = Vec::new();
    while !link.is_closed() {
        let connection = match connect::open(&node.client, &node.config, |_| {}).await {
            Ok(connection) => connection,
            Err(_) => {
                add(&node.counters.connect_failures, 1);
                let pause = backoff.next_pause();
                observe::connect_failed(Role::Publisher, node.id, pause);
                if !wait::pause_discarding(&link, pause, &node, &mut batch).await {
                    return;
                }
                continue;
            }
        };
        backoff.reset();
        add(&node.counters.connects, 1);
        node.counters.set_sharded(connection.sharded);
        node.counters.publisher_up.store(true, Ordering::Release);
        observe::connected(Role::Publisher, node.id, connection.sharded);
        let open = serve(&node, &link, connection, &mut batch).await;
        node.counters.publisher_up.store(false, Ordering::Release);
        if !open {
            return;
        }
        observe::disconnected(Role::Publisher, node.id);
    }
}

enum Event {
    Batch,
    Down,
    Closed,
}

/// Publishes until the connection fails (`true`: reconnect) or the instance closes
/// (`false`).
async fn serve<R: Runtime>(
    node: &Node,
    link: &BackplaneLink<R>,
    mut connection: Connection,
    batch: &mut Vec<Outgoing>,
) -> bool {
    let command = if connection.sharded {
        "SPUBLISH"
    } else {
        "PUBLISH"
    };
    // Loaded on every connection: a Redis that restarted forgot it. A server that
    // refuses it (scripting denied, say) leaves an empty hash: every history publish
    // is then refused, counted and delivered here only, and the rest goes on.
    let script_hash = match redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(history::APPEND_SCRIPT)
        .query_async::<String>(&mut connection.conn)
        .await
    {
        Ok(hash) => hash,
        Err(e) if needs_new_connection(&e) => return true,
        Err(_) => String::new(),
    };
    let mut channel = Vec::new();
    let mut envelope = Vec::new();
    loop {
        let event = poll_fn(|cx| {
            if connection.watch.poll_down(cx).is_ready() {
                return Poll::Ready(Event::Down);
            }
            link.poll_outgoing(cx, batch, node.config.max_batch)
                .map(|open| if open { Event::Batch } else { Event::Closed })
        })
        .await;
        match event {
            Event::Down => return true,
            Event::Closed => return false,
            Event::Batch => {}
        }
        let mut pipe = redis::pipe();
        // Per-command results: one refused append is told apart from the others.
        pipe.ignore_errors();
        // A fresh epoch for any topic whose log this batch creates.
        let fresh_epoch = format!("{:x}", NodeId::random().0);
        for outgoing in batch.iter() {
            node.channels.of(&outgoing.audience, &mut channel);
            envelope::encode(node.id, &outgoing.message, &mut envelope);
            match (&outgoing.audience, outgoing.kept) {
                (Audience::Topic(topic), true) => {
                    let (meta, stream) = history::keys(&node.config.channel_prefix, topic);
                    let (max_len, max_age) = history::trim_bounds(link.history_limits(topic));
                    pipe.cmd("EVALSHA")
                        .arg(&script_hash)
                        .arg(2)
                        .arg(meta)
                        .arg(stream)
                        .arg(&channel[..])
                        .arg(&fresh_epoch)
                        .arg(&envelope[..])
                        .arg(max_len)
                        .arg(max_age.to_string())
                        .arg(command);
                }
                _ => {
                    pipe.cmd(command).arg(&channel[..]).arg(&envelope[..]);
                }
            }
        }
        let result = pipe.query_async::<Vec<Value>>(&mut connection.conn).await;
        match result {
            Ok(replies) => {
                for (i, outgoing) in batch.drain(..).enumerate() {
                    let refused = matches!(replies.get(i), None | Some(Value::ServerError(_)));
                    if refused {
                        failed(node, link, &outgoing);
                    } else {
                        add(&node.counters.published, 1);
                        if outgoing.kept {
                            add(&node.counters.history_appended, 1);
                        }
                    }
                }
            }
            Err(e) => {
                for outgoing in batch.drain(..) {
                    failed(node, link, &outgoing);
                }
                if needs_new_connection(&e) {
                    return true;
                }
            }
        }
    }
}

/// Counts a message Redis did not take; a history topic's is delivered here, without
/// a position, since its node would otherwise never see it.
pub(crate) fn failed<R: Runtime>(node: &Node, link: &BackplaneLink<R>, outgoing: &Outgoing) {
    add(&node.counters.failed, 1);
    if let (Audience::Topic(topic), true) = (&outgoing.audience, outgoing.kept) {
        add(&node.counters.history_local_only, 1);
        let _ = link.deliver_unkept(topic, &outgoing.message);
    }
}

/// A dead or unanswering connection is replaced; a server's refusal (say, an ACL) is
/// only counted.
pub(crate) fn needs_new_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}
