//! A chat room: every message goes to everyone (olahol/melody's chat example).
//!
//! `cargo run --release -p melody-async-std --example chat`, then open the printed URL
//! in two browser tabs. `--addr HOST:PORT` picks another address (default
//! 127.0.0.1:5000).
//!
//! One port serves both: a plain GET gets the page (`Config::http_page`), the page's
//! WebSocket upgrade becomes a session. The handlers and the page are melody-tokio's
//! (`melody-tokio/examples/shared`), shared by every adapter's examples.

#[path = "../../melody-tokio/examples/shared/mod.rs"]
mod shared;

use async_std::net::TcpListener;
use melody_async_std::{Config, Melody};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = shared::with_page(Config::default(), shared::CHAT_PAGE);
    let listener = TcpListener::bind(shared::addr("127.0.0.1:5000")).await?;
    let melody = Melody::with_config(config)?;
    shared::chat(&melody);
    println!(
        "chat: open http://{}/ in two browser tabs",
        listener.local_addr()?
    );
    Ok(melody_async_std::serve(&melody, listener).await?)
}
