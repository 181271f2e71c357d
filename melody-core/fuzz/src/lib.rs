//! The shared harness of melody-core's fuzz targets.
//!
//! - [`config`]: a small hub configuration chosen by the fuzz input, so bounds are hit;
//! - [`wire`]: what a client puts on the wire (upgrade requests, masked frames);
//! - [`chunks`]: splitting one byte stream at fuzz-chosen boundaries;
//! - [`conn`]: one connection as a driver sees it, checking its events as they come;
//! - [`world`]: a hub, its connections and a clock, with the hub-wide invariants;
//! - [`ops`]: the operations the session target applies to a world;
//! - [`delivery`]: sends and broadcasts, with every message accounted for;
//! - [`script`]: the session target's input and how it runs;
//! - [`server_wire`]: reading back what a connection received, as a client would;
//! - [`stream`]: one connection fed a byte stream, for the parser targets.

pub mod chunks;
pub mod config;
pub mod conn;
pub mod delivery;
pub mod ops;
pub mod script;
pub mod server_wire;
pub mod stream;
pub mod wire;
pub mod world;
