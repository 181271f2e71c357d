//! What the examples of every adapter share. melody-tokio's examples say `mod shared;`;
//! melody-smol's and melody-async-std's include this file by path. Here are each demo's
//! handlers and page, and the `server` example's flags, handlers, `/stats` and Ctrl-C
//! shutdown; each example keeps only what is its runtime's own: start it, bind, serve.
//!
//! Each example uses part of it, so unused items are expected.
#![allow(dead_code)]

use std::error::Error;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use melody_core::{Bytes, Config, ConfigError};
use melody_driver::{Melody, Runtime};

/// The chat page; its socket is `/ws`.
pub const CHAT_PAGE: &str = include_str!("../assets/chat.html");
/// The gophers page; its socket is `/ws`.
pub const GOPHERS_PAGE: &str = include_str!("../assets/gophers.html");
/// The topics page, for `/room/NAME`; its socket is `/room/NAME/ws`.
pub const TOPICS_PAGE: &str = include_str!("../assets/topics.html");

/// The value of `--addr HOST:PORT` on the command line, or `default`.
pub fn addr(default: &str) -> String {
    std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| default.to_owned())
}

/// `config` answering plain GETs with `page` (`Config::http_page`): one port serves
/// the page and its socket, with no HTTP framework.
pub fn with_page(config: Config, page: &'static str) -> Config {
    config.http_page(Some(Bytes::from_static(page.as_bytes())))
}

// ---- chat ---------------------------------------------------------------------------

/// olahol/melody's chat: every message goes to everyone.
pub fn chat<R: Runtime>(melody: &Melody<R>) {
    let room = melody.clone();
    melody.on_message(move |_session, text| {
        let _ = room.broadcast(text);
    });
}

// ---- gophers ------------------------------------------------------------------------

/// What each gophers session keeps under the key `"gopher"`.
#[derive(Clone, Copy)]
struct Gopher {
    id: u64,
    /// `None` until the page has reported a first position.
    at: Option<(i32, i32)>,
}

/// olahol/melody's gophers: everyone's mouse pointer, live. The protocol is three
/// text lines: the server tells a new connection `iam ID` after the positions of the
/// gophers already there; then each `X Y` a page sends goes to everyone else as
/// `set ID X Y`, and a departure as `dis ID`.
pub fn gophers<R: Runtime>(melody: &Melody<R>) {
    let next_id = Arc::new(AtomicU64::new(1));
    let m = melody.clone();
    melody.on_connect(move |session| {
        let me = Gopher {
            id: next_id.fetch_add(1, Ordering::Relaxed),
            at: None,
        };
        // Show the newcomer where everyone already is, then who it is.
        for other in m.sessions() {
            if let Some(Gopher {
                id,
                at: Some((x, y)),
            }) = other.get::<Gopher>("gopher")
            {
                let _ = session.write(&format!("set {id} {x} {y}"));
            }
        }
        session.set("gopher", me);
        let _ = session.write(&format!("iam {}", me.id));
    });

    let m = melody.clone();
    melody.on_message(move |session, text| {
        let Some(mut me) = session.get::<Gopher>("gopher") else {
            return;
        };
        let mut parts = text.split_whitespace().map(str::parse::<i32>);
        let (Some(Ok(x)), Some(Ok(y)), None) = (parts.next(), parts.next(), parts.next()) else {
            return; // not "X Y": ignore it
        };
        me.at = Some((x, y));
        session.set("gopher", me);
        let _ = m.broadcast_others(&format!("set {} {x} {y}", me.id), session);
    });

    let m = melody.clone();
    melody.on_disconnect(move |session| {
        if let Some(me) = session.get::<Gopher>("gopher") {
            let _ = m.broadcast_others(&format!("dis {}", me.id), session);
        }
    });
}

// ---- topics -------------------------------------------------------------------------

/// The room of a socket path: `NAME` for `/room/NAME/ws`, else `lobby`.
pub fn room_of(path: &str) -> &str {
    path.strip_prefix("/room/")
        .and_then(|rest| rest.strip_suffix("/ws"))
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .unwrap_or("lobby")
}

