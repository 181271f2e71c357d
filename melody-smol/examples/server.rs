//! A configurable server for benchmarks and the Autobahn test suite.
//!
//! `cargo run --release -p melody-smol --example server -- [FLAGS]`; `--help` lists
//! them, the same as melody-tokio's `server`: `--addr`, `--shards`, `--threads`, and
//! every `Config` setting by its name in `Config::SETTINGS`. It serves `/echo` (each
//! message back to its sender), `/ws` (a chat room) and the chat page for a plain GET of `/`.
//!
//! `--threads N` runs one smol `Executor` on N threads (the main thread and N - 1
//! more; one per core by default), handed to melody as `SmolRuntime::with_executor`.
//!
//! For Autobahn's fuzzingclient: `--max-message-size 16777216 --buffer-size 1024`, and
//! `ws://HOST:PORT/echo`. Ctrl-C shuts down gracefully and prints what shutdown did.
//! The flags and handlers are shared with every adapter's `server`
//! (the workspace's `examples-support` crate).

use std::process::ExitCode;
use std::sync::Arc;

use async_signal::{Signal, Signals};
use examples_support::ServerOptions;
use melody_smol::SmolRuntime;
use smol::stream::StreamExt;
use smol::Executor;

const THREADS: &str = "threads running the executor (one per core)";

fn main() -> ExitCode {
    examples_support::init_tracing();
    let options = match examples_support::server_options(THREADS) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let threads = options.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let executor = Arc::new(Executor::new());
    for _ in 1..threads {
        let executor = executor.clone();
        std::thread::spawn(move || smol::block_on(executor.run(smol::future::pending::<()>())));
    }
    let runtime = SmolRuntime::with_executor(executor.clone());
    examples_support::exit_code(smol::block_on(executor.run(run(runtime, options))))
}

async fn run(
    runtime: SmolRuntime,
    options: ServerOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let melody = examples_support::server(runtime, &options)?;
    let listener = smol::net::TcpListener::bind(&options.addr).await?;
    println!("server: listening on {}", listener.local_addr()?);
    let mut signals = Signals::new([Signal::Int])?;
    let interrupt = async {
        signals.next().await;
    };
    examples_support::serve_until_interrupted(
        &melody,
        melody_smol::serve(&melody, listener),
        interrupt,
    )
    .await?;
    Ok(())
}
