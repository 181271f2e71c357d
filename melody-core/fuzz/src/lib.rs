//! The shared harness of melody-core's fuzz targets.
//!
//! - [`config`]: a small hub configuration chosen by the fuzz input, so bounds are hit;
//! - [`wire`]: what a client puts on the wire (upgrade requests, masked frames);
//! - [`chunks`]: splitting one byte stream at fuzz-chosen boundaries;
//! - [`deflate_wire`]: compressed client messages for the inflate target, and what
//!   must be delivered from them;
//! - [`conn`]: one connection as a driver sees it, checking its events as they come;
//! - [`world`]: a hub, its connections and a clock, with the hub-wide invariants;
//! - [`ops`]: the operations the session target applies to a world;
//! - [`delivery`]: sends and broadcasts, with every message accounted for;
//! - [`script`]: the session target's input and how it runs;
//! - [`server_wire`]: reading back what a connection received, as a client would;
//! - [`sse_wire`]: reading back an event stream, as a browser would;
//! - [`stream`]: one connection fed a byte stream, for the parser targets.

pub mod chunks;
pub mod config;
pub mod conn;
pub mod deflate_wire;
pub mod delivery;
pub mod ops;
pub mod script;
pub mod server_wire;
pub mod sse_wire;
pub mod stream;
pub mod wire;
pub mod world;
