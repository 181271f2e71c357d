//! The backplane's settings, as a builder.

use std::time::Duration;

/// Which Redis pub/sub commands carry the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PubSubMode {
    /// Sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`) when the server knows it (Redis 7 and
    /// later), else classic pub/sub; probed on each connection.
    #[default]
    Auto,
    /// Always `SPUBLISH`/`SSUBSCRIBE`.
    Sharded,
    /// Always `PUBLISH`/`SUBSCRIBE`.
    Classic,
}

/// The settings of a [`RedisBackplane`](crate::RedisBackplane).
///
/// ```
/// use std::time::Duration;
/// use melody_redis::{PubSubMode, RedisBackplaneConfig};
///
/// let config = RedisBackplaneConfig::new("redis://127.0.0.1:6379/")
///     .channel_prefix("chat")
///     .max_backoff(Duration::from_secs(1))
///     .mode(PubSubMode::Auto);
/// assert_eq!(config.url(), "redis://127.0.0.1:6379/");
/// ```
#[derive(Debug, Clone)]
pub struct RedisBackplaneConfig {
    pub(crate) url: String,
    pub(crate) channel_prefix: String,
    pub(crate) mode: PubSubMode,
    pub(crate) queue_capacity: usize,
    pub(crate) max_batch: usize,
    pub(crate) min_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) maintenance_interval: Duration,
    pub(crate) shared_history: bool,
}

impl RedisBackplaneConfig {
    /// Defaults for the server at `url` (`redis://HOST:PORT/`; `rediss://` needs a TLS
    /// feature of the `redis` crate).
    pub fn new(url: impl Into<String>) -> Self {
        RedisBackplaneConfig {
            url: url.into(),
            channel_prefix: "melody".to_owned(),
            mode: PubSubMode::Auto,
            queue_capacity: melody_driver::DEFAULT_BACKPLANE_QUEUE,
            max_batch: 256,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            maintenance_interval: Duration::from_secs(5),
            shared_history: true,
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The start of every channel name (default `melody`): instances that should act as
    /// one share it; other applications on the same Redis use another.
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.channel_prefix = prefix.into();
        self
    }

    /// Sharded or classic pub/sub (default [`PubSubMode::Auto`]). Every node of a
    /// cluster must end up in the same mode: the two do not hear each other.
    pub fn mode(mut self, mode: PubSubMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many outgoing messages may wait for Redis (default 4096); past it, new ones
    /// are dropped and counted in [`Stats::dropped`](crate::Stats::dropped).
    pub fn queue_capacity(mut self, messages: usize) -> Self {
        self.queue_capacity = messages.max(1);
        self
    }

    /// How many messages go to Redis in one pipeline at most (default 256).
    pub fn max_batch(mut self, messages: usize) -> Self {
        self.max_batch = messages.max(1);
        self
    }

    /// The first pause after a failed connection attempt (default 100 ms); it doubles on
    /// each failure up to [`RedisBackplaneConfig::max_backoff`].
    pub fn min_backoff(mut self, pause: Duration) -> Self {
        self.min_backoff = pause;
        self
    }

    /// The longest pause between connection attempts (default 2 s): once Redis is
    /// back, both connections are up again within about this long.
    pub fn max_backoff(mut self, pause: Duration) -> Self {
        self.max_backoff = pause;
        self
    }

    /// How long one connection attempt may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long Redis may take to answer a command (default 1 s); past it the
    /// connection is replaced and the messages in that command count as failed.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How often the subscriber pings Redis and drops channels no local session
    /// listens to any more (default 5 s).
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// Whether the topics the melody config keeps history for keep it in Redis
    /// streams, with positions shared by every node (default `true`; see the crate
    /// docs, "History across nodes"). `false` leaves each node its own history and
    /// positions, as without a backplane.
    ///
    /// ```
    /// use melody_redis::RedisBackplaneConfig;
    ///
    /// let per_node = RedisBackplaneConfig::new("redis://127.0.0.1:6379/").shared_history(false);
    /// # let _ = per_node;
    /// ```
    pub fn shared_history(mut self, shared: bool) -> Self {
        self.shared_history = shared;
        self
    }

    /// The backoff bounds in order, whatever order they were given in.
    pub(crate) fn backoff_bounds(&self) -> (Duration, Duration) {
        let low = self.min_backoff.min(self.max_backoff);
        (low, self.max_backoff.max(low))
    }
}