/// Chat rooms as topics: a session joins the room its socket path names
/// ([`room_of`]), and each message it sends is published to that room.
pub fn topics<R: Runtime>(melody: &Melody<R>) {
    let m = melody.clone();
    melody.on_connect(move |session| {
        let room = room_of(session.request().uri().path()).to_owned();
        session.subscribe(&room);
        let here = m.subscriber_count(&room);
        let _ = session.write(&format!("welcome to {room}: {here} here"));
        let _ = m.publish_others(&room, "someone joined", session);
        session.set("room", room);
    });

    let m = melody.clone();
    melody.on_message(move |session, text| {
        if let Some(room) = session.get::<String>("room") {
            let _ = m.publish(&room, text);
        }
    });

    let m = melody.clone();
    melody.on_disconnect(move |session| {
        if let Some(room) = session.get::<String>("room") {
            let _ = m.publish_others(&room, "someone left", session);
        }
    });
}

// ---- server -------------------------------------------------------------------------

/// The `server` example's command line.
pub struct ServerOptions {
    /// `--addr`.
    pub addr: String,
    /// `--shards`; `None`: one per core.
    pub shards: Option<usize>,
    /// `--threads`; `None`: one per core.
    pub threads: Option<usize>,
    /// `--stats-addr`: where to answer `GET /stats` (see [`serve_stats`]); `None`: nowhere.
    pub stats_addr: Option<String>,
    /// Every other flag, by its name in `Config::SETTINGS`.
    pub config: Config,
}

/// The `server` example's flags; `threads` says what `--threads` means on this
/// runtime. Prints the usage for `--help` and a message for a bad flag, and then
/// `Err` holds the exit code.
pub fn server_options(threads: &str) -> Result<ServerOptions, ExitCode> {
    match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => Ok(options),
        Ok(None) => {
            print!("{}", usage(threads));
            Err(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("server: {message} (see --help)");
            Err(ExitCode::from(2))
        }
    }
}

fn usage(threads: &str) -> String {
    let mut text = String::from("usage: server [FLAGS]\n\n");
    let mut line = |flag: String, help: &str| {
        let help = help.replace('\n', &format!("\n{:30}", ""));
        text.push_str(&format!("  {flag:28}{help}\n"));
    };
    line(
        "--addr HOST:PORT".into(),
        "listen address (127.0.0.1:5004; port 0 picks a free one)",
    );
    for s in Config::SETTINGS {
        line(format!("--{} {}", s.name, s.value), s.help);
    }
    line("--shards N".into(), "hub shards (one per core)");
    line(
        "--stats-addr HOST:PORT".into(),
        "answer GET /stats there with the counters as JSON (off)",
    );
    line("--threads N".into(), threads);
    line("--help".into(), "this text");
    text
}

/// Parses the flags; `Ok(None)` for `--help`.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<ServerOptions>, String> {
    let mut options = ServerOptions {
        addr: "127.0.0.1:5004".to_owned(),
        shards: None,
        threads: None,
        stats_addr: None,
        config: Config::default(),
    };
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(None);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        // Every other flag takes a value, as `--flag VALUE` or `--flag=VALUE`.
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => match args.next() {
                Some(value) => (flag.to_owned(), value),
                None => return Err(format!("{arg} needs a value")),
            },
        };
        let number = || {
            value
                .parse::<usize>()
                .map(|n| n.max(1))
                .map_err(|_| format!("--{name}: {value:?} is not a number"))
        };
        match name.as_str() {
            "addr" => options.addr = value.clone(),
            "threads" => options.threads = Some(number()?),
            "shards" => options.shards = Some(number()?),
            "stats-addr" => options.stats_addr = Some(value.clone()),
            _ => options.config.set(&name, &value).map_err(|e| match e {
                ConfigError::UnknownSetting(_) => format!("unknown flag --{name}"),
                other => other.to_string(),
            })?,
        }
    }
    // Report a bad combination (say, a ping period past the pong wait) up front.
    options.config.validate().map_err(|e| e.to_string())?;
    Ok(Some(options))
}

