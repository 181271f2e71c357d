//! Session configuration: limits, periods, policies, and their validation.

use std::time::Duration;

use crate::http_page::HttpPage;

/// What to do when a session's outbound data lane is full.
///
/// The bound is [`Config::message_buffer_size`] messages (queued plus in flight) and,
/// optionally, [`Config::message_buffer_bytes`] bytes. Whatever the policy, every
/// message that does not reach the peer is counted and reported: in the
/// [`Delivery`](crate::Delivery) returned by the call and in an
/// [`Event::Dropped`](crate::Event::Dropped) for the session's owner.
///
/// ```
/// # use std::time::Instant;
/// # use melody_core::*;
/// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
/// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// let config = Config::default().message_buffer_size(1).drop_policy(DropPolicy::DropOldest);
/// let t0 = Instant::now();
/// let mut hub: Hub = Hub::new(config, t0)?;
/// let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
/// hub.handle_input(id, t0, UPGRADE)?;
///
/// assert_eq!(hub.send(id, t0, &Prepared::text("old")).queued, 1);
/// let newer = hub.send(id, t0, &Prepared::text("new"));
/// assert_eq!((newer.queued, newer.dropped), (1, 1), "\"old\" was evicted");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DropPolicy {
    /// Refuse the new message and keep what is queued (olahol/melody's behaviour).
    #[default]
    DropNewest,
    /// Queue the new message and evict the oldest queued one. Never evicts bytes
    /// already handed to the transport, nor the close frame.
    DropOldest,
    /// Treat the session as a slow consumer: discard its queued data and close it
    /// with 1008 (policy violation).
    Disconnect,
}

/// Which `Origin` headers a handshake may carry.
///
/// ```
/// # use std::time::Instant;
/// # use melody_core::*;
/// let allowed = OriginPolicy::AllowList(vec!["https://*.example.com".into()]);
/// let mut hub: Hub = Hub::new(Config::default().origin_policy(allowed), Instant::now())?;
/// let from = |origin: &str| {
///     http::Request::get("/chat")
///         .header("host", "ws.example.com")
///         .header("origin", origin)
///         .header("connection", "Upgrade")
///         .header("upgrade", "websocket")
///         .header("sec-websocket-version", "13")
///         .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
///         .body(())
/// };
/// assert!(hub.check_upgrade(&from("https://app.example.com")?).is_ok());
/// let refused = hub.check_upgrade(&from("https://evil.example")?).unwrap_err();
/// assert_eq!(refused.status, http::StatusCode::FORBIDDEN);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OriginPolicy {
    /// A request whose `Origin` host differs from its `Host` header is refused with 403.
    /// A request without `Origin` (a non-browser client) is accepted.
    #[default]
    SameOrigin,
    /// The request's own host, these origins, and requests without `Origin`. An entry
    /// is an exact origin (`https://example.com`, compared case-insensitively) or a
    /// pattern: `*` for the leading host labels (`https://*.example.com` takes
    /// `https://app.example.com`, not `https://example.com`) or for the port
    /// (`http://localhost:*`). [`Config::validate`] refuses an entry that could never
    /// match.
    AllowList(Vec<String>),
    /// Every origin. Only for endpoints that authenticate by other means.
    Any,
}

