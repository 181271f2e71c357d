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
mod flags;
mod gophers;
mod pages;
mod server;
mod topics;

pub use chat::chat;
pub use flags::{addr, flag};
pub use gophers::gophers;
pub use pages::{with_page, CHAT_PAGE, GOPHERS_PAGE, TOPICS_PAGE};
pub use server::{
    exit_code, serve_stats, serve_until_interrupted, server, server_options, ServerOptions,
};
pub use topics::{room_of, topics};
