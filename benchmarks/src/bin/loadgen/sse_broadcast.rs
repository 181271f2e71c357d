//! `sse-broadcast`: broadcast to event-stream (SSE) subscribers beside broadcast to
//! WebSocket subscribers, in one sitting, rounds alternating (WS, SSE, WS, SSE, …) so
//! that the machine's noise hits both; measures server CPU per delivery of each kind.
//!
//! Each round opens one WebSocket publisher on `--url` (a path the server broadcasts
//! from, `/ws` in the `server` examples) and `--subscribers` subscribers of the round's
//! kind on the same URL: WebSocket upgrades, or `GET`s with `Accept: text/event-stream`.
//! The publisher keeps `--window` messages in flight (as `broadcast` does, by its own
//! copy), `--messages` in all, each a text of `--size` bytes that starts with its
//! sequence number; every subscriber checks that it gets each one, once, in order.
//! Server CPU (user + sys from /proc) is counted from the first publish to the last
//! delivery and divided by the subscribers' deliveries; the publisher's own copy and
//! its inbound message are the same overhead in both kinds (1/`subscribers` of the
//! deliveries). Between rounds every connection is closed and the server left to
//! settle (its CPU still), bounded.
//!
//! `--only ws` or `--only sse` runs rounds of one kind (for `strace -c` on the server).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use crate::args::Args;
use crate::client::{self, client_frame, parse_url, read_loop, Dial, Url};
use crate::event_stream;
use crate::measure::{cpu_seconds, cpu_user_sys};

/// The subscribers' kind in a round.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Ws,
    Sse,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ws => "ws",
            Kind::Sse => "sse",
        }
    }
}

/// What one subscriber saw.
#[derive(Default)]
struct Tally {
    received: Cell<u64>,
    /// Messages whose sequence number was not the next expected one.
    out_of_order: Cell<u64>,
}

impl Tally {
    /// Counts one message, checking its sequence number.
    fn count(&self, data: &[u8]) {
        let seq = data
            .get(..8)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u64>().ok());
        if seq != Some(self.received.get()) {
            self.out_of_order.set(self.out_of_order.get() + 1);
        }
        self.received.set(self.received.get() + 1);
    }
}

/// One round's figures.
struct Round {
    kind: Kind,
    deliveries: u64,
    lost: u64,
    out_of_order: u64,
    /// Subscribers that got fewer messages than were sent.
    short: u64,
    seconds: f64,
    user: f64,
    sys: f64,
    loadgen: f64,
}

impl Round {
    fn per_delivery_us(&self) -> f64 {
        (self.user + self.sys) * 1e6 / self.deliveries.max(1) as f64
    }

    fn json(&self) -> String {
        let d = self.deliveries.max(1) as f64;
        format!(
            "{{\"kind\":\"{}\",\"deliveries\":{},\"lost\":{},\"out_of_order\":{},\"subscribers_short\":{},\
             \"seconds\":{:.3},\"deliveries_per_sec\":{:.0},\"server_cpu_s\":{:.3},\
             \"server_cpu_per_delivery_us\":{:.4},\"server_user_per_delivery_us\":{:.4},\
             \"server_sys_per_delivery_us\":{:.4},\"loadgen_cpu_s\":{:.3}}}",
            self.kind.name(),
            self.deliveries,
            self.lost,
            self.out_of_order,
            self.short,
            self.seconds,
            self.deliveries as f64 / self.seconds,
            self.user + self.sys,
            self.per_delivery_us(),
            self.user * 1e6 / d,
            self.sys * 1e6 / d,
            self.loadgen,
        )
    }
}

/// The mode's settings.
struct Settings {
    url: Url,
    pid: String,
    subscribers: usize,
    window: u64,
    messages: u64,
    size: usize,
}

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let s = Settings {
        url: parse_url(&args.str("url", "ws://127.0.0.1:6000/ws"))?,
        pid: args.str("server-pid", "self"),
        subscribers: args.num("subscribers", 1000) as usize,
        window: args.num("window", 64),
        messages: args.num("messages", 2000),
        size: args.num("size", 64).max(8) as usize,
    };
    let pairs = args.num("pairs", 3);
    let kinds: &[Kind] = match args.str("only", "").as_str() {
        "" => &[Kind::Ws, Kind::Sse],
        "ws" => &[Kind::Ws],
        "sse" => &[Kind::Sse],
        other => return Err(format!("--only {other:?}: ws or sse")),
    };
    let mut rounds = Vec::new();
    for _ in 0..pairs {
        for &kind in kinds {
            settle(&s.pid).await;
            rounds.push(round(&s, kind).await?);
        }
    }
    let median = |kind: Kind| {
        let mut v: Vec<f64> = rounds
            .iter()
            .filter(|r| r.kind == kind)
            .map(Round::per_delivery_us)
            .collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let (ws, sse) = (median(Kind::Ws), median(Kind::Sse));
    // Each SSE round against the WebSocket round just before it.
    let pair_ratios: Vec<String> = rounds
        .windows(2)
        .filter(|w| w[0].kind == Kind::Ws && w[1].kind == Kind::Sse)
        .map(|w| format!("{:.3}", w[1].per_delivery_us() / w[0].per_delivery_us()))
        .collect();
    let lost: u64 = rounds.iter().map(|r| r.lost).sum();
    let out_of_order: u64 = rounds.iter().map(|r| r.out_of_order).sum();
    let rounds_json: Vec<String> = rounds.iter().map(Round::json).collect();
    let num = |x: f64| {
        if x.is_finite() {
            format!("{x:.4}")
        } else {
            "null".into()
        }
    };
    Ok(format!(
        "{{\"mode\":\"sse-broadcast\",\"subscribers\":{},\"window\":{},\"messages\":{},\"size\":{},\
         \"ws_cpu_per_delivery_us\":{},\"sse_cpu_per_delivery_us\":{},\"sse_over_ws\":{},\
         \"pair_ratios\":[{}],\"lost\":{lost},\"out_of_order\":{out_of_order},\"rounds\":[{}]}}",
        s.subscribers,
        s.window,
        s.messages,
        s.size,
        num(ws),
        num(sse),
        num(sse / ws),
        pair_ratios.join(","),
        rounds_json.join(",")
    ))
}

