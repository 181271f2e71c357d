//! A chat room: every message goes to everyone (olahol/melody's chat example).
//!
//! `cargo run --release -p melody-tokio --example chat`, then open the printed URL in
//! two browser tabs. `--addr HOST:PORT` picks another address (default 127.0.0.1:5000).
//!
//! One port serves both: a plain GET gets the page (`Config::http_page`), the page's
//! WebSocket upgrade becomes a session. For routing and a real site, see the `axum`
//! example.

use melody_tokio::{Bytes, Config, Melody};

const PAGE: &str = include_str!("assets/chat.html");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".to_owned());

    let config = Config::default().http_page(Some(Bytes::from_static(PAGE.as_bytes())));
    let melody = Melody::with_config(config)?;
    let room = melody.clone();
    melody.on_message(move |_session, text| {
        let _ = room.broadcast(text);
    });

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "chat: open http://{}/ in two browser tabs",
        listener.local_addr()?
    );
    melody_tokio::serve(&melody, listener).await?;
    Ok(())
}
