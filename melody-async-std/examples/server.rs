//! A configurable server for benchmarks and the Autobahn test suite.
//!
//! `cargo run --release -p melody-async-std --example server -- [FLAGS]`; `--help`
//! lists them, the same as melody-tokio's `server`: `--addr`, `--shards`, `--threads`,
//! and every `Config` setting by its name in `Config::SETTINGS`. It serves `/echo`
//! (each message back to its sender), `/ws` (a chat room) and the chat page for plain
//! GETs.
//!
//! `--threads N` sets `ASYNC_STD_THREAD_COUNT`, the size of async-std's global
//! executor, which it reads once, when it starts (one per core by default). The
//! accept loop runs on that executor too: the main thread only waits for it, and does
//! not poll async-std's reactor (see `run_on_executor`).
//!
//! For Autobahn's fuzzingclient: `--max-message-size 16777216 --buffer-size 1024`, and
//! `ws://HOST:PORT/echo`. Ctrl-C shuts down gracefully and prints what shutdown did.
//! The flags and handlers are shared with every adapter's `server`
//! (the workspace's `examples-support` crate).

use std::process::ExitCode;

use async_signal::{Signal, Signals};
use async_std::stream::StreamExt;
use examples_support::ServerOptions;
use melody_async_std::AsyncStdRuntime;

const THREADS: &str = "async-std executor threads (ASYNC_STD_THREAD_COUNT; one per core)";

fn main() -> ExitCode {
    examples_support::init_tracing();
    match examples_support::server_options(THREADS) {
        Ok(options) => {
            if let Some(n) = options.threads {
                // Before async-std starts: nothing has run on it yet.
                std::env::set_var("ASYNC_STD_THREAD_COUNT", n.to_string());
            }
            examples_support::exit_code(run_on_executor(options))
        }
        Err(code) => code,
    }
}

/// Runs the server as a task of async-std's executor and waits for it without
/// polling the reactor. Under `async_std::task::block_on` the main thread polls the
/// reactor too, whenever the accept loop waits; with `--threads 1` that is a second
/// thread taking the reactor's events and waking the executor's thread for each,
/// which made echo cost up to 1.6 times as much (see `melody_async_std::serve`).
fn run_on_executor(options: ServerOptions) -> Result<(), Box<dyn std::error::Error>> {
    let served = async_std::task::spawn(async { run(options).await.map_err(|e| e.to_string()) });
    Ok(futures_lite::future::block_on(served)?)
}

async fn run(options: ServerOptions) -> Result<(), Box<dyn std::error::Error>> {
    let listener = async_std::net::TcpListener::bind(&options.addr).await?;
    let melody = examples_support::server(AsyncStdRuntime, &options)?;
    println!("server: listening on {}", listener.local_addr()?);
    let mut signals = Signals::new([Signal::Int])?;
    let serve = melody_async_std::serve(&melody, listener);
    let interrupt = async {
        signals.next().await;
    };
    Ok(examples_support::serve_until_interrupted(&melody, serve, interrupt).await?)
}
