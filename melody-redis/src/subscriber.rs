//! The subscriber task: listens to the broadcast channel and to the channel of every
//! topic this node's sessions subscribe to, and delivers what other nodes send to the
//! local sessions only; pings and prunes periodically; reconnects with backoff and
//! subscribes again.

use std::collections::HashSet;
use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use melody_core::Prepared;
use melody_driver::{BackplaneLink, Runtime};
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};

use crate::backoff::Backoff;
use crate::channels::Destination;
use crate::connect;
use crate::envelope;
use crate::node::Node;
use crate::publisher::needs_new_connection;
use crate::stats::add;
use crate::wait;

/// Subscribe commands per pipeline when many topics are subscribed at once.
const SUBSCRIBE_CHUNK: usize = 512;

pub(crate) async fn run<R: Runtime>(node: Arc<Node>, link: BackplaneLink<R>) {
    let (min, max) = node.config.backoff_bounds();
    let mut backoff = Backoff::new(min, max, node.id.0.rotate_left(32));
    while !link.is_closed() {
        let inbound = Inbound {
            node: node.clone(),
            link: link.clone(),
        };
        let opened = connect::open(&node.client, &node.config, move |info| inbound.handle(info));
        let mut connection = match opened.await {
            Ok(connection) => connection,
            Err(_) => {
                add(&node.counters.connect_failures, 1);
                if !wait::pause(&link, backoff.next_pause()).await {
                    return;
                }
                continue;
            }
        };
        add(&node.counters.connects, 1);
        node.counters.set_sharded(connection.sharded);
        let mut session = Listening {
            node: &node,
            conn: &mut connection.conn,
            sharded: connection.sharded,
            topics: HashSet::new(),
        };
        let started = session.start(&link).await.is_ok();
        let open = if started {
            backoff.reset();
            node.counters.subscriber_up.store(true, Ordering::Release);
            session.serve(&link, &connection.watch).await
        } else {
            true
        };
        node.counters.subscriber_up.store(false, Ordering::Release);
        node.counters.listening().clear();
        if !open {
            return;
        }
        // A connection lost after serving is tried again at once; one that could not
        // even subscribe pauses first, so as not to spin.
        if !started && !wait::pause(&link, backoff.next_pause()).await {
            return;
        }
    }
}

/// One subscribed connection and the topics Redis confirmed on it.
struct Listening<'a> {
    node: &'a Node,
    conn: &'a mut MultiplexedConnection,
    sharded: bool,
    topics: HashSet<Arc<str>>,
}

enum Event {
    Topics,
    Maintenance,
    Down,
    Closed,
}

