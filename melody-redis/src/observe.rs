//! What the backplane tells `tracing` (feature `tracing`): its Redis connections going
//! down and coming back. Empty without the feature.

/// Which of the node's two Redis connections.
#[derive(Clone, Copy)]
pub(crate) enum Role {
    Publisher,
    Subscriber,
}

#[cfg(feature = "tracing")]
impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
        }
    }
}

/// A connection is up (again).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn connected(role: Role, node: crate::NodeId, sharded: bool) {
    #[cfg(feature = "tracing")]
    tracing::info!(target: "melody", connection = role.name(), %node, sharded, "backplane connected to Redis");
}

/// A connection attempt failed; the next one comes after `pause`.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn connect_failed(role: Role, node: crate::NodeId, pause: std::time::Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "melody", connection = role.name(), %node, retry_in = ?pause, "backplane cannot reach Redis");
}

/// A connection that was up is gone; it is opened again.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn disconnected(role: Role, node: crate::NodeId) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "melody", connection = role.name(), %node, "backplane lost its Redis connection: reconnecting");
}
