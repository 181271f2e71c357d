//! Test harness shared by the test files: a melody server on a real loopback socket,
//! blocking tungstenite clients, and bounded polling.
//!
//! Each test file uses part of it, so unused items are expected.
#![allow(dead_code)]

pub mod http1;

use std::fmt::Debug;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use melody_tokio::{Config, Melody};
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// Every blocking read and write in the tests gives up after this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A server: its own tokio runtime, a melody instance, and `serve` on a loopback port.
pub struct Server {
    pub rt: tokio::runtime::Runtime,
    pub melody: Melody,
    pub addr: SocketAddr,
    pub serving: tokio::task::JoinHandle<io::Result<()>>,
}

impl Server {
    pub fn start(config: Config) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let melody = Melody::with_config(config).expect("valid config");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let m = melody.clone();
        let serving = rt.spawn(async move { melody_tokio::serve(&m, listener).await });
        Server {
            rt,
            melody,
            addr,
            serving,
        }
    }

    /// A connected client on `path` (which may carry a query string).
    pub fn connect(&self, path: &str) -> Client {
        try_connect(self.addr, path).expect("WebSocket handshake")
    }

    /// The one session whose upgrade request had this query string.
    pub fn session_with_query(&self, query: &str) -> melody_tokio::Session {
        let mut found = None;
        wait_until(&format!("a session for ?{query}"), || {
            found = self
                .melody
                .sessions()
                .into_iter()
                .find(|s| s.request().uri().query() == Some(query));
            found.is_some()
        });
        found.unwrap()
    }
}

pub type Client = WebSocket<TcpStream>;

pub fn try_connect(addr: SocketAddr, path: &str) -> Result<Client, String> {
    let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    tungstenite::client::client(format!("ws://{addr}{path}"), stream)
        .map(|(ws, _response)| ws)
        .map_err(|e| e.to_string())
}

/// The next data message, as `t:TEXT` or `b:BYTES` (binary shown as lossy UTF-8), so
/// expectations read as plain lists. Pings are skipped (tungstenite answers them).
pub fn recv(client: &mut Client) -> String {
    loop {
        match client.read().expect("read a message") {
            Message::Text(text) => return format!("t:{text}"),
            Message::Binary(data) => return format!("b:{}", String::from_utf8_lossy(&data)),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a data message, got {other:?}"),
        }
    }
}

/// Reads data messages up to and including `last`; returns them all.
pub fn recv_until(client: &mut Client, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let message = recv(client);
        let done = message == last;
        got.push(message);
        if done {
            return got;
        }
    }
}

/// Reads until the server's close frame, skipping data; returns its code and reason.
/// tungstenite answers the close, which lets the server finish the session.
pub fn recv_close(client: &mut Client) -> (u16, String) {
    loop {
        match client.read().expect("read until the close frame") {
            Message::Close(Some(CloseFrame { code, reason })) => {
                // Flush our answering close frame; the server may already be gone.
                let _ = client.flush();
                return (u16::from(code), reason.to_string());
            }
            Message::Close(None) => return (1005, String::new()),
            _ => {}
        }
    }
}

/// Polls `done` every 10 ms for at most 10 s; panics naming `what` if it never holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

/// A log of what handlers saw, shared with the test thread.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, entry: &str) -> usize {
        self.entries().iter().filter(|e| *e == entry).count()
    }

    /// Waits until the log holds `entry`.
    pub fn wait_for(&self, entry: &str) {
        wait_until(&format!("log entry {entry:?}"), || {
            self.entries().iter().any(|e| e == entry)
        });
    }
}

impl Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.entries().fmt(f)
    }
}
