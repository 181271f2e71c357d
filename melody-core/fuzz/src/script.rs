//! The session target's input: a configuration, a few sessions opened up front, and a
//! script of operations, all decoded by `arbitrary`.

use arbitrary::Arbitrary;

use crate::config::FuzzConfig;
use crate::ops::{valid_request, Op};
use crate::world::World;

/// Enough steps to reach every state; more only slows each run.
pub const MAX_OPS: usize = 256;

/// One run of the session target.
#[derive(Debug, Arbitrary)]
pub struct Script {
    pub config: FuzzConfig,
    /// Sessions opened with a valid handshake before the first step (1 to 3).
    pub initial: u8,
    pub ops: Vec<Op>,
}

impl Script {
    /// Runs the script, checking every invariant after each step, then winds the hub
    /// down. Returns the world, for a caller that wants to look at what happened.
    pub fn run(&self) -> World {
        let mut world = World::new(self.config.build());
        for _ in 0..1 + self.initial % 3 {
            let index = world.open();
            world.feed(index, &valid_request());
            world.check();
        }
        for op in self.ops.iter().take(MAX_OPS) {
            op.apply(&mut world);
            world.check();
        }
        world.wind_down();
        world
    }
}
