//! `RedisBackplane`: the melody backplane over Redis pub/sub.

use std::sync::Arc;

use melody_driver::{Backplane, BackplaneLink, BoxFuture, Runtime};

use crate::channels::Channels;
use crate::config::RedisBackplaneConfig;
use crate::envelope::NodeId;
use crate::handle::RedisHandle;
use crate::node::Node;
use crate::stats::Counters;
use crate::{publisher, subscriber};

/// A backplane over one Redis server: attach it to a melody instance with
/// `Melody::attach_backplane`, and every node sharing the server (and the channel
/// prefix) acts as one.
///
/// ```no_run
/// use melody_redis::{RedisBackplane, RedisBackplaneConfig};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let melody = melody_tokio::Melody::new();
/// let backplane = RedisBackplane::new(RedisBackplaneConfig::new("redis://127.0.0.1:6379/"))?;
/// let handle = backplane.handle();
/// // Inside the tokio runtime: the backplane's tasks are spawned on it.
/// # let rt = tokio::runtime::Runtime::new()?;
/// # let _guard = rt.enter();
/// if melody.attach_backplane(backplane).is_err() {
///     eprintln!("a backplane was already attached");
/// }
/// println!("node {} ready: {}", handle.node_id(), handle.is_ready());
/// # Ok(())
/// # }
/// ```
pub struct RedisBackplane {
    node: Arc<Node>,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("node", &self.node.id)
            .field("url", &self.node.config.url)
            .finish()
    }
}

impl RedisBackplane {
    /// A backplane for `config`, with a fresh random node id. Fails only on a URL the
    /// `redis` crate does not accept; it connects once attached.
    pub fn new(config: RedisBackplaneConfig) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(config.url.as_str())?;
        // Pub/sub messages arrive as RESP3 pushes on an ordinary connection.
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))?;
        Ok(RedisBackplane {
            node: Arc::new(Node {
                id: NodeId::random(),
                client,
                channels: Channels::new(&config.channel_prefix),
                config,
                counters: Arc::new(Counters::default()),
            }),
        })
    }

    /// A handle on this backplane's counters and state, usable once it is attached.
    pub fn handle(&self) -> RedisHandle {
        RedisHandle {
            node: self.node.id,
            counters: self.node.counters.clone(),
        }
    }
}

impl<R: Runtime> Backplane<R> for RedisBackplane {
    fn queue_capacity(&self) -> usize {
        self.node.config.queue_capacity
    }

    /// History topics keep their history in Redis streams, unless
    /// [`RedisBackplaneConfig::shared_history`] turned it off.
    fn keeps_history(&self) -> bool {
        self.node.config.shared_history
    }

    /// Spawns the subscriber task and runs the publisher: one Redis connection each.
    fn run(self, link: BackplaneLink<R>) -> BoxFuture {
        let _ = self.node.counters.forward.set(link.counters());
        link.runtime()
            .spawn(Box::pin(subscriber::run(self.node.clone(), link.clone())));
        Box::pin(publisher::run(self.node, link))
    }
}
