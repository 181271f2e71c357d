//! The baseline every ratio in BENCHMARKS.md is quoted against: a tokio-tungstenite
//! server written for speed, on a current-thread runtime.
//!
//! - `/ws`: every text or binary message a session sends goes to every `/ws` session
//!   (the sender too) through one `tokio::sync::broadcast` channel, so a message is
//!   stored once and each session's writer clones a handle to it. A writer hands the
//!   sink everything already queued and flushes once, so a backlog shares one write.
//!   A session more than `--capacity` messages behind skips what it missed (the
//!   benchmarks count losses on the client side).
//! - `/echo`: every text or binary message goes back to its sender, flushed at once.
//!
//! `cargo run --release -p benchmarks --bin baseline -- --addr 127.0.0.1:6000 [--capacity 1024]`
//!
//! `benchmarks/standard.sh` can run an outside reference server beside it in the same
//! sitting (`REFERENCE=...`), to show this baseline is at least as strong.

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::{self, Receiver, Sender};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;

#[derive(Clone, Copy, PartialEq)]
enum Route {
    Broadcast,
    Echo,
}

fn flag(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() -> std::io::Result<()> {
    let addr = flag("--addr").unwrap_or_else(|| "127.0.0.1:6000".to_owned());
    let capacity = flag("--capacity")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1024);
    // One thread: the benchmark pins the server to one core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("baseline listening on {}", listener.local_addr()?);
        let (hub, _) = broadcast::channel::<Message>(capacity);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, hub.clone()));
        }
    })
}

async fn serve(stream: TcpStream, hub: Sender<Message>) {
    let mut route = None;
    // The signature is tungstenite's; its large error type is not ours to box.
    #[allow(clippy::result_large_err)]
    let pick_route = |request: &Request, response: Response| {
        route = match request.uri().path() {
            "/ws" => Some(Route::Broadcast),
            "/echo" => Some(Route::Echo),
            _ => None,
        };
        if route.is_some() {
            return Ok(response);
        }
        let mut not_found = ErrorResponse::new(None);
        *not_found.status_mut() = StatusCode::NOT_FOUND;
        Err(not_found)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, pick_route).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    match route {
        Some(Route::Echo) => {
            while let Some(Ok(message)) = source.next().await {
                let data = message.is_text() || message.is_binary();
                if data && sink.send(message).await.is_err() {
                    break;
                }
            }
        }
        Some(Route::Broadcast) => {
            let writer = tokio::spawn(write_broadcasts(sink, hub.subscribe()));
            while let Some(Ok(message)) = source.next().await {
                match message {
                    Message::Text(_) | Message::Binary(_) => {
                        let _ = hub.send(message);
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
            writer.abort();
        }
        None => {}
    }
}

/// Feeds the sink every message already queued, then flushes once.
async fn write_broadcasts(mut sink: Sink, mut queue: Receiver<Message>) {
    loop {
        let first = match queue.recv().await {
            Ok(message) => message,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        if sink.feed(first).await.is_err() {
            return;
        }
        loop {
            match queue.try_recv() {
                Ok(message) => {
                    if sink.feed(message).await.is_err() {
                        return;
                    }
                }
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}
