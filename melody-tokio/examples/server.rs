//! A configurable server for benchmarks and the Autobahn test suite.
//!
//! `cargo run --release -p melody-tokio --example server -- [FLAGS]`; `--help` lists
//! them. It serves:
//!
//! - `/echo`: each message, text or binary, goes back to its sender only;
//! - `/ws`: each message goes to every session (a chat room, as in `chat`);
//! - any plain GET: the chat page, talking to `/ws` (`Config::http_page`).
//!
//! It uses `melody_tokio::serve` directly, no HTTP framework, so that benchmarks
//! measure melody itself.
//!
//! For Autobahn's fuzzingclient, allow its big messages:
//! `--max-message-size 16777216 --buffer-size 1024`, and point it at `ws://HOST:PORT/echo`.
//! Ctrl-C shuts down gracefully and prints what shutdown did.

use std::process::ExitCode;
use std::time::Duration;

use melody_tokio::{Bytes, Config, DropPolicy, Melody, OriginPolicy, TokioRuntime};

const PAGE: &str = include_str!("assets/chat.html");

const USAGE: &str = "\
usage: server [FLAGS]

  --addr HOST:PORT            listen address (127.0.0.1:5004; port 0 picks a free one)
  --max-message-size BYTES    largest incoming message (65536)
  --buffer-size N             outbox bound per session, in messages (256)
  --buffer-bytes BYTES        outbox bound per session, in bytes (none)
  --drop-policy P             newest | oldest | disconnect: what a full outbox does (newest)
  --ping-period-ms MS         ping interval (54000)
  --pong-wait-ms MS           how long a peer may stay silent after a ping (60000)
  --write-wait-ms MS          how long a peer may take none of our bytes (10000)
  --handshake-timeout-ms MS   time allowed for the upgrade (10000)
  --close-timeout-ms MS       time allowed for the peer's close frame (5000)
  --max-handshake-size BYTES  largest upgrade request (8192)
  --read-buffer-size BYTES    initial per-session read buffer (512)
  --timer-granularity-ms MS   resolution of deadlines (100)
  --max-sessions N            refuse upgrades past N open sessions with 503 (unlimited)
  --origin P                  same | any | a comma-separated list of allowed origins (same)
  --subprotocol NAME          a subprotocol to offer; repeat for more (none)
  --shards N                  hub shards (one per core)
  --threads N                 runtime worker threads; 1 runs tokio's current-thread
                              runtime, as a benchmark pinned to one core wants (one per core)
  --help                      this text
";

struct Options {
    addr: String,
    shards: Option<usize>,
    threads: Option<usize>,
    config: Config,
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("server: {message} (see --help)");
            return ExitCode::from(2);
        }
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
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), Box<dyn std::error::Error>> {
    let shards = options.shards.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // A plain GET gets the chat page; upgrades to any path become sessions.
    let config = options
        .config
        .http_page(Some(Bytes::from_static(PAGE.as_bytes())));
    let melody = Melody::with_shards(TokioRuntime, config, shards)?;

    // `/echo` answers the sender; `/ws` is a room. The path is read per message: it is
    // one string comparison, and keeps the two endpoints on one instance.
    let m = melody.clone();
    melody.on_message(move |session, text| {
        if session.request().uri().path() == "/echo" {
            let _ = session.write(text);
        } else {
            let _ = m.broadcast(text);
        }
    });
    let m = melody.clone();
    melody.on_message_binary(move |session, data| {
        if session.request().uri().path() == "/echo" {
            let _ = session.write_binary(data);
        } else {
            let _ = m.broadcast_binary(data);
        }
    });

    let listener = tokio::net::TcpListener::bind(&options.addr).await?;
    println!("server: listening on {}", listener.local_addr()?);

    let stop = melody.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let report = stop.shutdown(Duration::from_secs(5)).await;
        println!("server: shut down: {report:?}");
    });
    // `serve` returns once shutdown begins; wait for the report to print.
    melody_tokio::serve(&melody, listener).await?;
    while !melody.is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Parses the flags; `Ok(None)` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        addr: "127.0.0.1:5004".to_owned(),
        shards: None,
        threads: None,
        config: Config::default(),
    };
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        // Every other flag takes a value, as `--flag VALUE` or `--flag=VALUE`.
        let (flag, value) = match flag.split_once('=') {
            Some((f, v)) => (f.to_owned(), v.to_owned()),
            None => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                (flag, value)
            }
        };
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        let millis = || number().map(|ms| Duration::from_millis(ms as u64));
        let c = std::mem::take(&mut options.config);
        options.config = match flag.as_str() {
            "--addr" => {
                options.addr = value.clone();
                c
            }
            "--threads" => {
                options.threads = Some(number()?.max(1));
                c
            }
            "--shards" => {
                options.shards = Some(number()?);
                c
            }
            "--max-message-size" => c.max_message_size(number()?),
            "--buffer-size" => c.message_buffer_size(number()?),
            "--buffer-bytes" => c.message_buffer_bytes(Some(number()?)),
            "--drop-policy" => c.drop_policy(match value.as_str() {
                "newest" => DropPolicy::DropNewest,
                "oldest" => DropPolicy::DropOldest,
                "disconnect" => DropPolicy::Disconnect,
                other => return Err(format!("--drop-policy: unknown policy {other:?}")),
            }),
            "--ping-period-ms" => c.ping_period(millis()?),
            "--pong-wait-ms" => c.pong_wait(millis()?),
            "--write-wait-ms" => c.write_wait(millis()?),
            "--handshake-timeout-ms" => c.handshake_timeout(millis()?),
            "--close-timeout-ms" => c.close_timeout(millis()?),
            "--max-handshake-size" => c.max_handshake_size(number()?),
            "--read-buffer-size" => c.read_buffer_size(number()?),
            "--timer-granularity-ms" => c.timer_granularity(millis()?),
            "--max-sessions" => c.max_sessions(Some(number()?)),
            "--origin" => c.origin_policy(match value.as_str() {
                "same" => OriginPolicy::SameOrigin,
                "any" => OriginPolicy::Any,
                list => OriginPolicy::AllowList(list.split(',').map(str::to_owned).collect()),
            }),
            "--subprotocol" => {
                let mut list = c.subprotocols.clone();
                list.push(value.clone());
                c.subprotocols(list)
            }
            other => return Err(format!("unknown flag {other}")),
        };
    }
    // Report a bad combination (say, a ping period past the pong wait) up front.
    options.config.validate().map_err(|e| e.to_string())?;
    Ok(Some(options))
}
