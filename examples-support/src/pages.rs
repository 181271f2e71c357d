//! The demos' pages, and how one port serves a page beside its socket.

use melody_core::{Bytes, Config};

/// The chat page; its socket is `/ws`.
pub const CHAT_PAGE: &str = include_str!("../pages/chat.html");
/// The gophers page; its socket is `/ws`.
pub const GOPHERS_PAGE: &str = include_str!("../pages/gophers.html");
/// The topics page, for `/room/NAME`; its socket is `/room/NAME/ws`.
pub const TOPICS_PAGE: &str = include_str!("../pages/topics.html");

/// `config` answering plain GETs with `page` (`Config::http_page`): one port serves
/// the page and its socket, with no HTTP framework.
pub fn with_page(config: Config, page: &'static str) -> Config {
    config.http_page(Some(Bytes::from_static(page.as_bytes())))
}
