//! `chat`: a JSON chat room. One publisher keeps a window of chat messages (200 to
//! 2,000 bytes of JSON) in flight to `/ws`, which sends each to every subscriber; the
//! subscribers offer permessage-deflate as a browser does (`--offer-deflate 1`, the
//! default). Measures bytes on the wire and server CPU per delivery, how many
//! deliveries came compressed (RSV1), and the server's RSS growth per session once
//! every session has received messages (a dedicated compressor's memory).
//!
//! The publisher offers nothing, so it sends plain frames: the server's inbound side
//! is not what this measures.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;

use crate::args::Args;
use crate::client::{client_frame, parse_url, request_head, Dial, Url};
use crate::measure::{rss_bytes, Cpu};

/// What a browser offers.
const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// Counters the subscribers share.
#[derive(Default)]
struct Tally {
    deliveries: Cell<u64>,
    compressed: Cell<u64>,
    wire_bytes: Cell<u64>,
    publisher_seen: Cell<u64>,
}

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let pid = args.str("server-pid", "self");
    let subscribers = args.num("subscribers", 1000) as usize;
    let window = args.num("window", 64);
    let messages = args.num("messages", 2000);
    let offer = args.num("offer-deflate", 1) == 1;
    let chat = chat_messages(messages as usize);
    let payload_bytes: u64 = chat.iter().map(|m| m.len() as u64).sum();

    let rss_before = rss_bytes(&pid);
    let tally = Rc::new(Tally::default());
    let done = Rc::new(tokio::sync::Notify::new());
    let mut publisher = None;
    let mut idle_writers = Vec::new();
    let mut agreed = String::new();
    for start in (0..subscribers).step_by(200) {
        let mut pending = Vec::new();
        for i in start..(start + 200).min(subscribers) {
            // The publisher (0) offers nothing: it only sends.
            pending.push(open(&url, i, offer && i != 0));
        }
        for p in pending {
            let (i, r, w, leftover, head) = p.await?;
            if i == 1 {
                agreed = extension_of(&head);
            }
            if i == 0 {
                publisher = Some(w);
            } else {
                // Kept open (dropping it would end the connection); subscribers never
                // write, and the default 60 s pong wait outlasts a run.
                idle_writers.push(w);
            }
            let (tally, done) = (tally.clone(), done.clone());
            let expected = messages * subscribers as u64;
            tokio::task::spawn_local(count_loop(r, leftover, i == 0, tally, done, expected));
        }
    }
    let mut writer = publisher.ok_or("no publisher")?;
    let rss_connected = rss_bytes(&pid);

    let cpu = Cpu::start(&pid);
    let expected = messages * subscribers as u64;
    let mut sent = 0u64;
    let frames: Vec<Vec<u8>> = chat
        .iter()
        .map(|m| client_frame(0x1, m.as_bytes()))
        .collect();
    while tally.deliveries.get() < expected {
        while sent < messages && sent - tally.publisher_seen.get() < window {
            writer
                .write_all(&frames[sent as usize])
                .await
                .map_err(|e| e.to_string())?;
            sent += 1;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), done.notified()).await;
        if sent == messages && tally.deliveries.get() < expected {
            let stalled = tally.deliveries.get();
            let _ = tokio::time::timeout(Duration::from_millis(500), done.notified()).await;
            if tally.deliveries.get() == stalled {
                break;
            }
        }
    }
    let (wall, server_cpu, own_cpu) = cpu.read();
    // Idle now: what every session holds between messages.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss_bytes(&pid);
    drop(idle_writers);
    let got = tally.deliveries.get();
    let per_session = |rss: u64| rss.saturating_sub(rss_before) as f64 / subscribers as f64;
    Ok(format!(
        "{{\"mode\":\"chat\",\"subscribers\":{subscribers},\"window\":{window},\"messages\":{messages},\
         \"offer_deflate\":{offer},\"agreed\":{agreed:?},\"mean_payload_bytes\":{:.0},\
         \"deliveries\":{got},\"lost\":{},\"compressed\":{},\"seconds\":{wall:.3},\
         \"wire_bytes_per_delivery\":{:.1},\"server_cpu_s\":{server_cpu:.3},\
         \"server_cpu_per_delivery_us\":{:.4},\"loadgen_cpu_s\":{own_cpu:.3},\
         \"rss_per_session_connected\":{:.0},\"rss_per_session_idle_after\":{:.0}}}",
        payload_bytes as f64 / messages.max(1) as f64,
        expected - got,
        tally.compressed.get(),
        tally.wire_bytes.get() as f64 / got.max(1) as f64,
        server_cpu * 1e6 / got.max(1) as f64,
        per_session(rss_connected),
        per_session(rss_idle),
    ))
}

