//! Chat rooms as topics: the room is the URL path.
//!
//! `cargo run --release -p melody-async-std --example topics`, then open
//! `http://127.0.0.1:5003/room/rust` and `http://127.0.0.1:5003/room/go` in a few tabs:
//! messages stay in their room. `--addr HOST:PORT` picks another address.
//!
//! A plain GET of `/` or `/room/NAME` gets the page (`Config::http_page`); one of
//! any other path gets 426, as the sockets' paths do. On `/room/NAME` the page opens
//! its socket at `/room/NAME/ws`, and `on_connect` reads the room from that path:
//! the session subscribes to topic `NAME` (any other path: `lobby`), and each message
//! it sends is published there. The handlers and the page come from
//! the workspace's `examples-support` crate, shared by every adapter's examples.

use async_std::net::TcpListener;
use melody_async_std::{Config, Melody};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let listener = TcpListener::bind(examples_support::addr("127.0.0.1:5003")).await?;
    let rooms = Melody::with_config(examples_support::with_page(
        Config::default(),
        &["/", "/room/*"],
        examples_support::TOPICS_PAGE,
    ))?;
    examples_support::topics(&rooms);
    let at = listener.local_addr()?;
    println!("topics: open http://{at}/room/NAME for room NAME");
    Ok(melody_async_std::serve(&rooms, listener).await?)
}