/// Configuration shared by every session of a [`Hub`](crate::Hub).
///
/// Built with [`Config::default`] and the builder methods, checked by [`Config::validate`]
/// (which [`Hub::new`](crate::Hub::new) calls).
///
/// ```
/// use std::time::Duration;
/// use melody_core::{Config, DropPolicy};
///
/// let config = Config::default()
///     .max_message_size(1 << 20)
///     .message_buffer_size(1024)
///     .drop_policy(DropPolicy::DropOldest)
///     .ping_period(Duration::from_secs(20))
///     .pong_wait(Duration::from_secs(30));
/// assert!(config.validate().is_ok());
/// ```
///
/// Every builder method, each setting its field of the same name:
///
/// ```
/// use std::time::Duration;
/// use melody_core::{Compression, Config, DropPolicy, HttpPage, OriginPolicy};
///
/// let config = Config::default()
///     // Liveness and deadlines.
///     .ping_period(Duration::from_secs(20))
///     .pong_wait(Duration::from_secs(30))
///     .write_wait(Duration::from_secs(5))
///     .handshake_timeout(Duration::from_secs(5))
///     .close_timeout(Duration::from_secs(2))
///     .message_completion_timeout(Duration::from_secs(20))
///     .close_drain_timeout(Duration::from_secs(1))
///     .close_drain_bytes(1 << 20)
///     .timer_granularity(Duration::from_millis(50))
///     // Sizes and bounds.
///     .max_message_size(1 << 20)
///     .max_handshake_size(16 * 1024)
///     .read_buffer_size(512)
///     .message_buffer_size(1024)
///     .message_buffer_bytes(Some(4 << 20))
///     .drop_policy(DropPolicy::Disconnect)
///     .memory_budget(Some(256 << 20))
///     .max_sessions(Some(50_000))
///     // Who may connect, and what they get.
///     .origin_policy(OriginPolicy::AllowList(vec!["https://*.example.com".into()]))
///     .subprotocols(vec!["chat.v2".into(), "chat.v1".into()])
///     .sent_events(false)
///     .http_page(Some(HttpPage::at("/", "<!doctype html><p>hello")))
///     .event_streams(true)
///     .event_stream_retry(Some(Duration::from_secs(10)))
///     // permessage-deflate.
///     .compression(Compression::Shared)
///     .compression_threshold(512);
/// assert!(config.validate().is_ok());
/// assert_eq!(config.max_sessions, Some(50_000));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// How long a peer may take to accept our bytes before the session is cut (10 s).
    /// Measured from the moment bytes are pending with no write progress.
    pub write_wait: Duration,
    /// How long after the last pong (or the handshake) the peer is considered gone (60 s).
    pub pong_wait: Duration,
    /// How often a ping is sent (54 s). Must be shorter than `pong_wait` by at least
    /// `timer_granularity`.
    pub ping_period: Duration,
    /// Largest incoming message, after reassembly of fragments (64 KiB).
    ///
    /// olahol/melody defaults to 512 bytes, its most reported surprise (its issue 69);
    /// 64 KiB fits chat and dashboard payloads while bounding memory per peer.
    pub max_message_size: usize,
    /// Bound on the data lane of each session, in messages (1,024), queued plus in flight.
    ///
    /// [`Config::message_buffer_bytes`] bounds the memory; this bounds the number of
    /// entries (each costs a few dozen bytes of queue beside its payload, and the
    /// queues are freed when a session goes idle). olahol/melody's 256 dropped 6–9% of
    /// a 4,000-message burst to 100 subscribers on the smol and async-std executors,
    /// whose scheduling can let a publisher's reads run ahead of its subscribers'
    /// writes; 1,024 took the same burst without a loss (BENCHMARKS.md, "Burst").
    pub message_buffer_size: usize,
    /// Bound on the data lane of each session in wire bytes, queued plus in flight
    /// (1 MiB; `None` lifts it).
    ///
    /// Chosen so that normal use never meets it while a slow reader cannot pin much:
    /// it holds 16 messages at the default `max_message_size` (an echo of 64 KiB
    /// messages), or all 1,024 messages of the count bound at 1 KiB each, more than chat
    /// and dashboard traffic queues; a peer reading 1 MB/s drains it in a second, well
    /// inside `write_wait`. Without it, 256 messages of 64 KiB pinned 16 MiB per slow
    /// client (200 such clients took a server to 3 GB).
    pub message_buffer_bytes: Option<usize>,
    /// What happens when the data lane is full ([`DropPolicy::DropNewest`]).
    pub drop_policy: DropPolicy,
    /// The bytes all sessions of a hub together may hold in their outboxes (wire
    /// bytes, queued plus in flight) and in partial inbound messages (1 GiB; `None`
    /// lifts it). The hubs (shards) of one driver instance share it.
    ///
    /// Past it, a message that would not fit is dropped, whatever the drop policy,
    /// and counted like one a full outbox refused ([`Delivery::dropped`](crate::Delivery::dropped),
    /// [`Event::Dropped`](crate::Event::Dropped), [`HubStats::dropped`](crate::HubStats::dropped))
    /// and in [`HubStats::over_budget`](crate::HubStats::over_budget). A session whose
    /// partial inbound message would take the hub past it is closed with 1013 (try
    /// again later; [`SessionError::OverBudget`](crate::SessionError::OverBudget),
    /// counted in [`HubStats::inbound_over_budget`](crate::HubStats::inbound_over_budget)):
    /// the partial bytes are discarded, never held. New sessions are
    /// still admitted (an idle session holds nothing here): slow readers that filled
    /// the budget do not lock everyone else out. Each recipient's queued bytes count as
    /// its own, although a broadcast's frame is one shared buffer: the bound is for
    /// the worst case, distinct messages per session (an echo), which is what a
    /// hostile client can make. 1 GiB is 1024 full default outboxes.
    ///
    /// A hub takes budget from the shared count a little ahead of need (up to
    /// 64 KiB, and at most 1/1024 of the budget, kept twice at most), so a message
    /// queued and written costs no atomic operation: with several shards, one may
    /// refuse up to that much before the budget is reached, never after.
    pub memory_budget: Option<usize>,
    /// Largest handshake request, request line and headers (8 KiB).
    pub max_handshake_size: usize,
    /// How long a connection may take to complete its handshake (10 s).
    pub handshake_timeout: Duration,
    /// How long we wait for the peer's close frame after sending ours (5 s).
    pub close_timeout: Duration,
    /// How long a message may take from its first frame's first byte to its last
    /// frame's last byte (60 s); past it the session is closed with 1008.
    ///
    /// Without it, a peer holds a partial message (up to `max_message_size`) for as long
    /// as it likes, keeping the session alive with pongs between fragments, which do not
    /// extend this deadline. 60 s, like `pong_wait`, lets a message at the default 64 KiB
    /// limit arrive at under 9 kbit/s, slower than any link a real client sends on; with
    /// a large `max_message_size` and slow clients, raise it to the time the largest
    /// message needs on the slowest link you serve.
    pub message_completion_timeout: Duration,
    /// For drivers: once a WebSocket session is over and its write side shut down
    /// (our close frame written), how long the peer's input is still read and
    /// discarded before the connection is dropped (2 s; zero drops it at once).
    ///
    /// Dropping a socket with unread input makes the kernel answer with a reset, and a
    /// peer still sending (the rest of an oversized message) may then lose the close
    /// frame (1009, 1002…) it was about to read. The melody driver (every adapter)
    /// drains until the peer's end of stream, this deadline or `close_drain_bytes`,
    /// whichever comes first.
    pub close_drain_timeout: Duration,
    /// For drivers: the most input bytes read and discarded after a session is over
    /// (16 MiB; zero drops the connection at once). Draining holds no memory (the
    /// bytes go through the reader's shared buffer), so the bound is generous: a peer
    /// may finish writing a message at a 16 MiB `max_message_size` and still read why
    /// it was refused. `close_drain_timeout` bounds the time.
    pub close_drain_bytes: usize,
    /// Capacity of tungstenite's per-session read buffer (128 bytes), which is also the
    /// most it copies in per step. Small keeps idle sessions cheap (128 instead of 512
    /// saved ~400 B per idle connection, BENCHMARKS.md); the buffer grows to hold a
    /// larger message, which then arrives in steps of this size.
    pub read_buffer_size: usize,
    /// Resolution of the deadlines reported by `poll_timeout` (100 ms).
    pub timer_granularity: Duration,
    /// Accepted `Origin` headers ([`OriginPolicy::SameOrigin`]).
    pub origin_policy: OriginPolicy,
    /// Subprotocols this server speaks, in order of preference (none).
    pub subprotocols: Vec<String>,
    /// Most sessions open at once; further handshakes get 503 (unlimited).
    pub max_sessions: Option<usize>,
    /// Emit [`Event::Sent`](crate::Event::Sent) when a data message has been fully
    /// written (off, as it costs an event per message). For embedders of the core: the
    /// melody driver (every adapter) sets it itself, on exactly while an `on_sent` or
    /// `on_sent_binary` handler is registered, and ignores the configured value.
    pub sent_events: bool,
    /// A page answered (200, `text/html`) to plain `GET`s that ask for no upgrade at
    /// its paths, so one port can serve a demo page and the socket without an HTTP
    /// framework (none). A plain `GET` anywhere else gets `426 Upgrade Required` with
    /// `Sec-WebSocket-Version: 13`: every other path is a socket's. For real sites, use
    /// an HTTP integration instead.
    pub http_page: Option<HttpPage>,
    /// Answer a `GET` that accepts `text/event-stream` (and asks for no upgrade) as an
    /// event-stream session of the same hub (on). Off, such a request is refused with
    /// 426 like any other plain `GET` outside the page's paths.
    pub event_streams: bool,
    /// The `retry:` an event stream starts with: how long a browser waits before it
    /// reconnects a dropped stream (3 s; `None` sends none, leaving the browser's own).
    pub event_stream_retry: Option<Duration>,
    /// permessage-deflate (RFC 7692), negotiated per session from the client's offer
    /// ([`Compression::Off`](crate::Compression::Off)).
    pub compression: crate::Compression,
    /// Messages shorter than this many bytes are sent uncompressed even on a session
    /// that negotiated compression (256): below it, deflate's framing costs more than it
    /// saves.
    pub compression_threshold: usize,
    /// Which topics keep a history that reconnecting clients resume from (none). See
    /// [`history`](crate::history).
    pub history: crate::history::HistoryRules,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            write_wait: Duration::from_secs(10),
            pong_wait: Duration::from_secs(60),
            ping_period: Duration::from_secs(54),
            max_message_size: 64 * 1024,
            message_buffer_size: 1024,
            message_buffer_bytes: Some(1 << 20),
            drop_policy: DropPolicy::DropNewest,
            memory_budget: Some(1 << 30),
            max_handshake_size: 8 * 1024,
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            message_completion_timeout: Duration::from_secs(60),
            close_drain_timeout: Duration::from_secs(2),
            close_drain_bytes: 16 << 20,
            read_buffer_size: 128,
            timer_granularity: Duration::from_millis(100),
            origin_policy: OriginPolicy::SameOrigin,
            subprotocols: Vec::new(),
            max_sessions: None,
            sent_events: false,
            http_page: None,
            event_streams: true,
            event_stream_retry: Some(Duration::from_secs(3)),
            compression: crate::Compression::Off,
            compression_threshold: 256,
            history: crate::history::HistoryRules::new(),
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }
    };
}

