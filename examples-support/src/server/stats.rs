//! `GET /stats`: the instance's counters as JSON, for load generators.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use melody_driver::{Melody, Runtime};

/// Answers `GET /stats` on `addr` with `melody`'s counters as one JSON object, for load
/// generators that check the server's own counts (sessions, tasks, timers, drops)
/// against what they saw. It runs on a plain thread with blocking sockets, so it is the
/// same beside every runtime and costs nothing between requests. Returns the address.
pub fn serve_stats<R: Runtime>(melody: &Melody<R>, addr: &str) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let at = listener.local_addr()?;
    let melody = melody.clone();
    std::thread::Builder::new()
        .name("stats".into())
        .spawn(move || {
            // A client that fails or misbehaves spoils only its own answer.
            for stream in listener.incoming().flatten() {
                let _ = answer_stats(&melody, stream);
            }
        })?;
    Ok(at)
}

/// One request, one answer, then close. The request is read up to its blank line
/// (bounded): closing with unread bytes would reset the connection under the answer.
fn answer_stats<R: Runtime>(melody: &Melody<R>, mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.set_write_timeout(Some(Duration::from_secs(1)))?;
    let mut request = [0u8; 1024];
    let mut len = 0;
    while len < request.len() && !request[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut request[len..])? {
            0 => break,
            n => len += n,
        }
    }
    let (status, body) = if request[..len].starts_with(b"GET /stats ") {
        ("200 OK", stats_json(melody))
    } else {
        (
            "404 Not Found",
            r#"{"error":"only GET /stats is served here"}"#.to_owned(),
        )
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The counters: `HubStats` summed over shards, plus what is alive right now.
fn stats_json<R: Runtime>(melody: &Melody<R>) -> String {
    let stats = melody.stats();
    format!(
        "{{\"sessions\":{},\"connection_tasks\":{},\"timer_entries\":{},\"opened\":{},\
         \"connected\":{},\"rejected\":{},\"finished\":{},\"dropped\":{},\"over_budget\":{},\
         \"memory_held\":{}}}",
        melody.len(),
        melody.connection_tasks(),
        melody.timer_entries(),
        stats.opened,
        stats.connected,
        stats.rejected,
        stats.finished,
        stats.dropped,
        stats.over_budget,
        stats.memory_held
    )
}
