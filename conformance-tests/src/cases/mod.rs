//! Every case, written once and generic over the [`Backend`](crate::Backend). Each is a
//! plain function that panics on failure; [`conformance_suite!`](crate::conformance_suite)
//! turns them into one `#[test]` each. They can also be called one by one.

mod async_handlers;
mod broadcast;
mod close;
mod compression;
mod echo;
mod event_stream;
mod handlers;
mod handshake;
mod history;
mod hostile_bounds;
mod hostile_handshake;
mod hostile_peers;
mod keepalive;
mod limits;
mod load;
mod parking;
mod request_hook;
mod shutdown_load;
mod slow;

pub use async_handlers::*;
pub use broadcast::*;
pub use close::*;
pub use compression::*;
pub use echo::*;
pub use event_stream::*;
pub use handlers::*;
pub use handshake::*;
pub use history::*;
pub use hostile_bounds::*;
pub use hostile_handshake::*;
pub use hostile_peers::*;
pub use keepalive::*;
pub use limits::*;
pub use load::*;
pub use parking::*;
pub use request_hook::*;
pub use shutdown_load::*;
pub use slow::*;
