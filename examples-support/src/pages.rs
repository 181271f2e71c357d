//! The demos' pages, and how one port serves a page beside its socket.

use melody_core::{Config, HttpPage};

/// The chat page; its socket is `/ws`.
pub const CHAT_PAGE: &str = include_str!("../pages/chat.html");
/// The filewatch page; its socket is `/ws`.
pub const FILEWATCH_PAGE: &str = include_str!("../pages/filewatch.html");
/// The gophers page; its socket is `/ws`.
pub const GOPHERS_PAGE: &str = include_str!("../pages/gophers.html");
/// The device events page (melody-tokio's `events` example): an `EventSource` and a
/// WebSocket on `/devices/ID/events`, and a form that POSTs events there.
pub const EVENTS_PAGE: &str = include_str!("../pages/events.html");
/// The topics page, for `/room/NAME`; its socket is `/room/NAME/ws`.
pub const TOPICS_PAGE: &str = include_str!("../pages/topics.html");

/// `config` answering plain GETs at `paths` with `page` (`Config::http_page`): one port
/// serves the page and its sockets, with no HTTP framework. A plain GET elsewhere gets
/// 426: the other paths are the sockets'.
pub fn with_page(config: Config, paths: &[&str], page: &'static str) -> Config {
    let Some((first, more)) = paths.split_first() else {
        return config;
    };
    let served = more
        .iter()
        .fold(HttpPage::at(*first, page), |served, path| {
            served.also_at(*path)
        });
    config.http_page(Some(served))
}
