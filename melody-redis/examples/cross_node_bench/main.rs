//! Cross-node delivery against same-node delivery, in one sitting: deliveries per
//! second and latency (p50/p99) of `publish` through a Redis backplane, next to the
//! same publish on one node.
//!
//! ```sh
//! redis-server --port 6390 --bind 127.0.0.1 --save "" &
//! cargo run --release -p melody-redis --example cross_node_bench -- --redis redis://127.0.0.1:6390/
//! ```
//!
//! Three melody-tokio nodes run in this process, one runtime thread each: `solo`
//! without a backplane, and `a` and `b` sharing Redis. Receivers (blocking WebSocket
//! clients, one thread each) subscribe to a topic on `solo` and on `a`; a publisher
//! client sends 64-byte messages carrying their send time:
//!
//! - `solo → solo`: same node, no backplane (the baseline);
//! - `a → a`: same node with the backplane attached (the message also goes to Redis,
//!   and `a` ignores its echo);
//! - `b → a`: across nodes, through Redis.
//!
//! Latency is measured one message at a time (the next is sent once the first receiver
//! has the previous one); throughput with a window of messages in flight. Each pass runs
//! twice, interleaved, so that drift in machine load shows.
//!
//! With `--history`, the topic keeps a history on every node (its last 1,000
//! messages): on `solo` in memory, on `a` and `b` in a Redis stream, each publish
//! going through the append script and coming back to every node, its own included,
//! at its position. Compare with a run without it.

mod clients;
mod nodes;
mod report;

use std::time::{Duration, Instant};

use clients::{Publisher, Receivers};
use nodes::Node;

struct Args {
    redis: String,
    receivers: usize,
    latency_samples: usize,
    messages: usize,
    window: usize,
    history: bool,
}

fn args() -> Args {
    let value = |flag: &str| std::env::args().skip_while(|a| a != flag).nth(1);
    let number =
        |flag: &str, default: usize| value(flag).and_then(|v| v.parse().ok()).unwrap_or(default);
    Args {
        redis: value("--redis")
            .or_else(|| std::env::var("MELODY_REDIS_URL").ok())
            .unwrap_or_else(|| "redis://127.0.0.1:6379/".to_owned()),
        receivers: number("--receivers", 10),
        latency_samples: number("--latency-samples", 2000),
        messages: number("--messages", 20_000),
        window: number("--window", 64),
        history: std::env::args().any(|a| a == "--history"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let args = args();
    let origin = Instant::now();
    let solo = Node::start(None, args.history)?;
    let a = Node::start(Some(&args.redis), args.history)?;
    let b = Node::start(Some(&args.redis), args.history)?;
    let on_solo = Receivers::start(&solo, args.receivers, origin)?;
    let on_a = Receivers::start(&a, args.receivers, origin)?;
    a.wait_listening(Duration::from_secs(10))?;
    b.wait_listening(Duration::from_secs(10))?;

    let passes: [(&str, &Node, &Receivers); 3] = [
        ("solo → solo (one node, no backplane)", &solo, &on_solo),
        ("a → a (same node, backplane attached)", &a, &on_a),
        ("b → a (across nodes, through Redis)", &b, &on_a),
    ];
    let mut results = Vec::new();
    for round in 1..=2 {
        for (name, publisher_node, receivers) in passes {
            let mut publisher = Publisher::connect(publisher_node, origin)?;
            let latency = publisher.latency(receivers, args.latency_samples)?;
            let throughput = publisher.throughput(receivers, args.messages, args.window)?;
            let result = report::Pass {
                name,
                round,
                latency,
                throughput,
            };
            result.print_json();
            results.push(result);
        }
    }
    report::print_table(&results);
    let (sa, sb) = (a.redis_stats(), b.redis_stats());
    println!("\nnode a backplane: {sa:?}\nnode b backplane: {sb:?}");
    Ok(())
}
