//! A Redis backplane for melody: several melody servers behind a load balancer act as
//! one. A `publish` (or `broadcast`) on any node reaches the matching sessions of
//! every node sharing the Redis server.
//!
//! ```no_run
//! use melody_redis::{RedisBackplane, RedisBackplaneConfig};
//! use melody_tokio::Melody;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let melody = Melody::new();
//!     let room = melody.clone();
//!     melody.on_message(move |_session, text| {
//!         room.broadcast(text); // here, and on every other node
//!     });
//!     let backplane = RedisBackplane::new(RedisBackplaneConfig::new("redis://127.0.0.1:6379/"))?;
//!     let _ = melody.attach_backplane(backplane);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//!     melody_tokio::serve(&melody, listener).await?;
//!     Ok(())
//! }
//! ```
//!
//! # What crosses nodes
//!
//! `broadcast`, `broadcast_binary`, `broadcast_prepared`, `broadcast_others` and the
//! `publish` family are delivered on the node that calls them and also sent through
//! Redis; a node delivers what it receives from Redis to its own sessions only, and
//! ignores its own messages coming back (each node tags what it sends with a random
//! [`NodeId`]). `broadcast_others` and `publish_others` leave out the excluded session
//! on its own node; every other node delivers to all its sessions (or subscribers).
//! `broadcast_filter` and `broadcast_multiple` stay on their node. Nodes know nothing of
//! each other: only the Redis server and the channel prefix are shared.
//!
//! # Delivery: at most once
//!
//! Redis pub/sub keeps nothing for a subscriber that is not connected, and this crate
//! does not retry. A message reaches another node's sessions at most once, in the
//! order its node published it (one connection publishes, in order; one connection
//! listens). Exactly what a client misses:
//!
//! - **while Redis is away**, every message published on another node, from the moment
//!   Redis stopped until both that node and the client's node are connected again
//!   ([`RedisHandle::is_ready`]); reconnection is attempted at once, then with backoff
//!   doubling from [`RedisBackplaneConfig::min_backoff`] up to
//!   [`RedisBackplaneConfig::max_backoff`], so it resumes within about that bound of
//!   Redis coming back. Messages published on a node with no Redis connection are
//!   counted in [`Stats::failed`] and never sent later. Local delivery never stops: a
//!   client misses nothing published on its own node.
//! - when a node's queue towards Redis is full (a slow or stalled Redis), the
//!   overflowing messages are not sent to other nodes ([`Stats::dropped`]); the
//!   broadcast itself never waits for Redis.
//! - when a topic gets its first subscriber on a node, messages published elsewhere
//!   before Redis confirmed that node's subscription ([`RedisHandle::is_listening`],
//!   one round trip).
//! - what the session's own outbox drops, as on a single node (melody's drop policy).
//!
//! # History across nodes
//!
//! A topic the melody config keeps history for ([`HistoryRules`]) keeps it in Redis
//! (unless [`RedisBackplaneConfig::shared_history`] is off): a stream per topic,
//! `P:history:T`, whose entry ids are the sequence, and a hash `P:history-meta:T`
//! holding the epoch (created with the hash; a Redis that lost its data starts a new
//! one) and the last sequence. A publish to such a topic is handed to Redis only: one
//! script takes the next sequence, appends to the stream (trimmed to the topic's count
//! bound with `MAXLEN ~`, and by its age bound on each append) and publishes the
//! message with its position on the topic's channel, atomically. Every node, the
//! publisher's included, delivers what arrives there in Redis's order and keeps it in
//! its local history at that position
//! ([`BackplaneLink::deliver_at`](melody_driver::BackplaneLink::deliver_at)), so every
//! subscriber on every node sees one order and the same positions, and a client can
//! resume on any node that listens to the topic. A node keeps listening to a history
//! topic once one of its sessions subscribed, and when it starts listening (first
//! subscriber, or a new connection after an outage) it reads the stream back
//! (`XREVRANGE`, at most the count bound or 10,000 entries) into its copy
//! ([`BackplaneLink::backfill`](melody_driver::BackplaneLink::backfill)), once Redis
//! confirmed the subscription, and says so
//! ([`BackplaneLink::history_read_back`](melody_driver::BackplaneLink::history_read_back)).
//! A resume through the request hook (`Verdict::resume_from`, an event stream's
//! `Last-Event-ID`) on a topic the node has not read back yet waits for that before
//! the `101`/`200`, within the handshake timeout, so a client that reconnects to a node
//! that never listened to the topic recovers as on one that did; an async handler gets
//! the same wait before `Session::subscribe_from` with `Melody::read_back_history`.
//!
//! Exactly what is kept and lost:
//!
//! - a resume whose read-back did not happen in time (Redis unreachable: the wait ends
//!   at the node's next failed connection attempt; slower than the handshake timeout;
//!   or `subscribe_from` without waiting on a node's first subscriber) runs against the
//!   node's copy as it is: on a node that never listened, a gap (`other-epoch`),
//!   signalled and counted;
//! - live subscribers of a node whose connection to Redis dropped miss what other nodes
//!   published meanwhile (live delivery is at most once); the read-back on
//!   reconnection puts it in the node's copy, so resumes there get it;
//! - while a node cannot reach Redis, its publishes to history topics are delivered to
//!   its own subscribers only, without a position, and kept nowhere
//!   ([`Stats::history_local_only`], also in [`Stats::failed`]); other nodes and later
//!   resumes never see them. Redis keeps what it had; when it is back, positions go on
//!   in the same epoch, or a new one if Redis lost its data (clients resuming from the
//!   old one are told: `other-epoch`). A publish whose command timed out may still have
//!   reached Redis, and then reaches its node's subscribers twice;
//! - on a node's first subscriber to a topic, what is published (on any node, this one
//!   included) before Redis confirmed the node's subscription is not delivered there
//!   live (a resume that waited for the read-back replays it);
//! - `publish_others` reaches the excluded session too, since the message comes back
//!   from Redis like any other; `publish` returns a `Delivery` with nothing queued.
//!
//! A history topic's message on its channel is positioned: byte 3, the position as
//! text and a line feed, then the envelope below. Nodes of earlier versions count it
//! as malformed.
//!
//! # Channels and envelope
//!
//! With the prefix `P` ([`RedisBackplaneConfig::channel_prefix`], default `melody`),
//! broadcasts go on `P:all` and topic `T` on `P:topic:T`, one channel per topic; a node
//! listens to `P:all` and to the channel of every topic its sessions subscribe to, and
//! leaves channels no session needs at its next maintenance tick. Sharded pub/sub
//! (`SPUBLISH`/`SSUBSCRIBE`) is used when the server supports it (Redis 7 and later),
//! else classic `PUBLISH`/`SUBSCRIBE` ([`PubSubMode`]). Each message is an 11-byte
//! header — version, kind (text/binary), node id, which event fields follow — then a
//! server-sent event's name and id when it has them (each a 4-byte length and its
//! bytes), then the payload unchanged ([`ENVELOPE_HEADER_LEN`]). So a `publish_event`
//! on one node reaches event-stream subscribers on every node whole, and WebSocket
//! subscribers with its data. One Redis server (or one address in front of a primary)
//! is supported; Redis Cluster is not.
//!
//! The envelope is at version 2 ([`ENVELOPE_VERSION`]); version 1 (0.1.0, no event
//! fields) is still read, so during a rolling upgrade upgraded nodes take messages
//! from older ones. An older node reads only version 1: it counts each version-2
//! envelope in [`Stats::malformed`] and delivers nothing of it, so its sessions
//! miss what upgraded nodes publish until it is upgraded too.
//!
//! # Runtimes
//!
//! The backplane's tasks run on the melody instance's runtime (its `Runtime` seam); the
//! Redis connections use the `redis` crate's runtime support: feature `tokio` (default)
//! for melody-tokio, feature `smol` for melody-smol and melody-async-std (async-std
//! runs on the same async-io reactor as smol, and the `redis` crate dropped its own
//! async-std support). With both features, a connection opened inside a tokio runtime
//! uses tokio.
//!
//! With neither feature (`default-features = false`), [`RedisBackplane`] and
//! [`RedisHandle`] are left out: the `redis` crate's async connections need a runtime.
//! What remains is the configuration, the envelope layout and [`Stats`].
//!
//! [`HistoryRules`]: melody_core::history::HistoryRules

#![deny(missing_docs)]
#![forbid(unsafe_code)]
// Without a runtime feature only the configuration, envelope and stats remain, and the
// helpers the backplane uses go unused.
#![cfg_attr(not(any(feature = "tokio", feature = "smol")), allow(dead_code))]

#[cfg(any(feature = "tokio", feature = "smol"))]
mod backoff;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod backplane;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod channels;
mod config;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod connect;
mod envelope;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod handle;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod history;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod node;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod observe;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod publisher;
mod stats;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod subscriber;
#[cfg(any(feature = "tokio", feature = "smol"))]
mod wait;

#[cfg(any(feature = "tokio", feature = "smol"))]
pub use backplane::RedisBackplane;
pub use config::{PubSubMode, RedisBackplaneConfig};
pub use envelope::{NodeId, ENVELOPE_HEADER_LEN, ENVELOPE_VERSION, OLDEST_READ_VERSION};
#[cfg(any(feature = "tokio", feature = "smol"))]
pub use handle::RedisHandle;
pub use redis::RedisError;
pub use stats::Stats;
