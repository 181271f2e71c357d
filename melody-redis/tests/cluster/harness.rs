//! Two-node test harness: melody-tokio nodes with a Redis backplane each, blocking
//! tungstenite clients, and bounded waits.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use melody_driver::Runtime;
use melody_redis::{RedisBackplane, RedisBackplaneConfig, RedisHandle};
use melody_tokio::{Config, Melody};
use tungstenite::{Message, WebSocket};

use crate::redis_server::RedisServer;
use crate::skip::not_run;

/// Every blocking read and write gives up after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a condition may take to hold when nothing slow is expected.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Which tests a missing Redis leaves out, in the line that says so.
pub const REDIS_TESTS: &str = "melody-redis's Redis tests";
/// Why, when neither way to get a Redis is there.
pub const NO_REDIS: &str = "no redis-server on PATH and MELODY_REDIS_URL unset";

/// `MELODY_REDIS_URL`, when set to something.
pub fn redis_url() -> Option<String> {
    std::env::var("MELODY_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The Redis the test talks to: `MELODY_REDIS_URL` when set (CI starts one), else a
/// server of the test's own.
pub struct SharedRedis {
    pub url: String,
    _own: Option<RedisServer>,
}

impl SharedRedis {
    /// The Redis to use, or `None` (after [`not_run`] said why, or failed the test)
    /// when there is none: the test then returns without running.
    pub fn get() -> Option<SharedRedis> {
        if let Some(url) = redis_url() {
            return Some(SharedRedis { url, _own: None });
        }
        let Some(own) = RedisServer::start_if_installed() else {
            not_run(REDIS_TESTS, NO_REDIS);
            return None;
        };
        Some(SharedRedis {
            url: own.url(),
            _own: Some(own),
        })
    }
}

/// A channel prefix no other test uses, so that tests can share one Redis.
pub fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "melody-test:{test}:{}:{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A melody node: its own tokio runtime, an instance serving a loopback port, and a
/// Redis backplane. Its handlers, by socket path:
///
/// - `/t/NAME`: subscribed to NAME; each message is published to NAME;
/// - `/o/NAME`: subscribed to NAME; each message goes to NAME with `publish_others`;
/// - `/all`: each message is broadcast.
pub struct Node {
    /// Kept alive for the node's tasks.
    _runtime: tokio::runtime::Runtime,
    pub melody: Melody,
    pub addr: SocketAddr,
    pub redis: RedisHandle,
}

impl Node {
    pub fn start(config: RedisBackplaneConfig) -> Node {
        Node::start_with(config, Config::default(), |_| {})
    }

    /// [`Node::start`] with `melody_config`, and `wire` adding handlers to the
    /// standard ones.
    pub fn start_with(
        config: RedisBackplaneConfig,
        melody_config: Config,
        wire: impl FnOnce(&Melody),
    ) -> Node {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let melody = Melody::with_config(melody_config).expect("valid config");
        wire_handlers(&melody);
        wire(&melody);
        let backplane = RedisBackplane::new(config).expect("a valid Redis URL");
        let redis = backplane.handle();
        let listener = rt.block_on(async {
            // Attach inside the runtime: the backplane's tasks are spawned on it.
            assert!(melody.attach_backplane(backplane).is_ok());
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a loopback port")
        });
        let addr = listener.local_addr().expect("local address");
        let m = melody.clone();
        rt.spawn(async move { melody_tokio::serve(&m, listener).await });
        Node {
            _runtime: rt,
            melody,
            addr,
            redis,
        }
    }

    pub fn connect(&self, path: &str) -> Client {
        Client::connect(self.addr, path)
    }

    /// Waits until both Redis connections are up and Redis confirmed every topic.
    pub fn wait_ready(&self, topics: &[&str], within: Duration) {
        wait_until(
            &format!("node {} ready", self.redis.node_id()),
            within,
            || self.redis.is_ready() && topics.iter().all(|t| self.redis.is_listening(t)),
        );
    }
}

impl Node {
    /// Waits until `n` local sessions subscribe to `topic` (clients subscribe in
    /// `on_connect`, which may run after their handshake returned).
    pub fn wait_subscribers(&self, topic: &str, n: usize) {
        wait_until(&format!("{n} subscribers of {topic}"), SETTLE, || {
            self.melody.subscriber_count(topic) == n
        });
    }

    /// Waits until `n` sessions are connected.
    pub fn wait_sessions(&self, n: usize) {
        wait_until(&format!("{n} sessions"), SETTLE, || self.melody.len() == n);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.melody.close();
    }
}

/// The handlers [`Node`] describes, on any runtime.
pub fn wire_handlers<R: Runtime>(melody: &melody_driver::Melody<R>) {
    melody.on_connect(|session| {
        let path = session.request().uri().path().to_owned();
        if let Some(topic) = path
            .strip_prefix("/t/")
            .or_else(|| path.strip_prefix("/o/"))
        {
            session.subscribe(topic);
        }
    });
    let m = melody.clone();
    melody.on_message(move |session, text| {
        let path = session.request().uri().path().to_owned();
        if let Some(topic) = path.strip_prefix("/t/") {
            let _ = m.publish(topic, text);
        } else if let Some(topic) = path.strip_prefix("/o/") {
            let _ = m.publish_others(topic, text, session);
        } else if path == "/all" {
            let _ = m.broadcast(text);
        }
    });
}

/// A blocking WebSocket client.
pub struct Client {
    ws: WebSocket<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr, path: &str) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let (ws, _) = tungstenite::client::client(format!("ws://{addr}{path}"), stream)
            .expect("WebSocket handshake");
        Client { ws }
    }

    pub fn send(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .expect("send a message to the node");
    }

    /// The next text message (within [`IO_TIMEOUT`]).
    pub fn recv(&mut self) -> String {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => return text.to_string(),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(other) => panic!("expected a text message, got {other:?}"),
                Err(e) => panic!("no message within {IO_TIMEOUT:?}: {e}"),
            }
        }
    }

    /// The next `n` text messages.
    pub fn recv_n(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.recv()).collect()
    }

    /// The next text message if one comes within `wait`.
    pub fn try_recv(&mut self, wait: Duration) -> Option<String> {
        self.ws
            .get_ref()
            .set_read_timeout(Some(wait))
            .expect("timeout");
        let got = loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => break Some(text.to_string()),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(other) => panic!("expected a text message, got {other:?}"),
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break None
                }
                Err(e) => panic!("connection failed: {e}"),
            }
        };
        self.ws
            .get_ref()
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("timeout");
        got
    }
}

/// Sends numbered probes through `writer` until `reader` receives one (skipping other
/// messages), or panics after `within`. Delivery is at most once: after an outage, a
/// probe may fall in the gap before the last connection is back, so keep probing.
pub fn until_delivered(writer: &mut Client, reader: &mut Client, within: Duration) {
    let deadline = Instant::now() + within;
    for probe in 0.. {
        assert!(
            Instant::now() < deadline,
            "no probe delivered within {within:?}"
        );
        writer.send(&format!("probe {probe}"));
        let wait_for_this_probe = Instant::now() + Duration::from_millis(200);
        while Instant::now() < wait_for_this_probe {
            match reader.try_recv(Duration::from_millis(50)) {
                Some(text) if text.starts_with("probe ") => return,
                _ => {}
            }
        }
    }
}

/// Polls `condition` until it holds, or panics after `within`.
pub fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A backplane config for `url` whose prefix is unique to `test`.
pub fn config(url: &str, test: &str) -> RedisBackplaneConfig {
    RedisBackplaneConfig::new(url).channel_prefix(unique_prefix(test))
}