impl Config {
    setter!(/// Sets [`Config::write_wait`].
        write_wait: Duration);
    setter!(/// Sets [`Config::pong_wait`].
        pong_wait: Duration);
    setter!(/// Sets [`Config::ping_period`].
        ping_period: Duration);
    setter!(/// Sets [`Config::max_message_size`].
        max_message_size: usize);
    setter!(/// Sets [`Config::message_buffer_size`].
        message_buffer_size: usize);
    setter!(/// Sets [`Config::message_buffer_bytes`].
        message_buffer_bytes: Option<usize>);
    setter!(/// Sets [`Config::drop_policy`].
        drop_policy: DropPolicy);
    setter!(/// Sets [`Config::memory_budget`].
        memory_budget: Option<usize>);
    setter!(/// Sets [`Config::max_handshake_size`].
        max_handshake_size: usize);
    setter!(/// Sets [`Config::handshake_timeout`].
        handshake_timeout: Duration);
    setter!(/// Sets [`Config::close_timeout`].
        close_timeout: Duration);
    setter!(/// Sets [`Config::message_completion_timeout`].
        message_completion_timeout: Duration);
    setter!(/// Sets [`Config::close_drain_timeout`].
        close_drain_timeout: Duration);
    setter!(/// Sets [`Config::close_drain_bytes`].
        close_drain_bytes: usize);
    setter!(/// Sets [`Config::read_buffer_size`].
        read_buffer_size: usize);
    setter!(/// Sets [`Config::timer_granularity`].
        timer_granularity: Duration);
    setter!(/// Sets [`Config::origin_policy`].
        origin_policy: OriginPolicy);
    setter!(/// Sets [`Config::subprotocols`].
        subprotocols: Vec<String>);
    setter!(/// Sets [`Config::max_sessions`].
        max_sessions: Option<usize>);
    setter!(/// Sets [`Config::sent_events`].
        sent_events: bool);
    setter!(/// Sets [`Config::http_page`].
        http_page: Option<HttpPage>);
    setter!(/// Sets [`Config::event_streams`].
        event_streams: bool);
    setter!(/// Sets [`Config::event_stream_retry`].
        event_stream_retry: Option<Duration>);
    setter!(/// Sets [`Config::compression`].
        compression: crate::Compression);
    setter!(/// Sets [`Config::compression_threshold`].
        compression_threshold: usize);
    setter!(/// Sets [`Config::history`].
        history: crate::history::HistoryRules);