/// Waits until the server's CPU is still (closed connections torn down), at most 5 s.
async fn settle(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = cpu_seconds(pid);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = cpu_seconds(pid);
        if now - last < 0.005 {
            return;
        }
        last = now;
    }
}

/// One round: connect, settle, publish and count, close.
async fn round(s: &Settings, kind: Kind) -> Result<Round, String> {
    let done = Rc::new(tokio::sync::Notify::new());
    let total = Rc::new(Cell::new(0u64));
    let expected = s.messages * s.subscribers as u64;
    let tallies: Vec<Rc<Tally>> = (0..s.subscribers).map(|_| Rc::default()).collect();
    let mut tasks: Vec<JoinHandle<()>> = Vec::with_capacity(s.subscribers + 1);
    let mut keep = Vec::new();
    let counter = |i: usize| {
        let (tally, total, done) = (tallies[i].clone(), total.clone(), done.clone());
        move |data: &[u8]| {
            tally.count(data);
            total.set(total.get() + 1);
            if total.get() == expected {
                done.notify_waiters();
            }
        }
    };
    // Subscribers first, so that the publisher is the last session to join.
    match kind {
        Kind::Ws => {
            let conns = client::open_many(&s.url, s.subscribers, |i| Dial::nth(i + 1)).await?;
            for (i, (r, w, leftover)) in conns.into_iter().enumerate() {
                let w = Rc::new(RefCell::new(Some(w)));
                keep.push(w.clone());
                tasks.push(tokio::task::spawn_local(read_loop(
                    r,
                    w,
                    leftover,
                    counter(i),
                )));
            }
        }
        Kind::Sse => {
            let streams =
                event_stream::open_many(&s.url, s.subscribers, |i| Dial::nth(i + 1)).await?;
            for (i, (stream, leftover)) in streams.into_iter().enumerate() {
                tasks.push(tokio::task::spawn_local(event_stream::read_loop(
                    stream,
                    leftover,
                    counter(i),
                )));
            }
        }
    }
    let (r, w, leftover) = client::connect(&s.url, Dial::nth(0)).await?;
    let publisher = Rc::new(RefCell::new(Some(w)));
    let publisher_seen = Rc::new(Cell::new(0u64));
    {
        let (seen, done) = (publisher_seen.clone(), done.clone());
        tasks.push(tokio::task::spawn_local(read_loop(
            r,
            publisher.clone(),
            leftover,
            move |_| {
                seen.set(seen.get() + 1);
                done.notify_waiters();
            },
        )));
    }
    settle(&s.pid).await;

    let fill = vec![b'x'; s.size - 8];
    let (user0, sys0) = cpu_user_sys(&s.pid);
    let own0 = cpu_seconds("self");
    let wall0 = Instant::now();
    let mut sent = 0u64;
    let mut writer = publisher.borrow_mut().take().ok_or("publisher busy")?;
    while total.get() < expected {
        while sent < s.messages && sent - publisher_seen.get() < s.window {
            let mut payload = format!("{sent:08}").into_bytes();
            payload.extend_from_slice(&fill);
            writer
                .write_all(&client_frame(0x1, &payload))
                .await
                .map_err(|e| e.to_string())?;
            sent += 1;
        }
        *publisher.borrow_mut() = Some(writer);
        let _ = tokio::time::timeout(Duration::from_secs(5), done.notified()).await;
        writer = publisher.borrow_mut().take().ok_or("publisher busy")?;
        if sent == s.messages && total.get() < expected {
            // Only stragglers left: wait for them, bounded.
            let stalled = total.get();
            let _ = tokio::time::timeout(Duration::from_millis(500), done.notified()).await;
            if total.get() == stalled {
                break;
            }
        }
    }
    let seconds = wall0.elapsed().as_secs_f64();
    let (user1, sys1) = cpu_user_sys(&s.pid);
    let loadgen = cpu_seconds("self") - own0;

    // Close everything: the tasks own the read halves (SSE: the whole stream).
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    drop(keep);
    drop(writer);
    drop(publisher);

    let deliveries = total.get();
    Ok(Round {
        kind,
        deliveries,
        lost: expected.saturating_sub(deliveries),
        out_of_order: tallies.iter().map(|t| t.out_of_order.get()).sum(),
        short: tallies
            .iter()
            .filter(|t| t.received.get() < s.messages)
            .count() as u64,
        seconds,
        user: user1 - user0,
        sys: sys1 - sys0,
        loadgen,
    })
}
