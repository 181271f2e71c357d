//! The `server` example every adapter has, for benchmarks and Autobahn: its flags
//! (`options`), its handlers (here), its `/stats` endpoint (`stats`) and its Ctrl-C
//! shutdown (`shutdown`).

mod options;
mod shutdown;
mod stats;

use std::error::Error;

use melody_driver::{Melody, Runtime};

use crate::pages::{with_page, CHAT_PAGE};
pub use options::{server_options, ServerOptions};
pub use shutdown::{exit_code, serve_until_interrupted};
pub use stats::serve_stats;

/// The server's instance on runtime `rt`. It serves
///
/// - `/echo`: each message, text or binary, goes back to its sender only;
/// - `/ws`: each message goes to every session (a chat room, as in `chat`);
/// - a plain GET of `/`: the chat page, talking to `/ws` (`Config::http_page`); a plain
///   GET of any other path gets 426 Upgrade Required;
/// - with `--stats-addr`, `GET /stats` there: the counters ([`serve_stats`]);
/// - with `--metrics-addr`, melody's metrics in Prometheus text format there.
pub fn server<R: Runtime>(rt: R, options: &ServerOptions) -> Result<Melody<R>, Box<dyn Error>> {
    let shards = options.shards.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let config = with_page(options.config.clone(), &["/"], CHAT_PAGE);
    let melody = Melody::with_shards(rt, config, shards)?;

    // `/echo` answers the sender; `/ws` is a room. The path is read per message: it is
    // one string comparison, and keeps the two endpoints on one instance.
    let m = melody.clone();
    melody.on_message(move |session, text| {
        if session.request().uri().path() == "/echo" {
            session.write(text);
        } else {
            m.broadcast(text);
        }
    });
    let m = melody.clone();
    melody.on_message_binary(move |session, data| {
        if session.request().uri().path() == "/echo" {
            session.write_binary(data);
        } else {
            m.broadcast_binary(data);
        }
    });
    if let Some(addr) = &options.metrics_addr {
        let at = crate::serve_metrics(addr)?;
        println!("server: metrics on http://{at}/metrics");
    }
    if let Some(addr) = &options.stats_addr {
        let at = serve_stats(&melody, addr)?;
        println!("server: stats on http://{at}/stats");
    }
    Ok(melody)
}
