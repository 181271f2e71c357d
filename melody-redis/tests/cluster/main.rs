//! Two melody nodes on different ports sharing one real Redis; and the backplane seam
//! with an in-process backplane (`seam`).
//!
//! The two-node tests need Redis: the delivery tests use `MELODY_REDIS_URL` when it is
//! set and otherwise start a `redis-server` of their own; the outage tests always start
//! their own (they kill and pause it). Where there is no Redis to use they pass without
//! running and the binary says so in one line on stderr; with `MELODY_REQUIRE_REDIS=1`
//! (as in CI) they fail instead (see `skip`).

mod delivery;
mod events;
mod harness;
mod history;
mod outage;
mod read_back;
mod redis_server;
mod runtimes;
mod seam;
mod skip;
