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
//! # Channels and envelope
//!
//! With the prefix `P` ([`RedisBackplaneConfig::channel_prefix`], default `melody`),
//! broadcasts go on `P:all` and topic `T` on `P:topic:T`, one channel per topic; a node
//! listens to `P:all` and to the channel of every topic its sessions subscribe to, and
//! leaves channels no session needs at its next maintenance tick. Sharded pub/sub
//! (`SPUBLISH`/`SSUBSCRIBE`) is used when the server supports it (Redis 7 and later),
//! else classic `PUBLISH`/`SUBSCRIBE` ([`PubSubMode`]). Each message is a 10-byte
//! header — version, kind (text/binary), node id — then the payload unchanged
//! ([`ENVELOPE_HEADER_LEN`]). One Redis server (or one address in front of a primary)
//! is supported; Redis Cluster is not.
//!
//! # Runtimes
//!
//! The backplane's tasks run on the melody instance's runtime (its `Runtime` seam); the
//! Redis connections use the `redis` crate's runtime support: feature `tokio` (default)
//! for melody-tokio, feature `smol` for melody-smol and melody-async-std (async-std
//! runs on the same async-io reactor as smol, and the `redis` crate dropped its own
//! async-std support). With both features, a connection opened inside a tokio runtime
//! uses tokio.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod backoff;
mod backplane;
mod channels;
mod config;
mod connect;
mod envelope;
mod handle;
mod node;
mod publisher;
mod stats;
mod subscriber;
mod wait;

pub use backplane::RedisBackplane;
pub use config::{PubSubMode, RedisBackplaneConfig};
pub use envelope::{NodeId, ENVELOPE_HEADER_LEN, ENVELOPE_VERSION};
pub use handle::RedisHandle;
pub use redis::RedisError;
pub use stats::Stats;
