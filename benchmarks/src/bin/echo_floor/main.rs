//! The floor under any WebSocket echo server on this machine: `/echo` with no
//! framework, no runtime, no timers and no limits beyond a bounded inbox, one `recv`
//! and one `send` per message, written straight against the kernel's readiness
//! (`--io epoll`, with `mio`) or completion (`--io uring`, with `io-uring`) interface.
//! Not a server to use: it exists to show how much of an echo round trip's CPU the
//! kernel takes whatever runs above it, and whether a completion-based transport
//! lowers that part.
//!
//! `benchmarks/run.sh floor-epoll -- target/release/echo_floor --io epoll` with
//! `SETS=echo` (the load generator's echo run), and the same with `--io uring`.

mod epoll;
#[cfg(target_os = "linux")]
mod uring;
mod ws;

fn flag(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() -> std::io::Result<()> {
    let addr = flag("--addr").unwrap_or_else(|| "127.0.0.1:6000".to_owned());
    let listener = std::net::TcpListener::bind(&addr)?;
    match flag("--io").as_deref() {
        None | Some("epoll") => epoll::serve(listener),
        #[cfg(target_os = "linux")]
        Some("uring") => uring::serve(listener),
        Some(other) => Err(std::io::Error::other(format!(
            "--io {other}: expected epoll or uring (Linux)"
        ))),
    }
}
