//! What the driver keeps per session inside the hub, and what never changes for a
//! session: its key and the information its handles share without locking.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use melody_core::http::Extensions;
use melody_core::{Keys, RequestHead, SessionId, SessionKind, SessionStats};

use crate::sync::WakerSlot;

/// A session's identity across the shards of a [`Melody`](crate::Melody).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub(crate) shard: u32,
    pub(crate) id: SessionId,
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.shard, self.id)
    }
}

/// The driver's user data in the hub, one per session.
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) keys: Keys,
    /// Typed state, one value per type.
    pub(crate) state: Extensions,
    /// The connection task's waker while it is parked.
    pub(crate) waker: WakerSlot,
    /// Set at `Connect`: what session handles point to.
    pub(crate) info: Option<Arc<Info>>,
}

/// What never changes for a session: shared by its handles without locking.
pub(crate) struct Info {
    pub(crate) key: SessionKey,
    pub(crate) request: RequestHead,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) protocol: Option<String>,
    pub(crate) compression: melody_core::Compression,
    pub(crate) deflate: Option<melody_core::DeflateParams>,
    pub(crate) kind: SessionKind,
    /// The counters at the end, kept once the hub has released the session (boxed:
    /// a live session's handle reads them from the hub, so most never set them).
    pub(crate) last_stats: OnceLock<Box<SessionStats>>,
}
