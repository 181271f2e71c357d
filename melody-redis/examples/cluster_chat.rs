//! The chat example on several nodes: every message goes to everyone, on every node
//! sharing the Redis server.
//!
//! ```sh
//! redis-server --port 6379 --bind 127.0.0.1 --save ""          # or a running Redis
//! cargo run --release -p melody-redis --example cluster_chat -- --addr 127.0.0.1:5000
//! cargo run --release -p melody-redis --example cluster_chat -- --addr 127.0.0.1:5001
//! ```
//!
//! Then open <http://127.0.0.1:5000/> and <http://127.0.0.1:5001/>: what one tab sends,
//! both show. `--redis URL` (or `MELODY_REDIS_URL`) names another server (default
//! `redis://127.0.0.1:6379/`). The handler and the page are the single-node chat
//! example's (from the workspace's `examples-support` crate).

use std::time::Duration;

use examples_support::{addr, chat, flag, with_page, CHAT_PAGE};
use melody_redis::{RedisBackplane, RedisBackplaneConfig};
use melody_tokio::{Config, Melody};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let addr = addr("127.0.0.1:5000");
    let redis = flag("--redis")
        .or_else(|| std::env::var("MELODY_REDIS_URL").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned());

    let melody = Melody::with_config(with_page(Config::default(), &["/"], CHAT_PAGE))?;
    // Its broadcast reaches the sessions here and, through Redis, on every other node.
    chat(&melody);

    let backplane = RedisBackplane::new(RedisBackplaneConfig::new(&redis))?;
    let handle = backplane.handle();
    if melody.attach_backplane(backplane).is_err() {
        return Err("a backplane was already attached".into());
    }

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "cluster_chat: node {} on http://{}/, Redis at {redis}",
        handle.node_id(),
        listener.local_addr()?
    );
    // Say once whether Redis is reachable, so a missing server is noticed.
    let watch = handle.clone();
    tokio::spawn(async move {
        for _ in 0..50 {
            if watch.is_ready() {
                println!("cluster_chat: connected to Redis");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("cluster_chat: Redis not reachable yet; serving this node alone, retrying");
    });
    melody_tokio::serve(&melody, listener).await?;
    Ok(())
}
