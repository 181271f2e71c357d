//! A configurable server for benchmarks and the Autobahn test suite.
//!
//! `cargo run --release -p melody-tokio --example server -- [FLAGS]`; `--help` lists
//! them: `--addr`, `--shards`, `--threads`, and every `Config` setting by its name in
//! `Config::SETTINGS`. It serves:
//!
//! - `/echo`: each message, text or binary, goes back to its sender only;
//! - `/ws`: each message goes to every session (a chat room, as in `chat`);
//! - a plain GET of `/`: the chat page, talking to `/ws` (`Config::http_page`); a plain
//!   GET of any other path gets 426 Upgrade Required;
//! - with `--stats-addr HOST:PORT`, `GET /stats` there: the instance's counters as
//!   JSON (sessions, connection tasks, timer entries, `HubStats`), for load generators.
//!
//! It uses `melody_tokio::serve` directly, no HTTP framework, so that benchmarks
//! measure melody itself. The flags and handlers are shared with the other adapters'
//! `server` examples (the workspace's `examples-support` crate).
//!
//! For Autobahn's fuzzingclient, allow its big messages:
//! `--max-message-size 16777216 --buffer-size 1024`, and point it at `ws://HOST:PORT/echo`.
//! Ctrl-C shuts down gracefully and prints what shutdown did.

use std::process::ExitCode;

use examples_support::ServerOptions;
use melody_tokio::TokioRuntime;

const THREADS: &str = "runtime worker threads; 1 runs tokio's current-thread\n\
                       runtime, as a benchmark pinned to one core wants (one per core)";

fn main() -> ExitCode {
    examples_support::init_tracing();
    let options = match examples_support::server_options(THREADS) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let runtime = match options.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    match runtime {
        Ok(runtime) => examples_support::exit_code(runtime.block_on(run(options))),
        Err(e) => examples_support::exit_code(Err(format!("cannot start the runtime: {e}").into())),
    }
}

async fn run(options: ServerOptions) -> Result<(), Box<dyn std::error::Error>> {
    let melody = examples_support::server(TokioRuntime, &options)?;
    let listener = tokio::net::TcpListener::bind(&options.addr).await?;
    println!("server: listening on {}", listener.local_addr()?);
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let serve = melody_tokio::serve(&melody, listener);
    examples_support::serve_until_interrupted(&melody, serve, interrupt).await?;
    Ok(())
}
