//! Load generator for WebSocket servers on loopback. Lean by design — raw frames, no
//! WebSocket library, one thread — so that it is not the bottleneck; it reports its
//! own CPU time next to the server's so that this can be checked.
//!
//! ```text
//! loadgen broadcast --url ws://127.0.0.1:6000/ws --server-pid PID [--subscribers 1000] [--window 64] [--messages 2000] [--size 64]
//! loadgen echo      --url ws://127.0.0.1:6000/echo --server-pid PID [--connections 50] [--messages 200000] [--size 64]
//! loadgen rate      --url ws://127.0.0.1:6000/ws --server-pid PID [--subscribers 1000] [--rate 10] [--messages 100]
//! loadgen idle      --url ws://127.0.0.1:6000/ws --server-pid PID [--connections 10000] [--hold 10]
//! ```
//!
//! Every run is bounded (`--time-limit`, default 60 s) and prints one line starting
//! with `RESULT ` followed by JSON.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

/// Connections per loopback source address, below the ~28k ephemeral ports of one.
const PER_SOURCE_ADDR: usize = 16_000;

struct Args(HashMap<String, String>);

impl Args {
    fn parse() -> (String, Args) {
        let mut it = std::env::args().skip(1);
        let mode = it.next().unwrap_or_default();
        let mut map = HashMap::new();
        while let Some(k) = it.next() {
            if let Some(name) = k.strip_prefix("--") {
                map.insert(name.to_owned(), it.next().unwrap_or_default());
            }
        }
        (mode, Args(map))
    }
    fn num(&self, k: &str, default: u64) -> u64 {
        self.0
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
    fn str(&self, k: &str, default: &str) -> String {
        self.0.get(k).cloned().unwrap_or_else(|| default.to_owned())
    }
}

fn main() {
    let (mode, args) = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let limit = Duration::from_secs(args.num("time-limit", 60));
    let result = local.block_on(&rt, async move {
        let run = async {
            match mode.as_str() {
                "broadcast" => broadcast(&args).await,
                "echo" => echo(&args).await,
                "rate" => rate(&args).await,
                "idle" => idle(&args).await,
                _ => Err(format!(
                    "unknown mode {mode:?}; see the file header for usage"
                )),
            }
        };
        match tokio::time::timeout(limit, run).await {
            Ok(r) => r,
            Err(_) => Err(format!("time limit of {limit:?} reached")),
        }
    });
    match result {
        Ok(json) => println!("RESULT {json}"),
        Err(e) => {
            println!("RESULT {{\"error\":{e:?}}}");
            std::process::exit(1);
        }
    }
}

// ---- measurement -------------------------------------------------------------------

/// User + system CPU seconds of a process, from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_bytes(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

struct Cpu {
    server: String,
    server0: f64,
    own0: f64,
    wall0: Instant,
}

impl Cpu {
    fn start(server: &str) -> Cpu {
        Cpu {
            server: server.to_owned(),
            server0: cpu_seconds(server),
            own0: cpu_seconds("self"),
            wall0: Instant::now(),
        }
    }
    /// (wall, server cpu, loadgen cpu) seconds since start.
    fn read(&self) -> (f64, f64, f64) {
        (
            self.wall0.elapsed().as_secs_f64(),
            cpu_seconds(&self.server) - self.server0,
            cpu_seconds("self") - self.own0,
        )
    }
}

// ---- a lean client -----------------------------------------------------------------

struct Url {
    addr: SocketAddr,
    host: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let addr = host.parse().map_err(|e| format!("{host}: {e}"))?;
    Ok(Url {
        addr,
        host: host.to_owned(),
        path,
    })
}

async fn connect(
    url: &Url,
    index: usize,
) -> Result<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>), String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if url.addr.ip().is_loopback() {
        // Spread many connections over several loopback source addresses, starting at
        // one that depends on the process id, so that back-to-back runs do not collide
        // with the previous run's TIME_WAIT ports.
        let octet = 1 + ((index / PER_SOURCE_ADDR + std::process::id() as usize) % 250) as u8;
        let source = SocketAddr::from((Ipv4Addr::new(127, 0, 0, octet), 0));
        socket.bind(source).map_err(|e| e.to_string())?;
    }
    let mut stream: TcpStream = socket.connect(url.addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        url.path, url.host
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let end = loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed during handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 101") {
        return Err(format!(
            "handshake refused: {}",
            String::from_utf8_lossy(&buf[..end])
        ));
    }
    let leftover = buf[end + 4..].to_vec();
    let (r, w) = stream.into_split();
    Ok((r, w, leftover))
}

