//! What the driver keeps per session inside the hub, and what never changes for a
//! session: its key and the information its handles share without locking.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, OnceLock};

use melody_core::http::Extensions;
use melody_core::{ConnectionInfo, Keys, RequestHead, SessionId, SessionKind, SessionStats};

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
    remote_addr: Option<PackedAddr>,
    local_addr: Option<PackedAddr>,
    pub(crate) protocol: Option<Box<str>>,
    pub(crate) compression: melody_core::Compression,
    pub(crate) deflate: Option<melody_core::DeflateParams>,
    pub(crate) kind: SessionKind,
    /// The counters at the end, kept once the hub has released the session (boxed:
    /// a live session's handle reads them from the hub, so most never set them).
    pub(crate) last_stats: OnceLock<Box<SessionStats>>,
}

/// How a session's connection was made, for [`Info::new`].
pub(crate) struct Origin {
    pub(crate) request: RequestHead,
    pub(crate) connection: ConnectionInfo,
    pub(crate) protocol: Option<String>,
    pub(crate) compression: melody_core::Compression,
    pub(crate) deflate: Option<melody_core::DeflateParams>,
    pub(crate) kind: SessionKind,
}

impl Info {
    pub(crate) fn new(key: SessionKey, origin: Origin) -> Self {
        Info {
            key,
            request: origin.request,
            remote_addr: origin.connection.remote_addr.map(PackedAddr::from),
            local_addr: origin.connection.local_addr.map(PackedAddr::from),
            protocol: origin.protocol.map(String::into_boxed_str),
            compression: origin.compression,
            deflate: origin.deflate,
            kind: origin.kind,
            last_stats: OnceLock::new(),
        }
    }

    /// The peer's address, as the transport reported it.
    pub(crate) fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr.as_ref().map(PackedAddr::unpack)
    }

    /// Our address, as the transport reported it.
    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr.as_ref().map(PackedAddr::unpack)
    }
}

/// A socket address in 16 bytes, not `SocketAddr`'s 32: every session's `Info` holds
/// two, and nearly all are IPv4, kept inline; an IPv6 address is boxed.
enum PackedAddr {
    V4(SocketAddrV4),
    V6(Box<SocketAddrV6>),
}

impl From<SocketAddr> for PackedAddr {
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(v4) => PackedAddr::V4(v4),
            SocketAddr::V6(v6) => PackedAddr::V6(Box::new(v6)),
        }
    }
}

impl PackedAddr {
    fn unpack(&self) -> SocketAddr {
        match self {
            PackedAddr::V4(v4) => SocketAddr::V4(*v4),
            PackedAddr::V6(v6) => SocketAddr::V6(**v6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_addresses_come_back_as_they_went_in_and_take_half_the_room() {
        assert_eq!(std::mem::size_of::<Option<PackedAddr>>(), 16);
        for text in [
            "127.0.0.1:80",
            "[::1]:443",
            "[fe80::1%3]:9",
            "10.1.2.3:65535",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(PackedAddr::from(addr).unpack(), addr, "{text}");
        }
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 9, 7, 3));
        assert_eq!(PackedAddr::from(scoped).unpack(), scoped);
    }
}
