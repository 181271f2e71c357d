//! `idle`: many connections that answer pings and do nothing else; measures server
//! RSS per connection and idle CPU.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::args::Args;
use crate::client::{open_many, parse_url, read_loop, Dial};
use crate::measure::{rss_bytes, Cpu};

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let pid = args.str("server-pid", "self");
    let connections = args.num("connections", 10_000) as usize;
    let hold = args.num("hold", 10);
    let rss0 = rss_bytes(&pid);
    let conns = open_many(&url, connections, Dial::nth).await?;
    // Let the server settle its per-connection state.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = rss_bytes(&pid);
    let mut keep = Vec::with_capacity(conns.len());
    for (r, w, leftover) in conns {
        let w = Rc::new(RefCell::new(Some(w)));
        keep.push(w.clone());
        tokio::task::spawn_local(read_loop(r, w, leftover, |_| {}));
    }
    let cpu = Cpu::start(&pid);
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let (wall, server_cpu, own_cpu) = cpu.read();
    let per_conn = (rss1.saturating_sub(rss0)) as f64 / connections.max(1) as f64;
    Ok(format!(
        "{{\"mode\":\"idle\",\"connections\":{connections},\"rss_before\":{rss0},\"rss_after\":{rss1},\
         \"rss_per_connection\":{per_conn:.0},\"hold_s\":{wall:.1},\"server_cpu_s\":{server_cpu:.3},\
         \"server_cpu_pct\":{:.3},\"loadgen_cpu_s\":{own_cpu:.3}}}",
        server_cpu * 100.0 / wall
    ))
}
