//! Everyone's mouse pointer, live (olahol/melody's gophers example).
//!
//! `cargo run --release -p melody-tokio --example gophers`, then open the printed URL in
//! two browser windows and move the mouse in one: its cursor moves in the other.
//! `--addr HOST:PORT` picks another address (default 127.0.0.1:5001).
//!
//! The protocol is three text lines. The server tells a new connection `iam ID` after
//! the positions of the gophers already there; then each `X Y` a page sends goes to
//! everyone else as `set ID X Y`, and a departure as `dis ID`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use melody_tokio::Melody;

const PAGE: &str = include_str!("assets/gophers.html");

/// What each session keeps under the key `"gopher"`.
#[derive(Clone, Copy)]
struct Gopher {
    id: u64,
    /// `None` until the page has reported a first position.
    at: Option<(i32, i32)>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5001".to_owned());

    let melody = Melody::new();
    let next_id = Arc::new(AtomicU64::new(1));

    let m = melody.clone();
    melody.on_connect(move |session| {
        let me = Gopher {
            id: next_id.fetch_add(1, Ordering::Relaxed),
            at: None,
        };
        // Show the newcomer where everyone already is, then who it is.
        for other in m.sessions() {
            if let Some(Gopher {
                id,
                at: Some((x, y)),
            }) = other.get::<Gopher>("gopher")
            {
                let _ = session.write(&format!("set {id} {x} {y}"));
            }
        }
        session.set("gopher", me);
        let _ = session.write(&format!("iam {}", me.id));
    });

    let m = melody.clone();
    melody.on_message(move |session, text| {
        let Some(mut me) = session.get::<Gopher>("gopher") else {
            return;
        };
        let mut parts = text.split_whitespace().map(str::parse::<i32>);
        let (Some(Ok(x)), Some(Ok(y)), None) = (parts.next(), parts.next(), parts.next()) else {
            return; // not "X Y": ignore it
        };
        me.at = Some((x, y));
        session.set("gopher", me);
        let _ = m.broadcast_others(&format!("set {} {x} {y}", me.id), session);
    });

    let m = melody.clone();
    melody.on_disconnect(move |session| {
        if let Some(me) = session.get::<Gopher>("gopher") {
            let _ = m.broadcast_others(&format!("dis {}", me.id), session);
        }
    });

    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
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
    melody_tokio::axum::handle_request(&melody, request)
}
