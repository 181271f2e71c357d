//! Everyone's mouse pointer, live (olahol/melody's gophers example).
//!
//! `cargo run --release -p melody-tokio --example gophers`, then open the printed URL in
//! two browser windows and move the mouse in one: its cursor moves in the other.
//! `--addr HOST:PORT` picks another address (default 127.0.0.1:5001).
//!
//! An axum router serves the page at `/` and the socket at `/ws`. The handlers (and
//! their three-line protocol) are shared with the other adapters' examples
//! (the workspace's `examples-support` crate).

use axum::extract::{Request, State};
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use melody_tokio::Melody;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    examples_support::init_tracing();
    let addr = examples_support::addr("127.0.0.1:5001");
    let melody = Melody::new();
    examples_support::gophers(&melody);

    let app = Router::new()
        .route("/", get(|| async { Html(examples_support::GOPHERS_PAGE) }))
        .route("/ws", get(upgrade))
        .with_state(melody);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "gophers: open http://{}/ in two browser windows",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}

async fn upgrade(State(melody): State<Melody>, request: Request) -> Response {
    melody_tokio::axum::handle_request(&melody, request).await
}
