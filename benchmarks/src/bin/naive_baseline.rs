//! The naive baseline (a second row only): a plain tokio-tungstenite server, written the way its own examples
//! write one — a task per connection, a map of unbounded channels, and every message
//! cloned into each peer's channel. `/ws` broadcasts to all, `/echo` echoes.
//!
//! `cargo run --release -p benchmarks --bin naive_baseline -- --addr 127.0.0.1:6000`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_channel::mpsc::{unbounded, UnboundedSender};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

type Peers = Arc<Mutex<HashMap<SocketAddr, UnboundedSender<Message>>>>;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:6000".to_owned());
    // One thread: the benchmark pins the server to one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("naive baseline listening on {}", listener.local_addr()?);
        let peers: Peers = Arc::default();
        loop {
            let (stream, remote) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, remote, peers.clone()));
        }
    })
}

async fn serve(stream: TcpStream, remote: SocketAddr, peers: Peers) {
    let mut path = String::new();
    // The signature is tungstenite's; its large error type is not ours to box.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    if path == "/echo" {
        while let Some(Ok(msg)) = source.next().await {
            if (msg.is_text() || msg.is_binary()) && sink.send(msg).await.is_err() {
                break;
            }
        }
        return;
    }
    let (tx, rx) = unbounded::<Message>();
    if let Ok(mut p) = peers.lock() {
        p.insert(remote, tx);
    }
    // As tokio-tungstenite's example server: `forward` feeds the sink and flushes only
    // when the channel is empty, so queued messages share a write.
    let writer = tokio::spawn(async move {
        let _ = rx.map(Ok).forward(sink).await;
    });
    while let Some(Ok(msg)) = source.next().await {
        if msg.is_text() || msg.is_binary() {
            if let Ok(p) = peers.lock() {
                for tx in p.values() {
                    let _ = tx.unbounded_send(msg.clone());
                }
            }
        }
    }
    if let Ok(mut p) = peers.lock() {
        p.remove(&remote);
    }
    writer.abort();
}
