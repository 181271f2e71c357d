//! A chat room: every message goes to everyone (olahol/melody's chat example).
//!
//! `cargo run --release -p melody-smol --example chat`, then open the printed URL in
//! two browser tabs. `--addr HOST:PORT` picks another address (default 127.0.0.1:5000);
//! `--compression off|shared|dedicated` turns on permessage-deflate (off by default).
//!
//! One port serves both: a plain GET of `/` gets the page (`Config::http_page`), the page's
//! WebSocket upgrade becomes a session. The handlers and the page come from
//! the workspace's `examples-support` crate, shared by every adapter's examples.

use melody_smol::{Config, Melody};
use smol::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let config = examples_support::compression(Config::default())?;
    let melody = Melody::with_config(examples_support::with_page(
        config,
        &["/"],
        examples_support::CHAT_PAGE,
    ))?;
    examples_support::chat(&melody);
    smol::block_on(async {
        let listener = TcpListener::bind(examples_support::addr("127.0.0.1:5000")).await?;
        let url = format!("http://{}/", listener.local_addr()?);
        println!("chat: open {url} in two browser tabs");
        melody_smol::serve(&melody, listener).await
    })?;
    Ok(())
}
