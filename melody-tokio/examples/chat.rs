//! A chat room: every message goes to everyone (olahol/melody's chat example).
//!
//! `cargo run --release -p melody-tokio --example chat`, then open the printed URL in
//! two browser tabs. `--addr HOST:PORT` picks another address (default 127.0.0.1:5000);
//! `--compression off|shared|dedicated` turns on permessage-deflate (off by default).
//!
//! One port serves both: a plain GET of `/` gets the page (`Config::http_page`), the page's
//! WebSocket upgrade becomes a session. For routing and a real site, see the `axum`
//! example. The handlers and the page are shared with the other adapters' examples
//! (the workspace's `examples-support` crate).

use melody_tokio::{Config, Melody};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let addr = examples_support::addr("127.0.0.1:5000");
    let config = examples_support::compression(Config::default())?;
    let melody = Melody::with_config(examples_support::with_page(
        config,
        &["/"],
        examples_support::CHAT_PAGE,
    ))?;
    examples_support::chat(&melody);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "chat: open http://{}/ in two browser tabs",
        listener.local_addr()?
    );
    melody_tokio::serve(&melody, listener).await?;
    Ok(())
}
