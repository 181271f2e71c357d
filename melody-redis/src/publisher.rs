//! The publisher task: takes what this node broadcasts and publishes, and sends it to
//! Redis in pipelines, in order, over one connection; reconnects with backoff.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::task::Poll;

use melody_driver::{BackplaneLink, Outgoing, Runtime};
use redis::RedisError;

use crate::backoff::Backoff;
use crate::connect::{self, Connection};
use crate::envelope;
use crate::node::Node;
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
                if !wait::pause_discarding(&link, backoff.next_pause(), &node.counters, &mut batch)
                    .await
                {
                    return;
                }
                continue;
            }
        };
        backoff.reset();
        add(&node.counters.connects, 1);
        node.counters.set_sharded(connection.sharded);
        node.counters.publisher_up.store(true, Ordering::Release);
        let open = serve(&node, &link, connection, &mut batch).await;
        node.counters.publisher_up.store(false, Ordering::Release);
        if !open {
            return;
        }
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
        for outgoing in batch.iter() {
            node.channels.of(&outgoing.audience, &mut channel);
            envelope::encode(node.id, &outgoing.message, &mut envelope);
            pipe.cmd(command)
                .arg(&channel[..])
                .arg(&envelope[..])
                .ignore();
        }
        let sent = batch.len();
        batch.clear();
        match pipe.exec_async(&mut connection.conn).await {
            Ok(()) => add(&node.counters.published, sent),
            Err(e) => {
                add(&node.counters.failed, sent);
                if needs_new_connection(&e) {
                    return true;
                }
            }
        }
    }
}

/// A dead or unanswering connection is replaced; a server's refusal (say, an ACL) is
/// only counted.
pub(crate) fn needs_new_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}
