//! Everyone's mouse pointer, live (olahol/melody's gophers example).
//!
//! `cargo run --release -p melody-smol --example gophers`, then open the printed URL in
//! two browser windows and move the mouse in one: its cursor moves in the other.
//! `--addr HOST:PORT` picks another address (default 127.0.0.1:5001).
//!
//! A plain GET of `/` gets the page (`Config::http_page`); its socket is `/ws`. The
//! handlers, their three-line protocol and the page come from the workspace's
//! `examples-support` crate, shared by every adapter's examples.

use melody_smol::{Config, Melody};
use smol::net::TcpListener;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let page =
        examples_support::with_page(Config::default(), &["/"], examples_support::GOPHERS_PAGE);
    let melody = Melody::with_config(page)?;
    examples_support::gophers(&melody);
    smol::block_on(async {
        let listener = TcpListener::bind(examples_support::addr("127.0.0.1:5001")).await?;
        let url = format!("http://{}/", listener.local_addr()?);
        println!("gophers: open {url} in two browser windows");
        melody_smol::serve(&melody, listener).await
    })?;
    Ok(())
}
