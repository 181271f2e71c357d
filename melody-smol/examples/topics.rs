//! Chat rooms as topics: the room is the URL path.
//!
//! `cargo run --release -p melody-smol --example topics`, then open
//! `http://127.0.0.1:5003/room/rust` and `http://127.0.0.1:5003/room/go` in a few tabs:
//! messages stay in their room. `--addr HOST:PORT` picks another address.
//!
//! A plain GET of `/` or `/room/NAME` gets the page (`Config::http_page`); one of
//! any other path gets 426, as the sockets' paths do. On `/room/NAME` the page opens
//! its socket at `/room/NAME/ws`, and `on_connect` reads the room from that path:
//! the session subscribes to topic `NAME` (any other path: `lobby`), and each message
//! it sends is published there. The handlers and the page come from
//! the workspace's `examples-support` crate, shared by every adapter's examples.

use melody_smol::{Config, Melody};
use smol::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let rooms = Melody::with_config(examples_support::with_page(
        Config::default(),
        &["/", "/room/*"],
        examples_support::TOPICS_PAGE,
    ))?;
    examples_support::topics(&rooms);
    smol::block_on(async {
        let listener = TcpListener::bind(examples_support::addr("127.0.0.1:5003")).await?;
        let base = listener.local_addr()?;
        println!("topics: open http://{base}/room/NAME for room NAME");
        melody_smol::serve(&rooms, listener).await
    })?;
    Ok(())
}
