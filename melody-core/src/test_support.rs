//! What the crate's own unit tests share: an upgrade request and an open session.

use std::time::Instant;

use crate::{Config, ConnectionInfo, Event, Hub, Keys, SessionId};

/// A valid WebSocket upgrade request for `/chat`.
pub(crate) const UPGRADE: &[u8] =
    b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// A hub with one session upgraded and its `Connect` taken.
pub(crate) fn open(config: Config) -> (Hub<Keys>, SessionId, Instant) {
    let t0 = Instant::now();
    let mut hub = Hub::new(config, t0).expect("valid config");
    let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    hub.handle_input(id, t0, UPGRADE).expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Connect)));
    (hub, id, t0)
}
