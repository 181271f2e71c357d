//! One connection fed a byte stream in given chunks, then left to end: what both the
//! handshake and the frames targets run, once in one piece and once in chunks.

use melody_core::{Config, Event};

use crate::wire::upgrade_request;
use crate::world::World;

/// What the peer of the connection saw, and what its driver was told.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub written: Vec<u8>,
}

/// How the connection ends once its bytes are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The peer closes its side.
    Eof,
    /// The peer goes silent; deadlines end the session.
    Silence,
}

/// Opens `occupied` accepted sessions first (to reach `max_sessions`), then the
/// connection under test; feeds it `chunks`, checking the hub after each; writes all it
/// hands out; ends it. Nothing is written between chunks, so how the stream is cut
/// must not change the outcome.
pub fn run<'a>(
    config: &Config,
    occupied: usize,
    chunks: impl Iterator<Item = &'a [u8]>,
    ending: Ending,
) -> Outcome {
    let mut world = World::new(config.clone());
    for _ in 0..occupied {
        let index = world.open();
        world.feed(index, &upgrade_request(""));
        world.drive(index, usize::MAX);
    }
    let index = world.open();
    for chunk in chunks {
        world.feed(index, chunk);
        world.check();
    }
    world.drive(index, usize::MAX);
    world.drive(index, usize::MAX);
    world.check();
    if ending == Ending::Eof {
        let id = world.conns[index].id;
        let known = world.hub.handle_eof(id, world.now).is_ok();
        assert_eq!(known, !world.conns[index].released);
    }
    world.wind_down();
    let conn = &mut world.conns[index];
    Outcome {
        events: std::mem::take(&mut conn.events),
        written: std::mem::take(&mut conn.written),
    }
}
