//! A chat room: every message goes to everyone (olahol/melody's chat example).
//!
//! `cargo run --release -p melody-tokio --example chat`, then open the printed URL in
//! two browser tabs. `--addr HOST:PORT` picks another address (default 127.0.0.1:5000).
//!
//! The page and the WebSocket share one port through axum; melody-tokio's `serve`
//! alone would only speak WebSocket.

use axum::extract::{Request, State};
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use melody_tokio::Melody;

const PAGE: &str = include_str!("assets/chat.html");

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".to_owned());

    let melody = Melody::new();
    let room = melody.clone();
    melody.on_message(move |_session, text| {
        let _ = room.broadcast(text);
    });

    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/ws", get(upgrade))
        .with_state(melody);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "chat: open http://{}/ in two browser tabs",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}

async fn upgrade(State(melody): State<Melody>, request: Request) -> Response {
    melody_tokio::axum::handle_request(&melody, request)
}
