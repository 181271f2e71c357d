//! Two melody nodes on different ports sharing one real Redis; and the backplane seam
//! with an in-process backplane (`seam`).
//!
//! Needs `redis-server`: the delivery tests use `MELODY_REDIS_URL` when it is set and
//! otherwise start their own server; the outage tests always start their own (they kill
//! and pause it). Without a server to run they fail, saying so.

mod delivery;
mod harness;
mod outage;
mod redis_server;
mod runtimes;
mod seam;
