//! Everyone's mouse pointer, live (olahol/melody's gophers example).
//!
//! `cargo run --release -p melody-async-std --example gophers`, then open the printed
//! URL in two browser windows and move the mouse in one: its cursor moves in the
//! other. `--addr HOST:PORT` picks another address (default 127.0.0.1:5001).
//!
//! A plain GET of `/` gets the page (`Config::http_page`); its socket is `/ws`. The
//! handlers, their three-line protocol and the page come from the workspace's
//! `examples-support` crate, shared by every adapter's examples.

use async_std::net::TcpListener;
use melody_async_std::{Config, Melody};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let listener = TcpListener::bind(examples_support::addr("127.0.0.1:5001")).await?;
    let gophers = Melody::with_config(examples_support::with_page(
        Config::default(),
        &["/"],
        examples_support::GOPHERS_PAGE,
    ))?;
    examples_support::gophers(&gophers);
    println!(
        "gophers: open http://{}/ in two browser windows",
        listener.local_addr()?
    );
    Ok(melody_async_std::serve(&gophers, listener).await?)
}
