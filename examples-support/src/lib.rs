//! What the examples of melody-tokio, melody-smol, melody-async-std and melody-redis
//! share: each demo's handlers and page, and the `server` example's flags, handlers,
//! `/stats` endpoint and Ctrl-C shutdown. An example keeps only what is its runtime's
//! own: start the runtime, bind, serve.
//!
//! Everything here is generic over [`melody_driver::Runtime`], so that one copy serves
//! every adapter; nothing depends on an adapter or a runtime.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod chat;
mod filewatch;
mod flags;
mod gophers;
mod observe;
mod pages;
mod server;
mod topics;

pub use chat::chat;
pub use filewatch::{filewatch, FileWatch};
pub use flags::{addr, compression, flag};
pub use gophers::gophers;
pub use observe::{init_tracing, serve_metrics};
pub use pages::{with_page, CHAT_PAGE, EVENTS_PAGE, FILEWATCH_PAGE, GOPHERS_PAGE, TOPICS_PAGE};
pub use server::{
    exit_code, serve_stats, serve_until_interrupted, server, server_options, ServerOptions,
};
pub use topics::{room_of, topics};