    /// Checks the values against each other; [`Hub::new`](crate::Hub::new) refuses an
    /// invalid config with the same error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use melody_core::{Config, ConfigError};
    ///
    /// let bad = Config::default().ping_period(Duration::from_secs(90));
    /// assert!(matches!(bad.validate(), Err(ConfigError::PingNotBeforePongWait { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("write_wait", self.write_wait),
            ("pong_wait", self.pong_wait),
            ("ping_period", self.ping_period),
            ("handshake_timeout", self.handshake_timeout),
            ("close_timeout", self.close_timeout),
            (
                "message_completion_timeout",
                self.message_completion_timeout,
            ),
            ("timer_granularity", self.timer_granularity),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(ConfigError::ZeroDuration { field });
        }
        let sizes = [
            ("max_message_size", self.max_message_size),
            ("message_buffer_size", self.message_buffer_size),
            ("max_handshake_size", self.max_handshake_size),
            ("read_buffer_size", self.read_buffer_size),
        ];
        if let Some((field, _)) = sizes.iter().find(|(_, n)| *n == 0) {
            return Err(ConfigError::ZeroSize { field });
        }
        let bounds = [
            ("message_buffer_bytes", self.message_buffer_bytes),
            ("memory_budget", self.memory_budget),
        ];
        if let Some((field, _)) = bounds.iter().find(|(_, n)| *n == Some(0)) {
            return Err(ConfigError::ZeroSize { field });
        }
        if self.max_sessions == Some(0) {
            return Err(ConfigError::ZeroSize {
                field: "max_sessions",
            });
        }
        // Deadlines are rounded up to the granularity: closer than one tick, the ping
        // and the pong deadline can fall in the same tick, and every peer times out.
        if self.ping_period.saturating_add(self.timer_granularity) > self.pong_wait {
            return Err(ConfigError::PingNotBeforePongWait {
                ping_period: self.ping_period,
                pong_wait: self.pong_wait,
            });
        }
        if let Some(bad) = self.subprotocols.iter().find(|p| !is_token(p)) {
            return Err(ConfigError::InvalidSubprotocol(bad.clone()));
        }
        if let Some((path, why)) = self.http_page.as_ref().and_then(HttpPage::path_error) {
            return Err(ConfigError::InvalidPagePath {
                path: path.to_owned(),
                why,
            });
        }
        if let OriginPolicy::AllowList(list) = &self.origin_policy {
            for entry in list {
                if let Some(why) = crate::origin::pattern_error(entry) {
                    return Err(ConfigError::InvalidOrigin {
                        entry: entry.clone(),
                        why,
                    });
                }
            }
        }
        self.history.validate().map_err(ConfigError::History)?;
        Ok(())
    }
}

