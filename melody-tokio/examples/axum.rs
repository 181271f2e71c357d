//! A page and a WebSocket endpoint on one port with axum, keys attached at upgrade
//! (olahol/melody's `HandleRequestWithKeys`): each session learns its name from the
//! query string before `on_connect` runs. The page is the `chat` example's (from the
//! workspace's `examples-support` crate). Ctrl-C shuts down gracefully: every session
//! gets 1001 "server restarting" after what it has queued, has 5 seconds to answer,
//! and what the shutdown did is printed.
//!
//! `cargo run -p melody-tokio --features axum --example axum`, then open
//! `http://127.0.0.1:5002/?name=ada`.

use axum::extract::{Request, State};
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use melody_tokio::{CloseCode, Keys, Melody};
use std::time::Duration;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    examples_support::init_tracing();
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
        .with_state(melody.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:5002").await?;
    println!("axum: open http://{}/?name=ada", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shut_down_on_ctrl_c(melody))
        .await
}

/// Resolves, telling axum to stop accepting, once Ctrl-C was pressed and melody's
/// sessions are over. The sessions are closed here, before axum stops: axum's
/// graceful shutdown waits for HTTP requests, not for the WebSocket connections
/// they were upgraded to, and upgrades that arrive meanwhile are refused with 503.
async fn shut_down_on_ctrl_c(melody: Melody) {
    if let Err(e) = tokio::signal::ctrl_c().await {
        // Without a signal handler the server can only be killed: keep serving.
        eprintln!("axum: cannot listen for Ctrl-C ({e}); serving until killed");
        std::future::pending::<()>().await;
    }
    let report = melody
        .shutdown_with(Duration::from_secs(5), CloseCode::Away, "server restarting")
        .await;
    println!(
        "axum: shut down: {} sessions closed, {} cut off at the deadline, \
         {} messages undelivered",
        report.closed, report.cut_off, report.undelivered
    );
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
    melody_tokio::axum::handle_request_with_keys(&melody, request, keys).await
}
