//! A file's content, live, in every browser tab (olahol/melody's filewatch example).
//!
//! `cargo run --release -p melody-tokio --example filewatch`, then open the printed URL
//! and edit `file.txt` in the current directory (created if missing): each save shows
//! in every open tab. `--file PATH` watches another file; `--addr HOST:PORT` picks
//! another address (default 127.0.0.1:5005).
//!
//! The broadcasts come from a file watcher (the `notify` crate), outside every
//! handler; a new session gets the current content on connect. One port serves the
//! page at `/` (`Config::http_page`) and its socket, as in the `chat` example. The watching
//! and the page are in the workspace's `examples-support` crate.

use melody_tokio::{Config, Melody};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let addr = examples_support::addr("127.0.0.1:5005");
    let file = examples_support::flag("--file").unwrap_or_else(|| "file.txt".to_owned());
    let melody = Melody::with_config(examples_support::with_page(
        Config::default(),
        &["/"],
        examples_support::FILEWATCH_PAGE,
    ))?;
    // Watches for as long as it is kept.
    let watch = examples_support::filewatch(&melody, file.as_ref())?;

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "filewatch: open http://{}/ and edit {}",
        listener.local_addr()?,
        watch.path().display()
    );
    melody_tokio::serve(&melody, listener).await?;
    Ok(())
}
