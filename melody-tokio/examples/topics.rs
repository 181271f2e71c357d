//! Chat rooms as topics: the room is the URL path.
//!
//! `cargo run --release -p melody-tokio --example topics`, then open
//! `http://127.0.0.1:5003/room/rust` and `http://127.0.0.1:5003/room/go` in a few tabs:
//! messages stay in their room. `--addr HOST:PORT` picks another address.
//!
//! An axum router serves the page at `/room/NAME`; its socket at `/room/NAME/ws`
//! subscribes the session to topic `NAME`, and each message it sends is published to
//! that topic. The handlers are shared with the other adapters' examples
//! (the workspace's `examples-support` crate).

use axum::extract::{Request, State};
use axum::response::{Html, Redirect, Response};
use axum::routing::get;
use axum::Router;
use melody_tokio::Melody;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    examples_support::init_tracing();
    let addr = examples_support::addr("127.0.0.1:5003");
    let melody = Melody::new();
    examples_support::topics(&melody);

    let app = Router::new()
        .route("/", get(|| async { Redirect::to("/room/lobby") }))
        .route(
            "/room/{name}",
            get(|| async { Html(examples_support::TOPICS_PAGE) }),
        )
        .route("/room/{name}/ws", get(upgrade))
        .with_state(melody);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "topics: open http://{}/room/NAME for room NAME",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}

async fn upgrade(State(melody): State<Melody>, request: Request) -> Response {
    melody_tokio::axum::handle_request(&melody, request).await
}
