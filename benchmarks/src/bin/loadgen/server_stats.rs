//! The server's own counters, from the `GET /stats` that the `server` examples answer
//! with `--stats-addr` (sessions, connection tasks, timer entries, `HubStats`).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One reading of `/stats`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerStats {
    /// Open sessions (`Melody::len`).
    pub sessions: u64,
    /// Connection tasks still running.
    pub connection_tasks: u64,
    /// Timer-wheel entries, stale ones included.
    pub timer_entries: u64,
    /// Connections opened (handshakes started), since the server started.
    pub opened: u64,
    /// Handshakes that succeeded.
    pub connected: u64,
    /// Handshakes refused.
    pub rejected: u64,
    /// Sessions over.
    pub finished: u64,
    /// Data messages dropped.
    pub dropped: u64,
    /// Of those, refused by the memory budget (0 from a server that does not say).
    pub over_budget: u64,
    /// Bytes held against the memory budget now (0 from a server that does not say).
    pub memory_held: u64,
}

/// Reads `/stats` from `addr` (`HOST:PORT`).
pub async fn fetch(addr: &str) -> Result<ServerStats, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("stats at {addr}: {e}"))?;
    stream
        .write_all(b"GET /stats HTTP/1.1\r\nHost: stats\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let answer = String::from_utf8_lossy(&answer);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or("stats: no body")?;
    let field = |name: &str| -> Result<u64, String> {
        let key = format!("\"{name}\":");
        let at = body
            .find(&key)
            .ok_or(format!("stats: no {name} in {body}"))?
            + key.len();
        let digits: String = body[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().map_err(|_| format!("stats: bad {name}"))
    };
    Ok(ServerStats {
        sessions: field("sessions")?,
        connection_tasks: field("connection_tasks")?,
        timer_entries: field("timer_entries")?,
        opened: field("opened")?,
        connected: field("connected")?,
        rejected: field("rejected")?,
        finished: field("finished")?,
        dropped: field("dropped")?,
        over_budget: field("over_budget").unwrap_or(0),
        memory_held: field("memory_held").unwrap_or(0),
    })
}

/// Polls `/stats` every 50 ms until `done` holds, for at most `limit`. Returns the
/// reading that satisfied it and how long that took, or the last reading as an error.
pub async fn wait_until(
    addr: &str,
    limit: Duration,
    done: impl Fn(&ServerStats) -> bool,
) -> Result<(ServerStats, Duration), (ServerStats, String)> {
    let start = Instant::now();
    let mut last = ServerStats::default();
    while start.elapsed() < limit {
        match fetch(addr).await {
            Ok(stats) if done(&stats) => return Ok((stats, start.elapsed())),
            Ok(stats) => last = stats,
            Err(e) => return Err((last, e)),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err((last, format!("not reached within {limit:?}: {last:?}")))
}
