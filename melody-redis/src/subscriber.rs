//! The subscriber task: listens to the broadcast channel and to the channel of every
//! topic this node's sessions subscribe to, and delivers what other nodes send to the
//! local sessions only; pings and prunes periodically; reconnects with backoff and
//! subscribes again.

use std::collections::HashSet;
use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use melody_core::history::Position;
use melody_driver::{BackplaneLink, Delivered, Runtime};
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, RedisResult, Value};

use crate::backoff::Backoff;
use crate::channels::Destination;
use crate::connect;
use crate::envelope;
use crate::history;
use crate::node::Node;
use crate::observe::{self, Role};
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
                fail_pending_read_backs(&link);
                let pause = backoff.next_pause();
                observe::connect_failed(Role::Subscriber, node.id, pause);
                if !wait::pause(&link, pause).await {
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
            read: HashSet::new(),
        };
        let started = session.start(&link).await.is_ok();
        let open = if started {
            backoff.reset();
            node.counters.subscriber_up.store(true, Ordering::Release);
            observe::connected(Role::Subscriber, node.id, connection.sharded);
            let open = session.serve(&link, &connection.watch).await;
            if open {
                observe::disconnected(Role::Subscriber, node.id);
            }
            open
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

/// Redis cannot be reached: resumes waiting for a history topic's read-back go on
/// with what this node's copy holds instead of waiting for their deadline.
fn fail_pending_read_backs<R: Runtime>(link: &BackplaneLink<R>) {
    for topic in link.known_topics() {
        if link.history_limits(&topic).is_some() {
            link.history_read_back_failed(&topic);
        }
    }
}

/// One subscribed connection and the topics Redis confirmed on it.
struct Listening<'a> {
    node: &'a Node,
    conn: &'a mut MultiplexedConnection,
    sharded: bool,
    topics: HashSet<Arc<str>>,
    /// History topics whose streams were read back on this connection.
    read: HashSet<Arc<str>>,
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
        self.subscribe(link, link.known_topics()).await
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
                Event::Topics => self.subscribe(link, std::mem::take(&mut fresh)).await,
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

    /// Subscribes to the channels of `topics` not yet subscribed, in pipelines, then
    /// reads back the streams of the history topics among them not read yet on this
    /// connection (a topic is reported again when a resume waits for it).
    async fn subscribe<R: Runtime>(
        &mut self,
        link: &BackplaneLink<R>,
        topics: Vec<Arc<str>>,
    ) -> RedisResult<()> {
        let unread: Vec<Arc<str>> = topics
            .into_iter()
            .filter(|t| !self.read.contains(t))
            .collect();
        let new: Vec<Arc<str>> = unread
            .iter()
            .filter(|t| !self.topics.contains(*t))
            .cloned()
            .collect();
        let result = self.listen(&new).await;
        let result = match result {
            Ok(()) => self.read_back(link, &unread).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            // Resumes waiting for these read-backs go on with what the copy holds;
            // the topic's next report (or the next connection) reads back again.
            for topic in &unread {
                if !self.read.contains(topic) {
                    link.history_read_back_failed(topic);
                }
            }
        }
        result
    }

    /// Subscribes to the channels of `topics`, in pipelines.
    async fn listen(&mut self, topics: &[Arc<str>]) -> RedisResult<()> {
        let command = self.command(true);
        let mut channel = Vec::new();
        for chunk in topics.chunks(SUBSCRIBE_CHUNK) {
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

    /// Puts what the stream of each history topic in `topics` retains into this
    /// node's copy: read after the channel's subscription was confirmed, so what is
    /// appended later arrives on the channel; what this node missed before (it did
    /// not listen yet, or lost its connection) comes from the stream. Each topic read
    /// is reported (`history_read_back`): resumes waiting for it go on.
    async fn read_back<R: Runtime>(
        &mut self,
        link: &BackplaneLink<R>,
        topics: &[Arc<str>],
    ) -> RedisResult<()> {
        if !self.node.config.shared_history {
            return Ok(());
        }
        for topic in topics {
            let Some(limits) = link.history_limits(topic) else {
                continue;
            };
            let count = limits
                .max_messages
                .unwrap_or(history::READ_BACK_MAX)
                .min(history::READ_BACK_MAX);
            let (meta, stream) = history::keys(&self.node.config.channel_prefix, topic);
            // One transaction: the epoch and the entries belong together.
            let (epoch, newest_first): (Option<String>, Value) = redis::pipe()
                .atomic()
                .cmd("HGET")
                .arg(&meta)
                .arg("epoch")
                .cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(count)
                .query_async(self.conn)
                .await?;
            if let Some(epoch) = epoch {
                let (mut entries, unreadable) = history::read_entries(&epoch, &newest_first);
                add(&self.node.counters.malformed, unreadable);
                entries.reverse();
                let _ = link.backfill(topic, entries);
            }
            // Read (or nothing published yet): resumes here can replay what Redis holds.
            self.read.insert(topic.clone());
            link.history_read_back(topic);
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
                    self.read.remove(topic);
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
        if let Some(positioned) = history::split_positioned(bytes) {
            self.handle_positioned(destination, positioned);
            return;
        }
        let Ok(envelope) = envelope::decode(bytes) else {
            add(&counters.malformed, 1);
            return;
        };
        if envelope.node == self.node.id {
            add(&counters.echoes, 1);
            return;
        }
        let Some(message) = envelope.publication() else {
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

    /// A message of a history topic, at its position in the topic's stream: delivered
    /// on every node, this one included (its own publishes reach its sessions this
    /// way, so that every node delivers in the stream's order).
    fn handle_positioned(
        &self,
        destination: Destination<'_>,
        positioned: Result<(Position, &[u8]), ()>,
    ) {
        let counters = &self.node.counters;
        let message = positioned.ok().and_then(|(position, bytes)| {
            let envelope = envelope::decode(bytes).ok()?;
            Some((position, envelope.node, envelope.publication()?))
        });
        let (Destination::Topic(topic), Some((position, from, message))) = (destination, message)
        else {
            add(&counters.malformed, 1);
            return;
        };
        match self.link.deliver_at(topic, position, &message) {
            Some((Delivered::Duplicate, _)) => add(&counters.history_duplicates, 1),
            Some(_) if from != self.node.id => add(&counters.received, 1),
            Some(_) => add(&counters.echoes, 1),
            None => {}
        }
    }
}
