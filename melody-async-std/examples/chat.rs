//! A chat room: every message goes to everyone (olahol/melody's chat example).
//!
//! `cargo run --release -p melody-async-std --example chat`, then open the printed URL
//! in two browser tabs. `--addr HOST:PORT` picks another address (default
//! 127.0.0.1:5000); `--compression off|shared|dedicated` turns on permessage-deflate
//! (off by default).
//!
//! One port serves both: a plain GET of `/` gets the page (`Config::http_page`), the page's
//! WebSocket upgrade becomes a session. The handlers and the page come from
//! the workspace's `examples-support` crate, shared by every adapter's examples.

use async_std::net::TcpListener;
use melody_async_std::{Config, Melody};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let config = examples_support::compression(Config::default())?;
    let config = examples_support::with_page(config, &["/"], examples_support::CHAT_PAGE);
    let listener = TcpListener::bind(examples_support::addr("127.0.0.1:5000")).await?;
    let melody = Melody::with_config(config)?;
    examples_support::chat(&melody);
    println!(
        "chat: open http://{}/ in two browser tabs",
        listener.local_addr()?
    );
    Ok(melody_async_std::serve(&melody, listener).await?)
}