/// One setting [`Config::set`] knows: its name, the shape of its value, and what it
/// does (with its default), for a usage text.
///
/// ```
/// use melody_core::Config;
///
/// let setting = Config::SETTINGS.iter().find(|s| s.name == "buffer-size").unwrap();
/// assert_eq!(setting.value, "N");
/// println!("--{} {}  {}", setting.name, setting.value, setting.help);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The name, in kebab case: `max-message-size`.
    pub name: &'static str,
    /// What the value looks like: `BYTES`, `MS`, `N`…
    pub value: &'static str,
    /// One line: what it sets, and the default in parentheses.
    pub help: &'static str,
}

const fn setting(name: &'static str, value: &'static str, help: &'static str) -> Setting {
    Setting { name, value, help }
}

impl Config {
    /// Every setting [`Config::set`] accepts, in the order a usage text lists them.
    ///
    /// ```
    /// use melody_core::Config;
    ///
    /// // A usage text for a server's command line.
    /// for setting in Config::SETTINGS {
    ///     println!("  --{} {:<8} {}", setting.name, setting.value, setting.help);
    /// }
    /// let mut config = Config::default();
    /// for setting in Config::SETTINGS.iter().filter(|s| s.value == "MS") {
    ///     config.set(setting.name, "1000")?;
    /// }
    /// assert!(Config::SETTINGS.iter().any(|s| s.name == "max-message-size"));
    /// # Ok::<(), melody_core::ConfigError>(())
    /// ```
    #[rustfmt::skip]
    pub const SETTINGS: &'static [Setting] = &[
        setting("max-message-size", "BYTES", "largest incoming message (65536)"),
        setting("buffer-size", "N", "outbox bound per session, in messages (1024)"),
        setting("buffer-bytes", "BYTES", "outbox bound per session, in bytes, or none (1048576)"),
        setting("drop-policy", "POLICY", "newest | oldest | disconnect: what a full outbox does (newest)"),
        setting("memory-budget", "BYTES", "bytes all sessions together may hold in outboxes and partial messages, or none (1073741824)"),
        setting("ping-period-ms", "MS", "ping interval (54000)"),
        setting("pong-wait-ms", "MS", "how long a peer may stay silent after a ping (60000)"),
        setting("write-wait-ms", "MS", "how long a peer may take none of our bytes (10000)"),
        setting("handshake-timeout-ms", "MS", "time allowed for the upgrade (10000)"),
        setting("close-timeout-ms", "MS", "time allowed for the peer's close frame (5000)"),
        setting("message-completion-timeout-ms", "MS", "time a message may take from its first frame to its last (60000)"),
        setting("close-drain-ms", "MS", "after a session, how long the peer's input is still read and discarded before the socket is dropped (2000)"),
        setting("close-drain-bytes", "BYTES", "after a session, the most input read and discarded (16777216)"),
        setting("max-handshake-size", "BYTES", "largest upgrade request (8192)"),
        setting("read-buffer-size", "BYTES", "initial per-session read buffer (128)"),
        setting("timer-granularity-ms", "MS", "resolution of deadlines (100)"),
        setting("max-sessions", "N", "refuse upgrades past N open sessions with 503, or none (none)"),
        setting("origin", "ORIGINS", "same | any | a comma-separated list of allowed origins, `*` patterns welcome: https://*.example.com, http://localhost:* (same)"),
        setting("subprotocol", "NAME", "a subprotocol to offer; each use adds one (none)"),
        setting("event-streams", "BOOL", "serve GETs that accept text/event-stream as event-stream sessions (on)"),
        setting("event-stream-retry-ms", "MS", "the retry: an event stream starts with, or none (3000)"),
        setting("compression", "MODE", "off | shared | dedicated: permessage-deflate, negotiated per session (off)"),
        setting("compression-threshold", "BYTES", "messages shorter than this go uncompressed (256)"),
    ];

    /// Sets one field from text, by its name in [`Config::SETTINGS`]: what a server
    /// reads from its command line or environment. `subprotocol` adds to the list;
    /// every other setting replaces its value. Durations are whole milliseconds (the
    /// `-ms` names); `buffer-bytes`, `memory-budget` and `max-sessions` take `none` to
    /// lift the bound.
    ///
    /// Values are checked one by one; check the result with [`Config::validate`] (which
    /// building an instance does too).
    ///
    /// ```
    /// use std::time::Duration;
    /// use melody_core::{Config, ConfigError, DropPolicy};
    ///
    /// let mut config = Config::default();
    /// config.set("max-message-size", "1048576")?;
    /// config.set("ping-period-ms", "20000")?;
    /// config.set("drop-policy", "oldest")?;
    /// assert_eq!(config.max_message_size, 1 << 20);
    /// assert_eq!(config.ping_period, Duration::from_secs(20));
    /// assert_eq!(config.drop_policy, DropPolicy::DropOldest);
    ///
    /// assert!(matches!(config.set("colour", "red"), Err(ConfigError::UnknownSetting(_))));
    /// assert!(matches!(config.set("buffer-size", "lots"), Err(ConfigError::InvalidValue { .. })));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let invalid = |expected: &'static str| ConfigError::InvalidValue {
            name: name.to_owned(),
            value: value.to_owned(),
            expected,
        };
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| invalid("a whole number"))
        };
        let millis = || {
            value
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| invalid("whole milliseconds"))
        };
        let bound = || match value {
            "none" => Ok(None),
            _ => value
                .parse::<usize>()
                .map(Some)
                .map_err(|_| invalid("a whole number or none")),
        };
        match name {
            "max-message-size" => self.max_message_size = number()?,
            "buffer-size" => self.message_buffer_size = number()?,
            "buffer-bytes" => self.message_buffer_bytes = bound()?,
            "memory-budget" => self.memory_budget = bound()?,
            "drop-policy" => {
                self.drop_policy = match value {
                    "newest" => DropPolicy::DropNewest,
                    "oldest" => DropPolicy::DropOldest,
                    "disconnect" => DropPolicy::Disconnect,
                    _ => return Err(invalid("newest, oldest or disconnect")),
                }
            }
            "ping-period-ms" => self.ping_period = millis()?,
            "pong-wait-ms" => self.pong_wait = millis()?,
            "write-wait-ms" => self.write_wait = millis()?,
            "handshake-timeout-ms" => self.handshake_timeout = millis()?,
            "close-timeout-ms" => self.close_timeout = millis()?,
            "message-completion-timeout-ms" => self.message_completion_timeout = millis()?,
            "close-drain-ms" => self.close_drain_timeout = millis()?,
            "close-drain-bytes" => self.close_drain_bytes = number()?,
            "max-handshake-size" => self.max_handshake_size = number()?,
            "read-buffer-size" => self.read_buffer_size = number()?,
            "timer-granularity-ms" => self.timer_granularity = millis()?,
            "max-sessions" => self.max_sessions = bound()?,
            "origin" => {
                self.origin_policy = match value {
                    "same" => OriginPolicy::SameOrigin,
                    "any" => OriginPolicy::Any,
                    "" => return Err(invalid("same, any, or a list of origins")),
                    list => OriginPolicy::AllowList(
                        list.split(',').map(|o| o.trim().to_owned()).collect(),
                    ),
                }
            }
            "event-streams" => {
                self.event_streams = match value {
                    "true" | "on" => true,
                    "false" | "off" => false,
                    _ => return Err(invalid("true or false")),
                }
            }
            "event-stream-retry-ms" => {
                self.event_stream_retry = match value {
                    "none" => None,
                    _ => Some(millis()?),
                }
            }
            "compression" => {
                self.compression = match value {
                    "off" => crate::Compression::Off,
                    "shared" => crate::Compression::Shared,
                    "dedicated" => crate::Compression::Dedicated,
                    _ => return Err(invalid("off, shared or dedicated")),
                }
            }
            "compression-threshold" => self.compression_threshold = number()?,
            "subprotocol" if is_token(value) => self.subprotocols.push(value.to_owned()),
            "subprotocol" => return Err(invalid("an HTTP token")),
            _ => return Err(ConfigError::UnknownSetting(name.to_owned())),
        }
        Ok(())
    }
}

