//! The hub's whole API as a state machine: connections opened with valid (or odd)
//! handshakes, then a fuzz-chosen sequence of peer frames, sends, broadcasts, topics,
//! closes, partial writes, transport failures and time. After every step the harness
//! checks the hub's invariants (see `melody_fuzz::world::World::check`): outbox bounds
//! in messages and bytes, every drop counted and reported, events in order with one
//! `Disconnect` last, no session left unserved, topic and hub counters consistent.
//! At the end a silent peer must see every session end within its deadlines.

#![no_main]

use libfuzzer_sys::fuzz_target;
use melody_fuzz::script::Script;

fuzz_target!(|script: Script| {
    script.run();
});
