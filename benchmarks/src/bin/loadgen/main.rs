//! Load generator for WebSocket servers on loopback. Lean by design — raw frames, no
//! WebSocket library, one thread — so that it is not the bottleneck; it reports its
//! own CPU time next to the server's so that this can be checked.
//!
//! ```text
//! loadgen broadcast --url ws://127.0.0.1:6000/ws --server-pid PID [--subscribers 1000] [--window 64] [--messages 2000] [--size 64]
//! loadgen chat      --url ws://127.0.0.1:6000/ws --server-pid PID [--subscribers 1000] [--window 64] [--messages 2000] [--offer-deflate 1]
//! loadgen echo      --url ws://127.0.0.1:6000/echo --server-pid PID [--connections 50] [--messages 200000] [--size 64]
//! loadgen rate      --url ws://127.0.0.1:6000/ws --server-pid PID [--subscribers 1000] [--rate 10] [--messages 100] [--warm-up 2]
//! loadgen idle      --url ws://127.0.0.1:6000/ws --server-pid PID [--connections 10000] [--hold 10]
//! loadgen slow      --url ws://127.0.0.1:6000/ws --stats 127.0.0.1:7000 --server-pid PID [--subscribers 1000] [--slow 100] [--rate 200] [--messages 4000] [--size 64] [--slow-rcvbuf 4096] [--slow-mss 536]
//! loadgen churn     --url ws://127.0.0.1:6000/echo --stats 127.0.0.1:7000 --server-pid PID [--cycles 100000] [--warmup 1000] [--concurrency 32] [--source-addrs 16]
//! loadgen silent    --url ws://127.0.0.1:6000/ws --stats 127.0.0.1:7000 --server-pid PID [--connections 10000] [--evict-limit 60]
//! loadgen resume    --url ws://127.0.0.1:5002/devices/bench/events --server-pid PID [--clients 1000] [--messages 1000] [--size 64]
//! loadgen attack    --url ws://127.0.0.1:6000/echo --stats 127.0.0.1:7000 --server-pid PID [--kind none|slow-echo|pong-fragments|huge-headers|oversize] [--attackers 200] [--seconds 10] [--limit 65536] [--size 65536]
//! loadgen sse-broadcast --url ws://127.0.0.1:6000/ws --server-pid PID [--subscribers 1000] [--window 64] [--messages 2000] [--size 64] [--pairs 3] [--only ws|sse]
//! ```
//!
//! `--stats` is the server's `--stats-addr` (`GET /stats`: its own counters). Every run
//! is bounded (`--time-limit`, default 60 s) and prints one line starting with
//! `RESULT ` followed by JSON.
//!
//! One file per mode (`broadcast.rs`, `chat.rs`, `echo.rs`, `rate.rs`, `idle.rs`, `slow.rs`,
//! `churn.rs`, `silent.rs`, `sse_broadcast.rs`, `resume.rs`, `attack.rs`); the helpers they share: `args.rs`
//! (flags), `client.rs` (connections and frames), `event_stream.rs` (event-stream
//! subscribers: the `GET`, the chunked body, the events), `measure.rs` (CPU, RSS,
//! quantiles), `server_stats.rs` (the server's `/stats`).

mod args;
mod attack;
mod broadcast;
mod chat;
mod churn;
mod client;
mod echo;
mod event_stream;
mod idle;
mod measure;
mod rate;
mod resume;
mod server_stats;
mod silent;
mod slow;
mod sse_broadcast;

use std::time::Duration;

use args::Args;

fn main() {
    let (mode, args) = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let limit = Duration::from_secs(args.num("time-limit", 60));
    let result = local.block_on(&rt, async move {
        let run = async {
            match mode.as_str() {
                "broadcast" => broadcast::run(&args).await,
                "chat" => chat::run(&args).await,
                "echo" => echo::run(&args).await,
                "rate" => rate::run(&args).await,
                "idle" => idle::run(&args).await,
                "slow" => slow::run(&args).await,
                "churn" => churn::run(&args).await,
                "silent" => silent::run(&args).await,
                "sse-broadcast" => sse_broadcast::run(&args).await,
                "resume" => resume::run(&args).await,
                "attack" => attack::run(&args).await,
                _ => Err(format!(
                    "unknown mode {mode:?}; see the file header for usage"
                )),
            }
        };
        match tokio::time::timeout(limit, run).await {
            Ok(r) => r,
            Err(_) => Err(format!("time limit of {limit:?} reached")),
        }
    });
    match result {
        Ok(json) => println!("RESULT {json}"),
        Err(e) => {
            println!("RESULT {{\"error\":{e:?}}}");
            std::process::exit(1);
        }
    }
}
