//! The names every adapter re-exports at its root, so that an application depends on
//! its adapter alone: an adapter's `lib.rs` says `pub use melody_driver::api::*;`
//! and adds its runtime, entry points and the `Melody`/`Session` aliases.

pub use crate::error::Error;
pub use crate::filter::SessionRef;
pub use crate::melody::ShutdownReport;
pub use crate::slot::SessionKey;
pub use melody_core::{
    Bytes, CloseCode, Config, ConfigError, ConnectionInfo, Delivery, DropPolicy, HubStats, Keys,
    OriginPolicy, Prepared, SessionError, SessionStats,
};