/// A masked client frame (zero mask: the payload goes as is).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Parses server frames from a byte stream without copying payloads out.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    /// Feeds bytes; calls `each(opcode, payload)` per complete frame.
    fn feed(&mut self, bytes: &[u8], mut each: impl FnMut(u8, &[u8])) {
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let b = &self.buf[at..];
            if b.len() < 2 {
                break;
            }
            let (header, len) = match b[1] & 0x7f {
                126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as usize),
                127 if b.len() >= 10 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&b[2..10]);
                    (10, u64::from_be_bytes(n) as usize)
                }
                126 | 127 => break,
                n => (2, n as usize),
            };
            if b.len() < header + len {
                break;
            }
            each(b[0] & 0x0f, &b[header..header + len]);
            at += header + len;
        }
        self.buf.drain(..at);
    }
}

/// Reads frames forever, answering pings, calling `on_data(payload)` for data frames.
async fn read_loop(
    mut r: OwnedReadHalf,
    w: Rc<RefCell<Option<OwnedWriteHalf>>>,
    leftover: Vec<u8>,
    mut on_data: impl FnMut(&[u8]),
) {
    let mut frames = Frames::default();
    let mut pongs = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut first = Some(leftover);
    loop {
        let n = match first.take() {
            Some(l) if !l.is_empty() => {
                chunk[..l.len()].copy_from_slice(&l);
                l.len()
            }
            _ => match r.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        frames.feed(&chunk[..n], |op, payload| match op {
            0x1 | 0x2 => on_data(payload),
            0x9 => pongs.push(client_frame(0xA, payload)),
            _ => {}
        });
        for pong in pongs.drain(..) {
            let writer = w.borrow_mut().take();
            if let Some(mut writer) = writer {
                let _ = writer.write_all(&pong).await;
                *w.borrow_mut() = Some(writer);
            }
        }
    }
}

// ---- modes -------------------------------------------------------------------------

async fn open_many(
    url: &Url,
    n: usize,
) -> Result<Vec<(OwnedReadHalf, OwnedWriteHalf, Vec<u8>)>, String> {
    let mut conns = Vec::with_capacity(n);
    // A few at a time keeps the listen backlog from overflowing.
    for chunk_start in (0..n).step_by(200) {
        let mut pending = Vec::new();
        for i in chunk_start..(chunk_start + 200).min(n) {
            pending.push(connect(url, i));
        }
        for p in pending {
            conns.push(p.await?);
        }
    }
    Ok(conns)
}

async fn broadcast(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let pid = args.str("server-pid", "self");
    let subscribers = args.num("subscribers", 1000) as usize;
    let window = args.num("window", 64);
    let messages = args.num("messages", 2000);
    let size = args.num("size", 64) as usize;
    let conns = open_many(&url, subscribers).await?;
    let received = Rc::new(Cell::new(0u64));
    let publisher_seen = Rc::new(Cell::new(0u64));
    let done = Rc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for (i, (r, w, leftover)) in conns.into_iter().enumerate() {
        let w = Rc::new(RefCell::new(Some(w)));
        writers.push(w.clone());
        let (received, publisher_seen, done) =
            (received.clone(), publisher_seen.clone(), done.clone());
        let expected = messages * subscribers as u64;
        tokio::task::spawn_local(read_loop(r, w, leftover, move |_| {
            received.set(received.get() + 1);
            if i == 0 {
                publisher_seen.set(publisher_seen.get() + 1);
                done.notify_waiters();
            }
            if received.get() == expected {
                done.notify_waiters();
            }
        }));
    }
    let frame = client_frame(0x1, &vec![b'x'; size]);
    let publisher = writers[0].clone();
    let cpu = Cpu::start(&pid);
    let mut sent = 0u64;
    let expected = messages * subscribers as u64;
    let mut writer = publisher.borrow_mut().take().ok_or("publisher busy")?;
    while received.get() < expected {
        // Keep `window` messages in flight, as seen by the publisher's own copy.
        while sent < messages && sent - publisher_seen.get() < window {
            writer.write_all(&frame).await.map_err(|e| e.to_string())?;
            sent += 1;
        }
        *publisher.borrow_mut() = Some(writer);
        let notified = done.notified();
        let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
        writer = publisher.borrow_mut().take().ok_or("publisher busy")?;
        if sent == messages && received.get() < expected {
            // Only stragglers left: wait for them, bounded.
            let stalled = received.get();
            let _ = tokio::time::timeout(Duration::from_millis(500), done.notified()).await;
            if received.get() == stalled {
                break;
            }
        }
    }
    let (wall, server_cpu, own_cpu) = cpu.read();
    let got = received.get();
    Ok(format!(
        "{{\"mode\":\"broadcast\",\"subscribers\":{subscribers},\"window\":{window},\"messages\":{messages},\"size\":{size},\
         \"deliveries\":{got},\"lost\":{},\"seconds\":{wall:.3},\"deliveries_per_sec\":{:.0},\
         \"server_cpu_s\":{server_cpu:.3},\"server_cpu_per_delivery_us\":{:.4},\"loadgen_cpu_s\":{own_cpu:.3}}}",
        expected - got,
        got as f64 / wall,
        server_cpu * 1e6 / got.max(1) as f64
    ))
}

async fn echo(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/echo"))?;
    let pid = args.str("server-pid", "self");
    let connections = args.num("connections", 50) as usize;
    let messages = args.num("messages", 200_000);
    let size = args.num("size", 64) as usize;
    let conns = open_many(&url, connections).await?;
    let frame = Rc::new(client_frame(0x2, &vec![7u8; size]));
    let per_conn = messages / connections as u64;
    let cpu = Cpu::start(&pid);
    let mut tasks = Vec::new();
    for (mut r, mut w, leftover) in conns {
        let frame = frame.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut frames = Frames::default();
            let mut chunk = vec![0u8; 16 * 1024];
            let mut got = 0u64;
            let _ = leftover;
            for _ in 0..per_conn {
                if w.write_all(&frame).await.is_err() {
                    break;
                }
                let mut echoed = false;
                while !echoed {
                    let n = match r.read(&mut chunk).await {
                        Ok(0) | Err(_) => return got,
                        Ok(n) => n,
                    };
                    frames.feed(&chunk[..n], |op, _| echoed |= op == 0x2);
                }
                got += 1;
            }
            got
        }));
    }
    let mut round_trips = 0;
    for t in tasks {
        round_trips += t.await.unwrap_or(0);
    }
    let (wall, server_cpu, own_cpu) = cpu.read();
    Ok(format!(
        "{{\"mode\":\"echo\",\"connections\":{connections},\"size\":{size},\"round_trips\":{round_trips},\
         \"seconds\":{wall:.3},\"round_trips_per_sec\":{:.0},\"server_cpu_s\":{server_cpu:.3},\
         \"server_cpu_per_round_trip_us\":{:.3},\"loadgen_cpu_s\":{own_cpu:.3}}}",
        round_trips as f64 / wall,
        server_cpu * 1e6 / round_trips.max(1) as f64
    ))
}

