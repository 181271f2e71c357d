//! Hostile client behaviour on raw sockets: writing without end, or one byte at a time.
//! Each runs on its own thread, bounded in bytes and time, and reports how the server
//! made it stop.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a flood or a trickle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The server ended the connection: a write failed (reset, broken pipe) or a read
    /// saw its end.
    Cut {
        /// Bytes written before.
        written: usize,
        /// When the client saw it.
        at: Instant,
    },
    /// The server stopped taking bytes but kept the connection open (a write timed
    /// out).
    Stalled {
        /// Bytes written before.
        written: usize,
    },
    /// The client's own bound (bytes, time, or the end of what it had to send) came
    /// first: the server let it go on.
    Bounded {
        /// Bytes written.
        written: usize,
    },
    /// The server sent bytes to a client that was still trickling its request.
    Answered {
        /// Bytes written before.
        written: usize,
    },
}

fn cut(written: usize) -> Stop {
    Stop::Cut {
        written,
        at: Instant::now(),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Writes `chunk` again and again on a clone of `stream`, from its own thread, until a
/// write fails or `max_bytes` or `max_time` is reached. Writes that make no progress
/// for `stall` count as the server having stopped reading.
pub(crate) fn flood(
    stream: &TcpStream,
    chunk: Vec<u8>,
    max_bytes: usize,
    max_time: Duration,
    stall: Duration,
) -> JoinHandle<Stop> {
    let mut stream = stream.try_clone().expect("clone the socket");
    stream
        .set_write_timeout(Some(stall))
        .expect("set a write timeout");
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut written = 0;
        while written < max_bytes && start.elapsed() < max_time {
            match stream.write(&chunk) {
                Ok(0) => return cut(written),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Stop::Stalled { written },
                Err(_) => return cut(written),
            }
        }
        Stop::Bounded { written }
    })
}

/// Sends `bytes` one at a time on `stream`, from its own thread, pausing `pace` after
/// each (spent waiting for the server to end the connection), until the server ends
/// it or every byte is sent. The server must send nothing meanwhile.
pub(crate) fn trickle(mut stream: TcpStream, bytes: Vec<u8>, pace: Duration) -> JoinHandle<Stop> {
    std::thread::spawn(move || {
        let mut probe = [0u8; 64];
        for (written, byte) in bytes.iter().enumerate() {
            if stream.write_all(std::slice::from_ref(byte)).is_err() {
                return cut(written);
            }
            // The pause is spent reading: it ends early if the server hangs up.
            let pause_end = Instant::now() + pace;
            loop {
                let left = pause_end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                stream
                    .set_read_timeout(Some(left))
                    .expect("set a read timeout");
                match stream.read(&mut probe) {
                    Ok(0) => return cut(written + 1),
                    Ok(_) => {
                        return Stop::Answered {
                            written: written + 1,
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted || is_timeout(&e) => {}
                    Err(_) => return cut(written + 1),
                }
            }
        }
        Stop::Bounded {
            written: bytes.len(),
        }
    })
}