type Opened = (
    usize,
    OwnedReadHalf,
    tokio::net::tcp::OwnedWriteHalf,
    Vec<u8>,
    String,
);

/// Opens connection `i`, offering permessage-deflate if `offer`.
async fn open(url: &Url, i: usize, offer: bool) -> Result<Opened, String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
        url.path,
        url.host,
        if offer { OFFER } else { "" }
    );
    let (stream, head, leftover) = request_head(url, Dial::nth(i), &request).await?;
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("handshake refused: {head}"));
    }
    let (r, w) = stream.into_split();
    Ok((i, r, w, leftover, head))
}

/// The `Sec-WebSocket-Extensions` value of a response head, or "".
fn extension_of(head: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default()
}

/// Counts one connection's data frames, their bytes and their RSV1 bits.
async fn count_loop(
    mut r: OwnedReadHalf,
    leftover: Vec<u8>,
    is_publisher: bool,
    tally: Rc<Tally>,
    done: Rc<tokio::sync::Notify>,
    expected: u64,
) {
    let mut buf = leftover;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut at = 0;
        while let Some((header, len)) = frame_len(&buf[at..]) {
            if buf.len() - at < header + len {
                break;
            }
            let (b0, opcode) = (buf[at], buf[at] & 0x0f);
            if opcode == 0x1 || opcode == 0x2 {
                tally.deliveries.set(tally.deliveries.get() + 1);
                tally
                    .wire_bytes
                    .set(tally.wire_bytes.get() + (header + len) as u64);
                if b0 & 0x40 != 0 {
                    tally.compressed.set(tally.compressed.get() + 1);
                }
                if is_publisher {
                    tally.publisher_seen.set(tally.publisher_seen.get() + 1);
                    done.notify_waiters();
                }
                if tally.deliveries.get() == expected {
                    done.notify_waiters();
                }
            }
            at += header + len;
        }
        buf.drain(..at);
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A server frame's header length and payload length, once the header is complete.
fn frame_len(b: &[u8]) -> Option<(usize, usize)> {
    if b.len() < 2 {
        return None;
    }
    match b[1] & 0x7f {
        126 if b.len() >= 4 => Some((4, u16::from_be_bytes([b[2], b[3]]) as usize)),
        127 if b.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            Some((10, u64::from_be_bytes(n) as usize))
        }
        126 | 127 => None,
        n => Some((2, n as usize)),
    }
}

/// `count` JSON chat messages of 200 to 2,000 bytes: a few users, rooms and words,
/// as a chat's traffic repeats itself (a fixed seed: every run sends the same).
fn chat_messages(count: usize) -> Vec<String> {
    const WORDS: &[&str] = &[
        "hello", "anyone", "around", "the", "deploy", "went", "fine", "thanks", "for", "checking",
        "lunch", "meeting", "moved", "to", "three", "o'clock", "can", "you", "review", "my",
        "pull", "request", "tests", "are", "green", "again", "coffee",
    ];
    let mut seed = 0x9e37_79b9_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as usize
    };
    (0..count)
        .map(|i| {
            let target = 200 + next() % 1801;
            let head = format!(
                "{{\"type\":\"message\",\"id\":{i},\"room\":\"room-{}\",\"user\":{{\"id\":{},\"name\":\"user{}\"}},\"sent_at\":\"2026-12-04T17:{:02}:{:02}Z\",\"text\":\"",
                next() % 8,
                i % 50,
                i % 50,
                next() % 60,
                next() % 60
            );
            let mut text = String::new();
            while head.len() + text.len() + 2 < target {
                text.push_str(WORDS[next() % WORDS.len()]);
                text.push(' ');
            }
            // ASCII only: any cut is a character boundary.
            text.truncate(target - head.len() - 2);
            format!("{head}{text}\"}}")
        })
        .collect()
}
