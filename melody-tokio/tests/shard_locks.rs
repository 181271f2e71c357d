//! Shard-lock acquisitions per delivery on the broadcast path (feature `lock-stats`):
//! `cargo test -p melody-tokio --features lock-stats --test shard_locks -- --nocapture`.
//!
//! Each message is broadcast to every client only once all of them have read the one
//! before, so every delivery wakes its connection task on its own: the worst case for
//! locking. A woken recipient takes its batch in one locked exchange and, after writing
//! it, reports the write and parks in a second; the broadcast itself locks each shard
//! once per message.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::{recv, wait_until, Server};
use melody_tokio::Config;

const CLIENTS: usize = 50;
const MESSAGES: usize = 200;

#[test]
fn a_paced_broadcast_takes_two_shard_locks_per_delivery() {
    let server = Server::start(Config::default());
    let received = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut client = server.connect("/");
            let received = received.clone();
            thread::spawn(move || {
                for _ in 0..=MESSAGES {
                    recv(&mut client);
                    received.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    wait_until("every client connected", || server.melody.len() == CLIENTS);
    // A first message, not counted: every connection task has finished its handshake
    // and parked once it has been read.
    let _ = server.melody.broadcast("warm-up");
    wait_until("every client read the warm-up", || {
        received.load(Ordering::Relaxed) == CLIENTS
    });

    let before = server.melody.shard_lock_acquisitions();
    for i in 1..=MESSAGES {
        let delivery = server.melody.broadcast("tick");
        assert_eq!(delivery.queued, CLIENTS, "message {i}: {delivery:?}");
        wait_until("every client read the message", || {
            received.load(Ordering::Relaxed) == CLIENTS * (i + 1)
        });
    }
    let locks = server.melody.shard_lock_acquisitions() - before;
    for reader in readers {
        reader.join().expect("reader thread");
    }

    let deliveries = (CLIENTS * MESSAGES) as f64;
    let per_delivery = locks as f64 / deliveries;
    let shards = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "{locks} shard-lock acquisitions for {deliveries} deliveries: {per_delivery:.3} per delivery \
         ({CLIENTS} clients, {MESSAGES} paced broadcasts, {shards} shards)"
    );
    // Two per woken recipient, one per shard per broadcast, and a little room for the
    // clock task's rounds (a driver that took four per recipient measured 4.055 here).
    let bound = 2.0 + shards / CLIENTS as f64 + 0.05;
    assert!(
        per_delivery <= bound + 1e-9,
        "{per_delivery:.3} shard-lock acquisitions per delivery, more than {bound:.3}"
    );
}