/// The server's instance on runtime `rt`. It serves
///
/// - `/echo`: each message, text or binary, goes back to its sender only;
/// - `/ws`: each message goes to every session (a chat room, as in `chat`);
/// - any plain GET: the chat page, talking to `/ws` (`Config::http_page`);
/// - with `--stats-addr`, `GET /stats` there: the counters ([`serve_stats`]).
pub fn server<R: Runtime>(rt: R, options: &ServerOptions) -> Result<Melody<R>, Box<dyn Error>> {
    let shards = options.shards.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let config = with_page(options.config.clone(), CHAT_PAGE);
    let melody = Melody::with_shards(rt, config, shards)?;

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
    if let Some(addr) = &options.stats_addr {
        let at = serve_stats(&melody, addr)?;
        println!("server: stats on http://{at}/stats");
    }
    Ok(melody)
}

// ---- stats --------------------------------------------------------------------------

/// Answers `GET /stats` on `addr` with `melody`'s counters as one JSON object, for load
/// generators that check the server's own counts (sessions, tasks, timers, drops)
/// against what they saw. It runs on a plain thread with blocking sockets, so it is the
/// same beside every runtime and costs nothing between requests. Returns the address.
pub fn serve_stats<R: Runtime>(melody: &Melody<R>, addr: &str) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let at = listener.local_addr()?;
    let melody = melody.clone();
    std::thread::Builder::new()
        .name("stats".into())
        .spawn(move || {
            // A client that fails or misbehaves spoils only its own answer.
            for stream in listener.incoming().flatten() {
                let _ = answer_stats(&melody, stream);
            }
        })?;
    Ok(at)
}

/// One request, one answer, then close. The request is read up to its blank line
/// (bounded): closing with unread bytes would reset the connection under the answer.
fn answer_stats<R: Runtime>(melody: &Melody<R>, mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    let mut request = [0u8; 1024];
    let mut len = 0;
    while len < request.len() && !request[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut request[len..])? {
            0 => break,
            n => len += n,
        }
    }
    let (status, body) = if request[..len].starts_with(b"GET /stats ") {
        ("200 OK", stats_json(melody))
    } else {
        (
            "404 Not Found",
            r#"{"error":"only GET /stats is served here"}"#.to_owned(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The counters: `HubStats` summed over shards, plus what is alive right now.
fn stats_json<R: Runtime>(melody: &Melody<R>) -> String {
    let stats = melody.stats();
    format!(
        "{{\"sessions\":{},\"connection_tasks\":{},\"timer_entries\":{},\"opened\":{},\
         \"connected\":{},\"rejected\":{},\"finished\":{},\"dropped\":{}}}",
        melody.len(),
        melody.connection_tasks(),
        melody.timer_entries(),
        stats.opened,
        stats.connected,
        stats.rejected,
        stats.finished,
        stats.dropped
    )
}

/// Runs `serve` until `interrupt` resolves (Ctrl-C), then shuts `melody` down
/// gracefully and prints what shutdown did. Returns early if `serve` fails.
pub async fn serve_until_interrupted<R: Runtime>(
    melody: &Melody<R>,
    serve: impl Future<Output = io::Result<()>>,
    interrupt: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut serve = pin!(serve);
    let mut interrupt = pin!(interrupt);
    let interrupted = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = serve.as_mut().poll(cx) {
            return Poll::Ready(result.map(|()| false));
        }
        interrupt.as_mut().poll(cx).map(|()| Ok(true))
    })
    .await?;
    if interrupted {
        let report = melody.shutdown(Duration::from_secs(5)).await;
        println!("server: shut down: {report:?}");
    }
    Ok(())
}

/// The process's exit code for what `main` returned.
pub fn exit_code(result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}
