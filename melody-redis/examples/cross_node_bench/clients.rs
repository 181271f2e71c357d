//! Blocking WebSocket clients: receivers on their own threads, and a publisher that
//! measures latency (one message at a time) and throughput (a window in flight).

use std::error::Error;
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

use crate::nodes::{Node, TOPIC};

/// How long any one wait may take before the run is declared broken.
const STALL: Duration = Duration::from_secs(30);
/// Every message's size, as in the other benchmarks.
const MESSAGE_LEN: usize = 64;

fn connect(node: &Node, path: &str) -> Result<WebSocket<TcpStream>, Box<dyn Error>> {
    let stream = TcpStream::connect(node.addr)?;
    stream.set_read_timeout(Some(STALL))?;
    stream.set_nodelay(true)?;
    let (ws, _) = tungstenite::client::client(format!("ws://{}{path}", node.addr), stream)?;
    Ok(ws)
}

/// `SEQ SENT_NANOS `, padded to [`MESSAGE_LEN`] bytes.
fn message(seq: u64, origin: Instant) -> String {
    let mut text = format!("{seq} {} ", origin.elapsed().as_nanos());
    let pad = MESSAGE_LEN.saturating_sub(text.len());
    text.extend(std::iter::repeat_n('x', pad));
    text
}

/// The message's sequence number and latency (now minus its send time).
fn parse(text: &str, origin: Instant) -> Option<(u64, Duration)> {
    let mut parts = text.split_whitespace();
    let seq = parts.next()?.parse().ok()?;
    let sent: u64 = parts.next()?.parse().ok()?;
    let now = u64::try_from(origin.elapsed().as_nanos()).ok()?;
    Some((seq, Duration::from_nanos(now.saturating_sub(sent))))
}

/// Subscribed clients of one node, each reading on its own thread.
pub struct Receivers {
    pub count: usize,
    /// Messages received, over all receivers.
    delivered: Arc<AtomicU64>,
    /// Messages published to these receivers' topic so far.
    published: AtomicU64,
    /// The first receiver's (sequence, latency) for each message.
    first: Mutex<Receiver<(u64, Duration)>>,
}

impl Receivers {
    pub fn start(node: &Node, count: usize, origin: Instant) -> Result<Receivers, Box<dyn Error>> {
        let delivered = Arc::new(AtomicU64::new(0));
        let (tx, rx) = channel();
        for index in 0..count {
            let ws = connect(node, "/sub")?;
            let tx = (index == 0).then(|| tx.clone());
            let delivered = delivered.clone();
            std::thread::spawn(move || read_loop(ws, tx, &delivered, origin));
        }
        let deadline = Instant::now() + STALL;
        while node.melody.subscriber_count(TOPIC) < count {
            if Instant::now() > deadline {
                return Err("receivers did not subscribe".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Receivers {
            count,
            delivered,
            published: AtomicU64::new(0),
            first: Mutex::new(rx),
        })
    }
}

impl Receivers {
    /// Waits until every receiver has every message published so far, so that one
    /// pass's stragglers do not count in the next; returns the deliveries so far.
    fn quiesce(&self) -> Result<u64, Box<dyn Error>> {
        let expected = self.published.load(Ordering::Relaxed) * self.count as u64;
        let deadline = Instant::now() + STALL;
        loop {
            let delivered = self.delivered.load(Ordering::Relaxed);
            if delivered >= expected {
                return Ok(delivered);
            }
            if Instant::now() > deadline {
                return Err(format!("receivers stalled at {delivered} of {expected}").into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn read_loop(
    mut ws: WebSocket<TcpStream>,
    first: Option<Sender<(u64, Duration)>>,
    delivered: &AtomicU64,
    origin: Instant,
) {
    // Ends when the connection fails or stays silent for STALL (the run is over).
    while let Ok(msg) = ws.read() {
        let Message::Text(text) = msg else { continue };
        delivered.fetch_add(1, Ordering::Relaxed);
        if let (Some(tx), Some(sample)) = (&first, parse(&text, origin)) {
            if tx.send(sample).is_err() {
                return;
            }
        }
    }
}

/// Latency percentiles.
pub struct Latency {
    pub samples: usize,
    pub p50: Duration,
    pub p99: Duration,
}

/// A throughput run's outcome.
pub struct Throughput {
    pub deliveries: u64,
    pub expected: u64,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

pub struct Publisher {
    ws: WebSocket<TcpStream>,
    origin: Instant,
    next_seq: u64,
}

impl Publisher {
    pub fn connect(node: &Node, origin: Instant) -> Result<Publisher, Box<dyn Error>> {
        Ok(Publisher {
            ws: connect(node, "/pub")?,
            origin,
            next_seq: 0,
        })
    }

    fn send(&mut self) -> Result<u64, Box<dyn Error>> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.ws.send(Message::text(message(seq, self.origin)))?;
        Ok(seq)
    }

    /// One message at a time: the next goes once the first receiver has this one.
    pub fn latency(&mut self, to: &Receivers, samples: usize) -> Result<Latency, Box<dyn Error>> {
        to.quiesce()?;
        let first = to.first.lock().map_err(|_| "receiver lock")?;
        drain(&first);
        to.published.fetch_add(samples as u64, Ordering::Relaxed);
        let mut latencies = Vec::with_capacity(samples);
        for _ in 0..samples {
            let seq = self.send()?;
            loop {
                let (got, latency) = first.recv_timeout(STALL)?;
                if got == seq {
                    latencies.push(latency);
                    break;
                }
            }
        }
        let (p50, p99) = percentiles(&mut latencies);
        Ok(Latency { samples, p50, p99 })
    }

    /// `messages` messages with at most `window` ahead of the first receiver; then
    /// waits until every receiver has every message (or the run stalls).
    pub fn throughput(
        &mut self,
        to: &Receivers,
        messages: usize,
        window: usize,
    ) -> Result<Throughput, Box<dyn Error>> {
        let before = to.quiesce()?;
        let first = to.first.lock().map_err(|_| "receiver lock")?;
        drain(&first);
        to.published.fetch_add(messages as u64, Ordering::Relaxed);
        let expected = (messages * to.count) as u64;
        let mut latencies = Vec::with_capacity(messages);
        let start = Instant::now();
        let mut acknowledged = 0usize;
        for sent in 0..messages {
            while sent - acknowledged >= window {
                let (_, latency) = first.recv_timeout(STALL)?;
                latencies.push(latency);
                acknowledged += 1;
            }
            self.send()?;
        }
        while acknowledged < messages {
            let (_, latency) = first.recv_timeout(STALL)?;
            latencies.push(latency);
            acknowledged += 1;
        }
        let deadline = Instant::now() + STALL;
        while to.delivered.load(Ordering::Relaxed) - before < expected && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        let elapsed = start.elapsed();
        let deliveries = to.delivered.load(Ordering::Relaxed) - before;
        let (p50, p99) = percentiles(&mut latencies);
        Ok(Throughput {
            deliveries,
            expected,
            per_second: deliveries as f64 / elapsed.as_secs_f64(),
            p50,
            p99,
        })
    }
}

fn drain(rx: &Receiver<(u64, Duration)>) {
    while rx.try_recv().is_ok() {}
}

fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or_default()
    };
    (at(0.50), at(0.99))
}
