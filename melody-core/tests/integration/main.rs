//! melody-core's integration tests, in one test binary: the simulation harness (`sim`)
//! and the crate under test are compiled and linked once, not once per file.
//!
//! Run one group with a filter, e.g. `cargo test -p melody-core --test integration
//! keepalive::`.

mod sim;

mod budget;
mod close;
mod deflate_out;
mod event_stream;
mod fanout;
mod frames;
mod fuzz_regressions;
mod handshake;
mod history;
mod inbound;
mod keepalive;
mod outbox;
mod scale;
mod settings;
mod small_writes;
mod verdict;
