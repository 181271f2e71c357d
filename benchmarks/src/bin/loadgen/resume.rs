//! `resume`: many event-stream clients come back at once from one history position
//! with `--messages` messages retained after it (the `events` example of
//! melody-tokio, run with `--history N`); measures the time until every client has
//! them all, in order, and the server's CPU meanwhile.
//!
//! First a marker event is POSTed (its answer names its position), then the
//! messages, to nobody; then `--clients` streams open with `Last-Event-ID` set to the
//! marker's position. Every client checks that it gets each message once and in order
//! (the data starts with its number).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::args::Args;
use crate::client::{parse_url, request_head, Dial, Url};
use crate::event_stream;
use crate::measure::Cpu;

/// POSTs `body` to the URL's path; the answer's body.
async fn post(url: &Url, body: &str) -> Result<String, String> {
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        url.path,
        url.host,
        body.len()
    );
    let (mut stream, head, mut rest) = request_head(url, Dial::default(), &request).await?;
    if !head.starts_with("HTTP/1.1 202") {
        return Err(format!("publish refused: {head}"));
    }
    stream
        .read_to_end(&mut rest)
        .await
        .map_err(|e| e.to_string())?;
    String::from_utf8(rest).map_err(|e| e.to_string())
}

/// The `"position":"…"` of a publish's answer.
fn position_of(answer: &str) -> Result<String, String> {
    let after = answer
        .split_once(r#""position":""#)
        .ok_or_else(|| format!("no position in {answer}"))?
        .1;
    let end = after.find('"').ok_or("unterminated position")?;
    Ok(after[..end].to_owned())
}

/// Opens an event stream that resumes from `position`.
async fn connect_from(
    url: &Url,
    dial: Dial,
    position: &str,
) -> Result<event_stream::Stream, String> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nLast-Event-ID: {position}\r\n\r\n",
        url.path, url.host
    );
    let (stream, head, leftover) = request_head(url, dial, &request).await?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("not an event stream: {head}"));
    }
    Ok((stream, leftover))
}

/// Runs the mode; the JSON of its result.
pub async fn run(args: &Args) -> Result<String, String> {
    let url = parse_url(&args.str("url", "ws://127.0.0.1:5002/devices/bench/events"))?;
    let pid = args.str("server-pid", "self");
    let clients = args.num("clients", 1000) as usize;
    let messages = args.num("messages", 1000);
    let size = args.num("size", 64) as usize;

    let start = position_of(&post(&url, "marker").await?)?;
    for i in 1..=messages {
        // Numbered, padded to `size` bytes.
        let mut data = format!("{i:08} ");
        data.extend(std::iter::repeat_n('x', size.saturating_sub(data.len())));
        post(&url, &data).await?;
    }

    let caught_up = Rc::new(Cell::new(0usize));
    let received = Rc::new(Cell::new(0u64));
    let disordered = Rc::new(Cell::new(0u64));
    let last_done = Rc::new(Cell::new(Duration::ZERO));
    let done = Rc::new(tokio::sync::Notify::new());
    let cpu = Cpu::start(&pid);
    let began = Instant::now();
    for first in (0..clients).step_by(200) {
        let mut pending = Vec::new();
        for i in first..(first + 200).min(clients) {
            pending.push(connect_from(&url, Dial::nth(i), &start));
        }
        for p in pending {
            let (stream, leftover) = p.await?;
            let (caught_up, received, disordered, last_done, done) = (
                caught_up.clone(),
                received.clone(),
                disordered.clone(),
                last_done.clone(),
                done.clone(),
            );
            let mut next = 1u64;
            tokio::task::spawn_local(event_stream::read_loop(stream, leftover, move |data| {
                received.set(received.get() + 1);
                let number = std::str::from_utf8(data.get(..8).unwrap_or_default())
                    .ok()
                    .and_then(|n| n.parse::<u64>().ok());
                if number != Some(next) {
                    disordered.set(disordered.get() + 1);
                }
                next += 1;
                if next == messages + 1 {
                    caught_up.set(caught_up.get() + 1);
                    last_done.set(began.elapsed());
                    done.notify_waiters();
                }
            }));
        }
    }
    while caught_up.get() < clients {
        let before = received.get();
        let _ = tokio::time::timeout(Duration::from_secs(5), done.notified()).await;
        if received.get() == before && caught_up.get() < clients {
            break; // nothing for 5 s: report what arrived
        }
    }
    let (_, server_cpu, own_cpu) = cpu.read();
    let got = received.get();
    let expected = messages * clients as u64;
    Ok(format!(
        "{{\"mode\":\"resume\",\"clients\":{clients},\"messages\":{messages},\"size\":{size},\
         \"caught_up\":{},\"deliveries\":{got},\"lost\":{},\"disordered\":{},\
         \"seconds_to_all_caught_up\":{:.3},\"server_cpu_s\":{server_cpu:.3},\
         \"server_cpu_per_delivery_us\":{:.4},\"loadgen_cpu_s\":{own_cpu:.3}}}",
        caught_up.get(),
        expected.saturating_sub(got),
        disordered.get(),
        last_done.get().as_secs_f64(),
        server_cpu * 1e6 / got.max(1) as f64
    ))
}
