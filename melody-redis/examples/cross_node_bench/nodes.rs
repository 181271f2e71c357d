//! The benchmark's melody nodes: each on its own one-thread tokio runtime.

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use melody_core::history::{HistoryLimits, HistoryRules};
use melody_redis::{RedisBackplane, RedisBackplaneConfig, RedisHandle, Stats};
use melody_tokio::{Config, Melody};

/// The topic every receiver subscribes to.
pub const TOPIC: &str = "bench";

pub struct Node {
    _runtime: tokio::runtime::Runtime,
    pub melody: Melody,
    pub addr: SocketAddr,
    redis: Option<RedisHandle>,
}

impl Node {
    /// A node serving a loopback port: sessions on `/sub` subscribe to [`TOPIC`];
    /// each message a session sends is published to it. With `redis`, a backplane;
    /// with `history`, [`TOPIC`] keeps its last 1,000 messages (in Redis streams when
    /// there is a backplane).
    pub fn start(redis: Option<&str>, history: bool) -> Result<Node, Box<dyn Error>> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        // Room for a window of messages in every receiver's outbox.
        let mut config = Config::default().message_buffer_size(4096);
        if history {
            let limits = HistoryLimits::new().max_messages(1000);
            config = config.history(HistoryRules::new().topic(TOPIC, limits));
        }
        let melody = Melody::with_config(config)?;
        melody.on_connect(|session| {
            if session.request().uri().path() == "/sub" {
                session.subscribe(TOPIC);
            }
        });
        let m = melody.clone();
        melody.on_message(move |_session, text| {
            m.publish(TOPIC, text);
        });
        let handle = match redis {
            Some(url) => {
                let backplane = RedisBackplane::new(RedisBackplaneConfig::new(url))?;
                let handle = backplane.handle();
                let _guard = runtime.enter();
                if melody.attach_backplane(backplane).is_err() {
                    return Err("backplane already attached".into());
                }
                Some(handle)
            }
            None => None,
        };
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let m = melody.clone();
        runtime.spawn(async move { melody_tokio::serve(&m, listener).await });
        Ok(Node {
            _runtime: runtime,
            melody,
            addr,
            redis: handle,
        })
    }

    /// Waits until the backplane is connected and listening to [`TOPIC`] (if this node
    /// has subscribers).
    pub fn wait_listening(&self, within: Duration) -> Result<(), Box<dyn Error>> {
        let Some(redis) = &self.redis else {
            return Ok(());
        };
        let deadline = Instant::now() + within;
        let subscribed = self.melody.subscriber_count(TOPIC) > 0;
        while !(redis.is_ready() && (!subscribed || redis.is_listening(TOPIC))) {
            if Instant::now() > deadline {
                return Err("Redis not reachable: start redis-server, pass --redis URL".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    pub fn redis_stats(&self) -> Option<Stats> {
        self.redis.as_ref().map(RedisHandle::stats)
    }
}