async fn rate(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let pid = args.str("server-pid", "self");
    let subscribers = args.num("subscribers", 1000) as usize;
    let per_sec = args.num("rate", 10).max(1);
    let messages = args.num("messages", 100);
    let conns = open_many(&url, subscribers).await?;
    let t0 = Instant::now();
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(
        (messages as usize) * subscribers,
    )));
    let mut writers = Vec::new();
    for (r, w, leftover) in conns {
        let w = Rc::new(RefCell::new(Some(w)));
        writers.push(w.clone());
        let latencies = latencies.clone();
        tokio::task::spawn_local(read_loop(r, w, leftover, move |payload| {
            // The payload is the send time in nanoseconds since t0.
            let mut n = [0u8; 8];
            if payload.len() >= 8 {
                n.copy_from_slice(&payload[..8]);
                let sent = u64::from_be_bytes(n);
                let now = t0.elapsed().as_nanos() as u64;
                latencies.borrow_mut().push(now.saturating_sub(sent));
            }
        }));
    }
    let cpu = Cpu::start(&pid);
    let mut writer = writers[0].borrow_mut().take().ok_or("publisher busy")?;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / per_sec));
    for _ in 0..messages {
        ticker.tick().await;
        let mut payload = (t0.elapsed().as_nanos() as u64).to_be_bytes().to_vec();
        payload.resize(64, b'x');
        writer
            .write_all(&client_frame(0x2, &payload))
            .await
            .map_err(|e| e.to_string())?;
    }
    // Let the last message arrive everywhere.
    let expected = messages as usize * subscribers;
    for _ in 0..100 {
        if latencies.borrow().len() >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (wall, server_cpu, own_cpu) = cpu.read();
    let mut l = latencies.borrow().clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    Ok(format!(
        "{{\"mode\":\"rate\",\"subscribers\":{subscribers},\"rate\":{per_sec},\"messages\":{messages},\
         \"deliveries\":{},\"lost\":{},\"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\
         \"seconds\":{wall:.3},\"server_cpu_s\":{server_cpu:.3},\"loadgen_cpu_s\":{own_cpu:.3}}}",
        l.len(),
        expected.saturating_sub(l.len()),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    ))
}

async fn idle(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?;
    let pid = args.str("server-pid", "self");
    let connections = args.num("connections", 10_000) as usize;
    let hold = args.num("hold", 10);
    let rss0 = rss_bytes(&pid);
    let conns = open_many(&url, connections).await?;
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
