//! `serve` out of file descriptors: accept fails with EMFILE, the loop backs off
//! instead of returning or spinning, and serves again once descriptors are free.
//!
//! The open-file limit is per process, so this scenario is the only test in its binary
//! (cargo runs each test file as its own process).
#![cfg(unix)]

mod common;

use std::fs::File;
use std::io;

use common::{recv, Server, IO_TIMEOUT};
use melody_tokio::Config;
use tungstenite::handshake::HandshakeError;
use tungstenite::Message;

fn nofile_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    limit
}

fn set_nofile_limit(limit: libc::rlimit) {
    // SAFETY: setrlimit reads one rlimit; lowering the soft limit needs no privilege.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(64, |dir| dir.count() as u64)
}

#[test]
fn accept_backs_off_at_the_open_file_limit_and_recovers() {
    let server = Server::start(Config::default());
    let m = &server.melody;
    m.on_message(|s, text| {
        let _ = s.write(text);
    });
    // Warm up: the runtime has every descriptor it needs (epoll, wakers) before the
    // limit is lowered.
    let mut first = server.connect("/");
    first.send(Message::text("before")).unwrap();
    assert_eq!(recv(&mut first), "t:before");

    let original = nofile_limit();
    set_nofile_limit(libc::rlimit {
        rlim_cur: open_fds() + 32,
        rlim_max: original.rlim_max,
    });
    // Take every descriptor left, then give one back for a client socket.
    let mut hogs = Vec::new();
    let exhausted = loop {
        match File::open("/dev/null") {
            Ok(file) => hogs.push(file),
            Err(e) => break e,
        }
    };
    assert_eq!(exhausted.raw_os_error(), Some(libc::EMFILE));
    hogs.pop();
    let stream = std::net::TcpStream::connect(server.addr).expect("connect");

    // The kernel queued the connection, but the server cannot accept it: the upgrade
    // gets no answer within a short read timeout.
    stream
        .set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let pending = match tungstenite::client::client(format!("ws://{}/", server.addr), stream) {
        Err(HandshakeError::Interrupted(pending)) => pending,
        Err(HandshakeError::Failure(e)) => panic!("handshake failed: {e}"),
        Ok(_) => panic!("the server accepted a connection with no descriptor left"),
    };
    assert!(
        !server.serving.is_finished(),
        "serve must not return on EMFILE"
    );
    // The established session is unaffected.
    first.send(Message::text("during")).unwrap();
    assert_eq!(recv(&mut first), "t:during");

    // Free the descriptors: the waiting connection is accepted and served.
    drop(hogs);
    set_nofile_limit(original);
    pending
        .get_ref()
        .get_ref()
        .set_read_timeout(Some(IO_TIMEOUT))
        .unwrap();
    let (mut waited, _) = pending.handshake().expect("handshake after recovery");
    waited.send(Message::text("after")).unwrap();
    assert_eq!(recv(&mut waited), "t:after");

    let mut fresh = server.connect("/");
    fresh.send(Message::text("fresh")).unwrap();
    assert_eq!(recv(&mut fresh), "t:fresh");
    assert_eq!(m.len(), 3);
}
