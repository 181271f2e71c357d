//! Memory a hostile client cannot grow, and answers it cannot miss: the close frame of
//! a refused message reaches a client that is still writing; plain GETs on socket paths
//! get 426 and the page only its own paths; slow readers stay inside the memory budget.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use melody_core::HttpPage;

use crate::backend::Backend;
use crate::client::Raw;
use crate::harness::{config, echo, wait_until, Server};

/// The header of a masked binary frame announcing `len` payload bytes, with a zero
/// mask key (the payload goes on the wire as it is).
fn header(len: u64) -> Vec<u8> {
    let mut out = vec![0x82, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out
}

/// Writes `bytes` all at once before reading anything, as a client whose stack tears
/// the connection down on a write error would, then reads the close code.
fn write_first_then_read_close(raw: &mut Raw, bytes: &[u8], name: &str) -> u16 {
    if let Err(e) = raw.stream.write_all(bytes) {
        panic!(
            "{name}: the server reset the connection while the client was still writing \
             ({e}): it must drain input after its close frame"
        );
    }
    raw.read_close_code()
}

/// A client that writes a whole 16 MiB + 1 message at a 16 MiB limit before reading
/// anything gets to read close 1009, and so does one that writes an oversized message
/// and 4 MiB more at the default limit: after its close frame, the server shuts its
/// write side down and drains input (`close_drain_timeout`, `close_drain_bytes`)
/// instead of resetting the connection under the client's writes.
pub fn oversize_close_reaches_a_client_still_writing<B: Backend>() {
    let limit = 16usize << 20;
    let server = Server::<B>::serve(config().max_message_size(limit), echo);
    let mut big = Raw::upgrade(server.addr, "/");
    let mut bytes = header(limit as u64 + 1);
    bytes.resize(bytes.len() + limit + 1, 0);
    let code = write_first_then_read_close(&mut big, &bytes, "16 MiB + 1");
    assert_eq!(code, 1009, "16 MiB + 1 at a 16 MiB limit");
    assert!(
        big.wait_closed(Duration::from_secs(4)).is_some(),
        "the server must end the connection after the drain"
    );
    drop(server);

    let server = Server::<B>::serve(config(), echo);
    let mut raw = Raw::upgrade(server.addr, "/");
    let default_limit = config().max_message_size;
    let mut bytes = header(default_limit as u64 + 1);
    bytes.resize(bytes.len() + default_limit + 1 + (4 << 20), 0);
    let code = write_first_then_read_close(&mut raw, &bytes, "default limit");
    assert_eq!(code, 1009, "an oversized message at the default limit");
    assert!(raw.wait_closed(Duration::from_secs(4)).is_some());
}

/// A plain GET (no upgrade asked) on a socket's path gets `426 Upgrade Required` with
/// `Sec-WebSocket-Version: 13`; with `Config::http_page` at `/`, `/` gets the page
/// (200) and every other path still gets 426.
pub fn plain_get_gets_426_and_the_page_only_its_path<B: Backend>() {
    let get = |server: &Server<B>, path: &str| {
        let mut raw = Raw::connect(server.addr);
        raw.send(format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes());
        raw.read_head()
    };
    let version = |head: &crate::client::Head| {
        head.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-version"))
            .map(|(_, v)| v.clone())
    };
    let server = Server::<B>::serve(config(), echo);
    for path in ["/", "/echo"] {
        let head = get(&server, path);
        assert_eq!(head.status, 426, "plain GET {path} without a page");
        assert_eq!(version(&head).as_deref(), Some("13"), "{path}: {head:?}");
    }
    drop(server);

    let page = HttpPage::at("/", "<!doctype html><p>the page");
    let server = Server::<B>::serve(config().http_page(Some(page)), echo);
    let head = get(&server, "/");
    assert_eq!(head.status, 200, "the page at its path");
    for path in ["/echo", "/ws", "/index.html"] {
        let head = get(&server, path);
        assert_eq!(head.status, 426, "plain GET {path} beside a page at /");
        assert_eq!(version(&head).as_deref(), Some("13"), "{path}: {head:?}");
    }
    assert_eq!(server.melody().stats().rejected, 3);
    // Sockets still upgrade on every path.
    drop(Raw::upgrade(server.addr, "/echo"));
}

/// A client connection whose kernel buffers hold little of what the server sends it:
/// a 4 KiB receive buffer, and 536-byte segments, which also keep the server's send
/// buffer small (Linux sizes it from the segment size). What a non-reading client is
/// sent then piles up in the server's outbox, as over a slow network, instead of in
/// loopback buffers of several MiB. Elsewhere than unix, a plain connection.
fn cramped(addr: SocketAddr, path: &str) -> Raw {
    #[cfg(unix)]
    {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.set_tcp_mss(536).unwrap();
        socket.set_tcp_nodelay(true).unwrap();
        socket
            .connect_timeout(&addr.into(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        Raw::upgrade_on(socket.into(), addr, path)
    }
    #[cfg(not(unix))]
    Raw::upgrade(addr, path)
}

/// 200 clients on an echo route each send four 64 KiB messages and read nothing (on
/// unix over sockets with a 4 KiB receive buffer and 536-byte segments, so that the
/// echoes wait in the server rather than in loopback buffers): the bytes the server holds for them
/// (`HubStats::memory_held`, sampled throughout) never exceed `Config::memory_budget`
/// (4 MiB here, against ~50 MiB of echoes), the budget refuses what does not fit
/// (`HubStats::over_budget` for echoes; a session whose partial inbound message finds
/// it full is closed with 1013, `HubStats::inbound_over_budget`), and every message is
/// accounted for: each session that read all its messages has received = sent + queued
/// + dropped.
pub fn slow_readers_stay_inside_the_memory_budget<B: Backend>() {
    const CLIENTS: usize = 200;
    const MESSAGES: usize = 4;
    let budget = 4usize << 20;
    let payload = 64 * 1024;
    let server = Server::<B>::serve(config().memory_budget(Some(budget)), echo);
    let melody = server.melody().clone();

    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (melody, sampling) = (melody.clone(), sampling.clone());
        std::thread::spawn(move || {
            let mut most = 0u64;
            while sampling.load(Ordering::Relaxed) {
                most = most.max(melody.stats().memory_held);
                std::thread::sleep(Duration::from_millis(1));
            }
            most.max(melody.stats().memory_held)
        })
    };
    let mut message = header(payload as u64);
    message.resize(message.len() + payload, 0);
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut raw = cramped(server.addr, "/echo");
        for _ in 0..MESSAGES {
            raw.send(&message);
        }
        clients.push(raw);
    }
    // A session whose partial inbound message finds the budget full is closed with 1013
    // (`HubStats::inbound_over_budget`) and reads nothing more; every other one receives
    // all its messages.
    let done = || {
        let finished = melody
            .sessions()
            .iter()
            .filter(|s| s.stats().received == MESSAGES as u64)
            .count() as u64;
        finished + melody.stats().inbound_over_budget
    };
    wait_until(
        Duration::from_secs(10),
        "every message received, or its session refused for the budget",
        || done() == CLIENTS as u64,
    );
    sampling.store(false, Ordering::Relaxed);
    let most = sampler.join().expect("the sampler");
    let stats = melody.stats();
    assert!(
        most <= budget as u64,
        "the server held {most} bytes, over its {budget}-byte budget"
    );
    assert!(
        stats.over_budget + stats.inbound_over_budget > 0,
        "the budget never refused anything ({stats:?}): the case did not reach it"
    );
    assert!(stats.dropped >= stats.over_budget, "{stats:?}");
    for session in melody.sessions() {
        let s = session.stats();
        if s.received < MESSAGES as u64 {
            continue; // refused for the budget: counted above
        }
        assert_eq!(
            s.sent + s.queued as u64 + s.dropped,
            s.received,
            "every echo written, waiting or counted dropped: {s:?}"
        );
    }
    drop(clients);
    server.wait_len(0);
    assert_eq!(melody.stats().memory_held, 0, "ended sessions hold nothing");
}
