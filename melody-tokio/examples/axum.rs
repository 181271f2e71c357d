//! A page and a WebSocket endpoint on one port with axum, keys attached at upgrade
//! (olahol/melody's `HandleRequestWithKeys`): each session learns its name from the
//! query string before `on_connect` runs. The page is the `chat` example's (from the
//! workspace's `examples-support` crate).
//!
//! `cargo run -p melody-tokio --features axum --example axum`, then open
//! `http://127.0.0.1:5002/?name=ada`.

use axum::extract::{Request, State};
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use melody_tokio::{Keys, Melody};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let melody = Melody::new();
    let m = melody.clone();
    melody.on_connect(move |session| {
        let name: String = session.get("name").unwrap_or_default();
        m.broadcast(&format!("{name} joined"));
    });
    let m = melody.clone();
    melody.on_message(move |session, text| {
        let name: String = session.get("name").unwrap_or_default();
        m.broadcast(&format!("{name}: {text}"));
    });

    let app = Router::new()
        .route("/", get(|| async { Html(examples_support::CHAT_PAGE) }))
        .route("/ws", get(upgrade))
        .with_state(melody);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:5002").await?;
    println!("axum: open http://{}/?name=ada", listener.local_addr()?);
    axum::serve(listener, app).await
}

async fn upgrade(State(melody): State<Melody>, request: Request) -> Response {
    let name = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("name=")))
        .unwrap_or("anonymous")
        .to_owned();
    let mut keys = Keys::new();
    keys.set("name", name);
    melody_tokio::axum::handle_request_with_keys(&melody, request, keys)
}