/// An HTTP token (RFC 7230 §3.2.6), the syntax of a subprotocol name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Why a [`Config`] was refused.
///
/// ```
/// use std::time::Duration;
/// use melody_core::{Config, ConfigError};
///
/// let err = Config::default().ping_period(Duration::from_secs(90)).validate().unwrap_err();
/// assert!(matches!(err, ConfigError::PingNotBeforePongWait { .. }));
/// println!("invalid configuration: {err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("config: `{field}` must be greater than zero")]
    ZeroDuration {
        /// The field's name.
        field: &'static str,
    },
    /// A size or count that must be positive is zero.
    #[error("config: `{field}` must be greater than zero")]
    ZeroSize {
        /// The field's name.
        field: &'static str,
    },
    /// Pings must go out before the pong deadline, at least one `timer_granularity`
    /// before it, or every healthy peer times out.
    #[error(
        "config: ping_period ({ping_period:?}) must be shorter than pong_wait ({pong_wait:?}) \
         by at least timer_granularity, or healthy peers time out between pings"
    )]
    PingNotBeforePongWait {
        /// The configured ping period.
        ping_period: std::time::Duration,
        /// The configured pong wait.
        pong_wait: std::time::Duration,
    },
    /// A subprotocol name is not an HTTP token.
    #[error("config: subprotocol {0:?} is not a valid HTTP token")]
    InvalidSubprotocol(String),
    /// An [`OriginPolicy::AllowList`] entry that no origin could ever match.
    #[error("config: allowed origin {entry:?}: {why}")]
    InvalidOrigin {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A [`HistoryRules`](crate::history::HistoryRules) entry is invalid.
    #[error("config: {0}")]
    History(crate::history::HistoryRuleError),
    /// A path of [`Config::http_page`] that no request could ever match.
    #[error("config: http_page path {path:?}: {why}")]
    InvalidPagePath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// [`Config::set`] was given a name that is not in [`Config::SETTINGS`].
    #[error("config: no setting is named {0:?}")]
    UnknownSetting(String),
    /// [`Config::set`] was given a value its setting cannot take.
    #[error("config: {name}: {value:?} is not {expected}")]
    InvalidValue {
        /// The setting's name.
        name: String,
        /// The value given.
        value: String,
        /// What the setting takes.
        expected: &'static str,
    },
}
