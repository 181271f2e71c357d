//! Connection churn over real loopback sockets: connect, one message and its echo,
//! disconnect, many times, ending each connection in turn one of three ways: a clean
//! close handshake, a TCP reset (SO_LINGER 0) and a plain close without a close frame.
//! Afterwards nothing may be left behind: no open session, no connection task, no
//! timer entry; and the counters add up to the cycles run.
//!
//! The load-generator version (`loadgen churn`, 100,000 cycles) is in `benchmarks`.
#![cfg(unix)]

mod common;

use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{recv, wait_until, Client, Server};
use melody_tokio::Config;
use tungstenite::Message;

const CYCLES: u64 = 2_000;

/// Every period short, so that the timer entries of released sessions (deleted
/// lazily, when their deadline comes) are gone within seconds of the last cycle; and
/// long enough that no deadline fires within a cycle on a loaded machine.
fn short_periods() -> Config {
    Config::default()
        .ping_period(Duration::from_secs(1))
        .pong_wait(Duration::from_secs(2))
        .handshake_timeout(Duration::from_secs(2))
        .write_wait(Duration::from_secs(2))
        .close_timeout(Duration::from_secs(2))
}

/// SO_LINGER with a zero timeout: closing the socket sends a reset, not a FIN.
fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads one `linger` of the size given, from a live reference,
    // on a socket this test owns.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// Sends our close frame and reads until the close handshake is over.
fn close_cleanly(mut client: Client) {
    client.close(None).expect("send the close frame");
    loop {
        match client.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return,
            Err(e) => panic!("clean close ended with {e}"),
        }
    }
}

#[test]
fn churn_leaves_no_session_task_or_timer_behind() {
    let server = Server::start(short_periods());
    let m = &server.melody;
    m.on_message(|s, text| {
        let _ = s.write(text);
    });
    let disconnects = Arc::new(AtomicU64::new(0));
    let d = disconnects.clone();
    m.on_disconnect(move |_| {
        d.fetch_add(1, Ordering::Relaxed);
    });

    for i in 0..CYCLES {
        let mut client = server.connect("/");
        client.send(Message::text(i.to_string())).expect("send");
        assert_eq!(recv(&mut client), format!("t:{i}"));
        match i % 3 {
            0 => close_cleanly(client),
            1 => {
                reset_on_close(client.get_ref());
                drop(client);
            }
            _ => drop(client),
        }
    }

    wait_until("every session over and its task ended", || {
        m.is_empty() && m.connection_tasks() == 0
    });
    wait_until("every timer entry gone", || m.timer_entries() == 0);
    let stats = m.stats();
    assert_eq!(
        (stats.opened, stats.connected, stats.finished),
        (CYCLES, CYCLES, CYCLES),
        "opened, connected, finished"
    );
    assert_eq!((stats.rejected, stats.dropped), (0, 0), "rejected, dropped");
    wait_until("on_disconnect once per session", || {
        disconnects.load(Ordering::Relaxed) == CYCLES
    });
}
