//! Quiet sessions give up their task (`Melody::parked_connections`) and come back for
//! every kind of wakeup: a message for them, input from their peer, their peer's
//! close, a ping due, a shutdown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use melody_driver::Melody;
use tungstenite::Message;

use crate::backend::Backend;
use crate::client::{Client, Raw, RecvError};
use crate::harness::{config, echo, wait_until, Call, Recorder, Server};

const WAIT: Duration = Duration::from_secs(5);

fn wait_parked<R: melody_driver::Runtime>(melody: &Melody<R>, n: usize) {
    wait_until(WAIT, &format!("{n} parked connections"), || {
        melody.parked_connections() == n
    });
}

fn wait_outside_reactor<R: melody_driver::Runtime>(melody: &Melody<R>, n: usize) {
    wait_until(WAIT, &format!("{n} connections out of the reactor"), || {
        melody.parked_outside_reactor() == n
    });
}

/// Sessions that have sent and received nothing park; a broadcast brings each back to
/// write it, a message from the peer to run the handler, a peer's close to end the
/// session, and a shutdown to close the rest with 1001. Sessions that had data stay
/// tasks until their next ping tick.
pub fn quiet_sessions_park_and_wake_for_every_kind_of_wakeup<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config(), |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let melody = server.melody();
    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::connect(server.addr, &format!("/{i}")))
        .collect();
    server.wait_len(3);
    wait_parked(melody, 3);
    assert_eq!(
        melody.connection_tasks(),
        3,
        "parked connections still count"
    );
    if B::SERVE_LEAVES_REACTOR {
        // A park is counted before its socket leaves the reactor.
        wait_outside_reactor(melody, 3);
    }

    // A message for them.
    assert_eq!(melody.broadcast("to all").queued, 3);
    for c in &mut clients {
        assert_eq!(c.recv_text(), "to all");
    }
    assert_eq!(
        melody.parked_connections(),
        0,
        "data went out: tasks until the next ping tick"
    );

    // Input from the peer.
    let mut talker = Client::connect(server.addr, "/talker");
    server.wait_len(4);
    wait_parked(melody, 1);
    if B::SERVE_LEAVES_REACTOR {
        // Its input comes through the instance's own watch, and the echo goes out
        // through the reactor it rejoined.
        wait_outside_reactor(melody, 1);
    }
    talker.send_text("hello");
    assert_eq!(talker.recv_text(), "hello", "the echo handler ran");
    assert_eq!(melody.parked_connections(), 0);
    wait_until(WAIT, "its socket back in its reactor", || {
        melody.parked_outside_reactor() == 0
    });
    talker.send_text("again");
    assert_eq!(talker.recv_text(), "again");

    // The peer's close.
    let leaver = Client::connect(server.addr, "/leaver");
    server.wait_len(5);
    let leaver_addr = leaver.local;
    wait_parked(melody, 1);
    leaver.close_and_wait();
    server.wait_len(4);
    wait_until(WAIT, "the leaver's on_disconnect", || {
        rec.of(leaver_addr).contains(&Call::Disconnect)
    });
    wait_parked(melody, 0);

    // A shutdown reaches parked sessions too.
    let quiet: Vec<Client> = (0..2)
        .map(|i| Client::connect(server.addr, &format!("/quiet{i}")))
        .collect();
    server.wait_len(6);
    wait_parked(melody, 2);
    let readers: Vec<_> = clients
        .into_iter()
        .chain([talker])
        .chain(quiet)
        .map(|mut c| {
            std::thread::spawn(move || match c.recv() {
                Message::Close(frame) => {
                    c.finish_close();
                    frame.map_or(1005, |f| u16::from(f.code))
                }
                other => panic!("unexpected {}", crate::client::describe(&other)),
            })
        })
        .collect();
    let report = server.block_on(melody.shutdown(WAIT));
    for reader in readers {
        assert_eq!(reader.join().unwrap(), 1001);
    }
    assert_eq!(report.closed, 6, "{report:?}");
    wait_until(WAIT, "every connection task gone", || {
        melody.connection_tasks() == 0
    });
    assert_eq!(melody.parked_connections(), 0);
    assert_eq!(melody.parked_outside_reactor(), 0);
}

/// A session that parks again after each answer is woken by each next input: four
/// peers each ping in a loop, one ping in flight, every ping answered. (Each pong goes
/// out, the session is quiet again and parks, and the next ping comes in while it
/// does: a park that reused the socket's watch from before missed some of them.)
pub fn a_session_parking_after_each_answer_is_woken_by_each_next_input<B: Backend>() {
    const PINGS: u32 = 1000;
    let server = Server::<B>::serve(config(), echo);
    let addr = server.addr;
    let peers: Vec<_> = (0..4)
        .map(|peer| {
            std::thread::spawn(move || {
                let mut raw = Raw::upgrade(addr, "/");
                for i in 0..PINGS {
                    let payload = i.to_be_bytes();
                    raw.send_frame(true, 0x9, &payload);
                    let pong = raw
                        .try_read_frame(WAIT)
                        .unwrap_or_else(|end| panic!("peer {peer}, ping {i}: no pong ({end:?})"));
                    assert_eq!((pong.opcode, &pong.payload[..]), (0xA, &payload[..]));
                }
            })
        })
        .collect();
    for peer in peers {
        peer.join().expect("every ping answered");
    }
}

/// A parked session keeps its keepalive: each ping due brings it back to write the
/// ping, it waits as a task for the pong, and parks again once the pong is in (200 ms
/// pings here, answered by a client that reads all along).
pub fn parked_sessions_keep_their_keepalive<B: Backend>() {
    const PINGS: usize = 6;
    let rec = Recorder::new();
    let cfg = config()
        .ping_period(Duration::from_millis(200))
        .pong_wait(Duration::from_secs(2));
    let server = Server::<B>::serve(cfg, |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let melody = server.melody();
    let mut client = Client::connect(server.addr, "/");
    server.wait_len(1);
    // tungstenite answers each ping on its next read.
    let seen = Arc::new(AtomicUsize::new(0));
    let pings_seen = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut pings = 0;
        while pings < PINGS {
            match client.try_recv(WAIT) {
                Ok(Message::Ping(_)) => {
                    pings += 1;
                    pings_seen.store(pings, Ordering::SeqCst);
                }
                Ok(other) => panic!("unexpected {}", crate::client::describe(&other)),
                Err(RecvError::Timeout) => panic!("no ping in {WAIT:?} after {pings}"),
                Err(RecvError::Closed(e)) => panic!("cut after {pings} pings: {e}"),
            }
        }
        client
    });
    // Parked since it connected, until its first ping; then, past the second, parked
    // again between a pong and the next ping (most of each period).
    wait_until(WAIT, "two pings", || seen.load(Ordering::SeqCst) >= 2);
    wait_parked(melody, 1);
    assert!(
        seen.load(Ordering::SeqCst) < PINGS,
        "parked between pings while the client answered them"
    );
    let mut client = reader.join().unwrap();
    wait_until(WAIT, "on_pong for the answered pings", || {
        rec.of(client.local)
            .iter()
            .filter(|c| **c == Call::Pong)
            .count()
            >= PINGS - 1
    });
    client.send_text("alive");
    loop {
        match client.recv() {
            Message::Text(text) => break assert_eq!(text.as_str(), "alive"),
            Message::Ping(_) => {}
            other => panic!("unexpected {}", crate::client::describe(&other)),
        }
    }
    assert_eq!(melody.len(), 1, "never cut");
}
