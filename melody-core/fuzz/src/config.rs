//! A hub configuration chosen by the fuzz input. Everything is small (outboxes of a few
//! messages, messages of a few hundred bytes, deadlines of a second or two), so that
//! bounds, drop policies and timers are all reached within a short input.

use std::time::Duration;

use arbitrary::Arbitrary;
use melody_core::{Config, DropPolicy, HttpPage, OriginPolicy};

/// The subprotocols a hub speaks when [`FuzzConfig::subprotocols`] is on.
pub const SUBPROTOCOLS: [&str; 2] = ["chat", "superchat"];

/// The fuzz-chosen knobs; [`FuzzConfig::build`] turns them into a valid [`Config`].
#[derive(Debug, Clone, Arbitrary)]
pub struct FuzzConfig {
    buffer_size: u8,
    buffer_bytes: Option<u8>,
    policy: u8,
    max_message_size: u16,
    read_buffer_size: u8,
    max_handshake_size: u16,
    max_sessions: Option<u8>,
    origin: u8,
    subprotocols: bool,
    sent_events: bool,
    http_page: bool,
    /// Deadlines, in timer ticks (100 ms) on top of a minimum.
    ping_ticks: u8,
    pong_extra_ticks: u8,
    write_ticks: u8,
    handshake_ticks: u8,
    close_ticks: u8,
    /// Event streams: off (1 in 8), and the `retry:` they open with (none, the
    /// default, or a fuzzed one).
    sse: u8,
    retry_millis: u16,
}

/// The timer granularity every fuzzed hub uses.
pub const GRANULARITY: Duration = Duration::from_millis(100);

fn ticks(n: u8, min: u32) -> Duration {
    GRANULARITY * (min + u32::from(n % 20))
}

impl FuzzConfig {
    /// A valid configuration: every size at least 1, ping before the pong deadline.
    pub fn build(&self) -> Config {
        let policy = match self.policy % 3 {
            0 => DropPolicy::DropNewest,
            1 => DropPolicy::DropOldest,
            _ => DropPolicy::Disconnect,
        };
        let origin = match self.origin % 3 {
            0 => OriginPolicy::SameOrigin,
            1 => OriginPolicy::AllowList(vec!["http://allowed.test".into()]),
            _ => OriginPolicy::Any,
        };
        let ping = ticks(self.ping_ticks, 2);
        let pong = ping + ticks(self.pong_extra_ticks, 1);
        let subprotocols = if self.subprotocols {
            SUBPROTOCOLS.iter().map(|p| p.to_string()).collect()
        } else {
            Vec::new()
        };
        Config::default()
            .message_buffer_size(1 + usize::from(self.buffer_size % 6))
            // At least 2 bytes: the smallest frame (an empty message) fits.
            .message_buffer_bytes(self.buffer_bytes.map(|b| 2 + usize::from(b) * 2))
            .drop_policy(policy)
            .max_message_size(1 + usize::from(self.max_message_size % 1024))
            .read_buffer_size(1 + usize::from(self.read_buffer_size % 64))
            .max_handshake_size(32 + usize::from(self.max_handshake_size % 1024))
            .max_sessions(self.max_sessions.map(|n| 1 + usize::from(n % 4)))
            .origin_policy(origin)
            .subprotocols(subprotocols)
            .sent_events(self.sent_events)
            .http_page(self.http_page.then(|| HttpPage::at("/", "<h1>page</h1>")))
            .timer_granularity(GRANULARITY)
            .ping_period(ping)
            .pong_wait(pong)
            .write_wait(ticks(self.write_ticks, 1))
            .handshake_timeout(ticks(self.handshake_ticks, 1))
            // Both bound how long the peer may take to finish what it started sending:
            // one input byte drives both, so the input layout stays as it was.
            .message_completion_timeout(ticks(self.handshake_ticks, 1))
            .close_timeout(ticks(self.close_ticks, 1))
            .event_streams(self.sse % 8 != 0)
            .event_stream_retry(match (self.sse / 8) % 3 {
                0 => None,
                1 => Some(Duration::from_secs(3)),
                _ => Some(Duration::from_millis(u64::from(self.retry_millis))),
            })
    }
}

/// The longest a silent peer can keep a session alive under `config`: every deadline
/// that could run one after the other, with a tick of rounding for each.
pub fn longest_life(config: &Config) -> Duration {
    config.handshake_timeout
        + config.message_completion_timeout
        + config.pong_wait
        + config.write_wait
        + config.close_timeout
        + GRANULARITY * 8
}