impl Listening<'_> {
    /// Subscribes to the broadcast channel and every known topic.
    async fn start<R: Runtime>(&mut self, link: &BackplaneLink<R>) -> RedisResult<()> {
        let command = self.command(true);
        redis::cmd(command)
            .arg(self.node.channels.all())
            .exec_async(self.conn)
            .await?;
        self.subscribe(link.known_topics()).await
    }

    /// Waits for new topics, the maintenance tick, the connection's end or the
    /// instance's close. `true`: reconnect; `false`: the instance closed.
    async fn serve<R: Runtime>(&mut self, link: &BackplaneLink<R>, watch: &connect::Watch) -> bool {
        let rt = link.runtime().clone();
        let interval = self.node.config.maintenance_interval;
        let mut tick = rt.sleep_until(rt.now() + interval);
        let mut fresh: Vec<Arc<str>> = Vec::new();
        loop {
            let event = poll_fn(|cx| {
                if watch.poll_down(cx).is_ready() {
                    return Poll::Ready(Event::Down);
                }
                if tick.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Maintenance);
                }
                link.poll_new_topics(cx, &mut fresh).map(|open| {
                    if open {
                        Event::Topics
                    } else {
                        Event::Closed
                    }
                })
            })
            .await;
            let result = match event {
                Event::Down => return true,
                Event::Closed => return false,
                Event::Topics => self.subscribe(std::mem::take(&mut fresh)).await,
                Event::Maintenance => {
                    tick = rt.sleep_until(rt.now() + interval);
                    self.maintain(link).await
                }
            };
            if let Err(e) = result {
                if needs_new_connection(&e) {
                    return true;
                }
            }
        }
    }

    /// Subscribes to the channels of `topics` not yet subscribed, in pipelines.
    async fn subscribe(&mut self, topics: Vec<Arc<str>>) -> RedisResult<()> {
        let new: Vec<Arc<str>> = topics
            .into_iter()
            .filter(|t| !self.topics.contains(t))
            .collect();
        let command = self.command(true);
        let mut channel = Vec::new();
        for chunk in new.chunks(SUBSCRIBE_CHUNK) {
            let mut pipe = redis::pipe();
            for topic in chunk {
                self.node.channels.topic(topic, &mut channel);
                pipe.cmd(command).arg(&channel[..]).ignore();
            }
            pipe.exec_async(self.conn).await?;
            let mut listening = self.node.counters.listening();
            for topic in chunk {
                self.topics.insert(topic.clone());
                listening.insert(topic.clone());
            }
        }
        Ok(())
    }

    /// Pings (a hung server fails the ping after the response timeout) and leaves the
    /// channels of topics no local session subscribes to any more.
    async fn maintain<R: Runtime>(&mut self, link: &BackplaneLink<R>) -> RedisResult<()> {
        redis::cmd("PING").exec_async(self.conn).await?;
        let unused: Vec<Arc<str>> = self
            .topics
            .iter()
            .filter(|topic| link.forget_if_unused(topic))
            .cloned()
            .collect();
        let command = self.command(false);
        let mut channel = Vec::new();
        for chunk in unused.chunks(SUBSCRIBE_CHUNK) {
            let mut pipe = redis::pipe();
            for topic in chunk {
                self.node.channels.topic(topic, &mut channel);
                pipe.cmd(command).arg(&channel[..]).ignore();
            }
            // Forgotten first: a failure here leaves extra channels, which cost only
            // traffic, and the next connection does not subscribe to them.
            {
                let mut listening = self.node.counters.listening();
                for topic in chunk {
                    self.topics.remove(topic);
                    listening.remove(topic);
                }
            }
            pipe.exec_async(self.conn).await?;
        }
        Ok(())
    }

    fn command(&self, subscribe: bool) -> &'static str {
        match (self.sharded, subscribe) {
            (true, true) => "SSUBSCRIBE",
            (true, false) => "SUNSUBSCRIBE",
            (false, true) => "SUBSCRIBE",
            (false, false) => "UNSUBSCRIBE",
        }
    }
}

/// Turns pub/sub pushes into local deliveries. Runs on the `redis` crate's connection
/// task, so messages are delivered in the order Redis sent them.
struct Inbound<R: Runtime> {
    node: Arc<Node>,
    link: BackplaneLink<R>,
}

impl<R: Runtime> Inbound<R> {
    fn handle(&self, info: PushInfo) {
        if !matches!(info.kind, PushKind::Message | PushKind::SMessage) {
            return; // subscription confirmations and the like
        }
        let counters = &self.node.counters;
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(bytes))) =
            (info.data.first(), info.data.get(1))
        else {
            add(&counters.malformed, 1);
            return;
        };
        let Some(destination) = self.node.channels.destination(channel) else {
            add(&counters.malformed, 1);
            return;
        };
        let Ok(envelope) = envelope::decode(bytes) else {
            add(&counters.malformed, 1);
            return;
        };
        if envelope.node == self.node.id {
            add(&counters.echoes, 1);
            return;
        }
        let Some(message) = Prepared::new(envelope.kind, envelope.payload) else {
            add(&counters.malformed, 1);
            return;
        };
        let delivered = match destination {
            Destination::All => self.link.deliver_to_all(&message),
            Destination::Topic(topic) => self.link.deliver_to_topic(topic, &message),
        };
        if delivered.is_some() {
            add(&counters.received, 1);
        }
    }
}
