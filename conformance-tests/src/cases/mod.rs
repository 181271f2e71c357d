//! Every case, written once and generic over the [`Backend`](crate::Backend). Each is a
//! plain function that panics on failure; [`conformance_suite!`](crate::conformance_suite)
//! turns them into one `#[test]` each. They can also be called one by one.

mod broadcast;
mod close;
mod echo;
mod handlers;
mod handshake;
mod hostile_handshake;
mod hostile_peers;
mod keepalive;
mod limits;
mod load;
mod request_hook;
mod shutdown_load;
mod slow;

pub use broadcast::*;
pub use close::*;
pub use echo::*;
pub use handlers::*;
pub use handshake::*;
pub use hostile_handshake::*;
pub use hostile_peers::*;
pub use keepalive::*;
pub use limits::*;
pub use load::*;
pub use request_hook::*;
pub use shutdown_load::*;
pub use slow::*;
