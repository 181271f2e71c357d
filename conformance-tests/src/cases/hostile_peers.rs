//! Hostile peers after the upgrade: a crowd that never reads nor writes, a message
//! whose fragments never end, a flood of pings. Each must cost the server bounded
//! memory and time, and leave everyone else served.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use melody_core::SessionError;
use melody_driver::Error;

use crate::backend::Backend;
use crate::client::{frame, Client, Raw};
use crate::flood::{flood, Stop};
use crate::harness::{config, echo, raise_fd_limit, wait_until, Call, Recorder, Server};

const MASK: Option<[u8; 4]> = Some([9, 8, 7, 6]);

/// Silent peers: enough to matter, few enough to share the process's descriptors
/// (both ends live here) with the rest of the suite running alongside.
const SILENT: usize = 1000;
const OPENERS: usize = 4;

/// 1000 connections complete the upgrade and then never read nor write (opened from
/// four threads, with a 250 ms ping period and a 1 s pong wait). Keepalive evicts
/// every one: each session gets exactly `on_connect`, `on_error(PongTimeout)`,
/// `on_disconnect`, each socket reaches its end, and `len()` falls back to the one
/// live client — opened while the crowd connects, echoing throughout, and never cut.
/// `HubStats` counts every connection as connected and every silent one as finished,
/// with nothing rejected or dropped.
pub fn silent_crowd_evicted_by_keepalive<B: Backend>() {
    let limit = raise_fd_limit(2 * SILENT as u64 + 2048);
    assert!(
        limit >= 2 * SILENT as u64 + 256,
        "the open-file limit ({limit}) is too low for {SILENT} connections; raise `ulimit -n`"
    );
    let pong_wait = Duration::from_secs(1);
    let cfg = config()
        .ping_period(Duration::from_millis(250))
        .pong_wait(pong_wait);
    let rec = Recorder::new();
    let server = Server::<B>::serve(cfg, |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let addr = server.addr;
    let opened = Arc::new(AtomicUsize::new(0));
    let openers: Vec<_> = (0..OPENERS)
        .map(|_| {
            let opened = opened.clone();
            std::thread::spawn(move || {
                (0..SILENT / OPENERS)
                    .map(|_| {
                        let raw = Raw::upgrade(addr, "/silent");
                        opened.fetch_add(1, Ordering::SeqCst);
                        raw
                    })
                    .collect::<Vec<Raw>>()
            })
        })
        .collect();
    wait_until(Duration::from_secs(30), "half the crowd to connect", || {
        opened.load(Ordering::SeqCst) >= SILENT / 2 || openers.iter().any(|t| t.is_finished())
    });
    let mut live = Client::connect(addr, "/live");
    let mut silent: Vec<Raw> = Vec::with_capacity(SILENT);
    for opener in openers {
        match opener.join() {
            Ok(raws) => silent.extend(raws),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    let all_open = Instant::now();
    let m = server.melody();
    let mut round = 0u32;
    // Echo until only the live client is left; reading answers its pings.
    while m.len() > 1 {
        assert!(
            all_open.elapsed() < pong_wait + Duration::from_secs(10),
            "{} silent sessions left {:?} after the last connected (pong_wait {pong_wait:?})",
            m.len() - 1,
            all_open.elapsed()
        );
        round += 1;
        let text = format!("live {round}");
        live.send_text(&text);
        assert_eq!(live.recv_text(), text);
        std::thread::sleep(Duration::from_millis(20));
    }
    let silent_addrs: Vec<SocketAddr> = silent.iter().map(Raw::local).collect();
    for (i, raw) in silent.iter_mut().enumerate() {
        assert!(
            raw.wait_closed(Duration::from_secs(3)).is_some(),
            "silent connection {i} was evicted but its socket is still open"
        );
    }
    let mut calls: HashMap<Option<SocketAddr>, Vec<Call>> = HashMap::new();
    for (a, c) in rec.all() {
        calls.entry(a).or_default().push(c);
    }
    let evicted = vec![
        Call::Connect,
        Call::Error(Error::Session(SessionError::PongTimeout)),
        Call::Disconnect,
    ];
    for a in &silent_addrs {
        assert_eq!(
            calls.get(&Some(*a)),
            Some(&evicted),
            "silent client {a}: its handler calls"
        );
    }
    let live_calls = calls.get(&Some(live.local)).cloned().unwrap_or_default();
    assert!(
        !live_calls
            .iter()
            .any(|c| matches!(c, Call::Error(_) | Call::Disconnect)),
        "the live client must not be cut: {live_calls:?}"
    );
    live.send_text("after the crowd");
    assert_eq!(live.recv_text(), "after the crowd");
    let stats = m.stats();
    assert_eq!(
        (
            stats.connected,
            stats.finished,
            stats.rejected,
            stats.dropped
        ),
        (SILENT as u64 + 1, SILENT as u64, 0, 0),
        "(connected, finished, rejected, dropped): {stats:?}"
    );
    let live_addr = live.local;
    live.close_and_wait();
    rec.wait_disconnect(live_addr);
    server.wait_len(0);
}

/// A text or a binary message sent as an endless stream of 512-byte fragments, with
/// `max_message_size` 8 KiB: while the fragments add up to exactly the limit, the
/// message is still accepted (a ping sent between them is answered, nothing else
/// comes back); from the first fragment past it, the session is closed with 1009 and,
/// once the close drain has read its budget (`close_drain_bytes`, 1 MiB here) of what
/// the client keeps sending, the connection ends, so its writes fail within 3 s.
/// `on_error` gets `MessageTooBig` with the limit and a size of at most one fragment
/// past it: the server held no more than that. No message is delivered, and a
/// bystander is served throughout.
pub fn endless_fragments_closed_1009<B: Backend>() {
    const LIMIT: usize = 8 * 1024;
    const FRAGMENT: usize = 512;
    let rec = Recorder::new();
    let cfg = config()
        .max_message_size(LIMIT)
        .close_timeout(Duration::from_secs(1))
        .close_drain_bytes(1 << 20);
    let server = Server::<B>::serve(cfg, |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let mut bystander = Client::connect(server.addr, "/bystander");
    for (name, opcode) in [("text", 0x1u8), ("binary", 0x2)] {
        let mut raw = Raw::upgrade(server.addr, "/fragments");
        let remote = raw.local();
        let session = server.session(remote);
        let fragment = vec![b'a'; FRAGMENT];
        let mut up_to_limit = frame(false, opcode, &fragment, MASK);
        for _ in 1..LIMIT / FRAGMENT {
            up_to_limit.extend(frame(false, 0x0, &fragment, MASK));
        }
        // A control frame may come between fragments; its answer shows that all of
        // the above was read, and that nothing (no close) came before it.
        up_to_limit.extend(frame(true, 0x9, b"at the limit", MASK));
        raw.send(&up_to_limit);
        let pong = raw.read_frame();
        assert_eq!(
            (pong.opcode, &pong.payload[..]),
            (0xA, &b"at the limit"[..]),
            "{name}: a message of exactly max_message_size must still be accepted"
        );
        let start = Instant::now();
        let continuation = frame(false, 0x0, &fragment, MASK).repeat(8);
        let flooder = flood(
            &raw.stream,
            continuation,
            16 << 20,
            Duration::from_secs(5),
            Duration::from_secs(2),
        );
        assert_eq!(raw.read_close_code(), 1009, "{name}: wrong close code");
        let ended = raw.wait_closed(Duration::from_secs(3));
        let stop = flooder.join().unwrap();
        assert!(
            ended.is_some(),
            "{name}: the connection was still open {:?} after the 1009 ({stop:?})",
            start.elapsed()
        );
        assert!(
            matches!(stop, Stop::Cut { at, .. } if at - start < Duration::from_secs(3)),
            "{name}: the server must stop reading and end the connection: {stop:?}"
        );
        rec.wait_disconnect(remote);
        let too_big: Vec<(usize, usize)> = rec
            .of(remote)
            .iter()
            .filter_map(|c| match c {
                Call::Error(Error::Session(SessionError::MessageTooBig { size, max })) => {
                    Some((*size, *max))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            too_big.len(),
            1,
            "{name}: on_error must get MessageTooBig once: {:?}",
            rec.of(remote)
        );
        let (size, max) = too_big[0];
        assert_eq!(max, LIMIT, "{name}: the limit reported");
        assert!(
            size > LIMIT && size <= LIMIT + FRAGMENT,
            "{name}: stopped at {size} bytes: must be within one fragment past {LIMIT}"
        );
        assert_eq!(session.stats().received, 0, "{name}: no message delivered");
        bystander.send_text(name);
        assert_eq!(bystander.recv_text(), name, "the bystander must be served");
    }
    server.wait_len(1);
}

/// Unsent pongs melody-core keeps per session: past this, the oldest is dropped (RFC
/// 6455 §5.5.3 lets a server answer only the latest ping).
const PENDING_PONGS: usize = 16;
/// A message larger than the socket buffers of a peer that does not read, so that
/// while it is in flight nothing else can be written.
const BLOCKER: usize = 32 << 20;
const PINGS: u32 = 10_000;

/// While a 32 MiB message is in flight to a client that does not read (so the server
/// cannot write anything else), the client sends 10,000 pings, each with its number,
/// and a text. Then it reads: after the big message come exactly 16 pongs — those of
/// the last 16 pings, in order, the last carrying the last ping's payload — and then
/// the echo of the text. The pongs never counted as data: the session's drop counter
/// and `HubStats::dropped` stay at 0, no `on_error` runs, and the session still
/// echoes and answers a ping afterwards.
pub fn ping_flood_pongs_coalesced<B: Backend>() {
    let rec = Recorder::new();
    let cfg = config()
        .ping_period(Duration::from_secs(20))
        .pong_wait(Duration::from_secs(30))
        .write_wait(Duration::from_secs(20))
        // The 32 MiB blocker is over the default 1 MiB byte bound.
        .message_buffer_bytes(None);
    let server = Server::<B>::serve(cfg, |m| {
        rec.lifecycle(m);
        let r = rec.clone();
        m.on_message(move |s, text| {
            r.record(s, Call::Text(text.to_owned()));
            let _ = s.write(text);
        });
    });
    let mut raw = Raw::upgrade(server.addr, "/pings");
    let remote = raw.local();
    let session = server.session(remote);
    assert_eq!(session.write_binary(&vec![7u8; BLOCKER]).queued, 1);
    // Its first bytes arriving show it is in flight: what is queued next waits for it.
    raw.stream
        .peek(&mut [0u8; 1])
        .expect("the big message must start arriving");
    let mut pings = Vec::with_capacity(PINGS as usize * 10);
    for i in 0..PINGS {
        pings.extend(frame(true, 0x9, &i.to_be_bytes(), MASK));
    }
    pings.extend(frame(true, 0x1, b"after the pings", MASK));
    raw.send(&pings);
    // Handled in order: once the text is, every ping before it has been.
    rec.wait(
        Duration::from_secs(10),
        "the text after the pings",
        |calls| {
            calls
                .iter()
                .any(|(a, c)| *a == Some(remote) && *c == Call::Text("after the pings".into()))
        },
    );
    assert_eq!(
        session.stats().sent,
        0,
        "the socket buffers took {BLOCKER} bytes: this case cannot hold the writer back"
    );

    let big = raw.read_frame();
    assert_eq!((big.opcode, big.payload.len()), (0x2, BLOCKER));
    let mut pongs = Vec::new();
    let text = loop {
        let f = raw.read_frame();
        match f.opcode {
            0xA => {
                let n: [u8; 4] = f.payload[..].try_into().expect("a 4-byte pong payload");
                pongs.push(u32::from_be_bytes(n));
            }
            0x1 => break f.payload,
            other => panic!("unexpected frame {other:#x} of {} bytes", f.payload.len()),
        }
    };
    assert_eq!(text, b"after the pings");
    let last: Vec<u32> = (PINGS - PENDING_PONGS as u32..PINGS).collect();
    assert_eq!(
        pongs, last,
        "a blocked writer keeps only the pongs of the last {PENDING_PONGS} pings"
    );

    raw.send_frame(true, 0x9, b"later");
    raw.send_frame(true, 0x1, b"still usable");
    let pong = raw.read_frame();
    assert_eq!((pong.opcode, &pong.payload[..]), (0xA, &b"later"[..]));
    let echo = raw.read_frame();
    assert_eq!(
        (echo.opcode, &echo.payload[..]),
        (0x1, &b"still usable"[..])
    );
    // The echo can arrive before the server has recorded its write as complete.
    wait_until(
        Duration::from_secs(5),
        "the echo to be counted as sent",
        || session.stats().queued == 0,
    );
    let stats = session.stats();
    assert_eq!(
        (stats.received, stats.sent, stats.dropped, stats.queued),
        (2, 3, 0, 0),
        "(received, sent, dropped, queued): {stats:?}"
    );
    assert_eq!(server.melody().stats().dropped, 0);
    let calls = rec.of(remote);
    assert!(
        !calls.iter().any(|c| matches!(c, Call::Error(_))),
        "a ping flood is no error: {calls:?}"
    );
    assert!(!session.is_closed());
}
