//! Chat rooms as topics: the room is the URL path.
//!
//! `cargo run --release -p melody-tokio --example topics`, then open
//! `http://127.0.0.1:5003/room/rust` and `http://127.0.0.1:5003/room/go` in a few tabs:
//! messages stay in their room. `--addr HOST:PORT` picks another address.
//!
//! `/room/NAME` serves the page; its socket at `/room/NAME/ws` subscribes the session
//! to topic `NAME`, and each message it sends is published to that topic.

use axum::extract::{Request, State};
use axum::response::{Html, Redirect, Response};
use axum::routing::get;
use axum::Router;
use melody_tokio::Melody;

const PAGE: &str = include_str!("assets/topics.html");

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5003".to_owned());

    let melody = Melody::new();

    let m = melody.clone();
    melody.on_connect(move |session| {
        // The route only upgrades `/room/{name}/ws`, so the name is the third segment.
        let room = session
            .request()
            .uri()
            .path()
            .split('/')
            .nth(2)
            .unwrap_or("lobby")
            .to_owned();
        session.subscribe(&room);
        let here = m.subscriber_count(&room);
        let _ = session.write(&format!("welcome to {room}: {here} here"));
        let _ = m.publish_others(&room, "someone joined", session);
        session.set("room", room);
    });

    let m = melody.clone();
    melody.on_message(move |session, text| {
        if let Some(room) = session.get::<String>("room") {
            let _ = m.publish(&room, text);
        }
    });

    let m = melody.clone();
    melody.on_disconnect(move |session| {
        if let Some(room) = session.get::<String>("room") {
            let _ = m.publish_others(&room, "someone left", session);
        }
    });

    let app = Router::new()
        .route("/", get(|| async { Redirect::to("/room/lobby") }))
        .route("/room/{name}", get(|| async { Html(PAGE) }))
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
    melody_tokio::axum::handle_request(&melody, request)
}
