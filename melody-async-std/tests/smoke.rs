//! melody-async-std over real loopback sockets, with blocking tungstenite clients
//! (`common`): echo through `serve`, and a broadcast through `accept`.

mod common;

use async_std::net::TcpListener;
use async_std::task;
use melody_async_std::{ConnectionInfo, Melody};

/// Binds a loopback port and runs `serve` for `melody` on it in the background.
fn serve_in_background(melody: &Melody) -> std::net::SocketAddr {
    let listener = task::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("local address");
    let m = melody.clone();
    task::spawn(async move { melody_async_std::serve(&m, listener).await });
    addr
}

#[test]
fn echo_through_serve() {
    let melody = Melody::new();
    common::echo(&melody);
    let addr = serve_in_background(&melody);
    common::echo_case(addr);
    common::wait_until("the session to end", || melody.is_empty());
    assert_eq!(melody.stats().connected, 1);
}

#[test]
fn broadcast_through_accept() {
    let melody = Melody::new();
    common::room(&melody);
    let listener = task::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("local address");
    let m = melody.clone();
    task::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                break;
            };
            let local_addr = stream.local_addr().ok();
            melody_async_std::accept(
                &m,
                stream,
                ConnectionInfo {
                    local_addr,
                    remote_addr: Some(peer),
                },
            );
        }
    });
    common::broadcast_case(addr, || melody.len());
    assert!(melody.sessions().iter().all(|s| s.remote_addr().is_some()));
}

#[test]
fn serve_returns_once_closed() {
    let melody = Melody::new();
    let listener = task::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let m = melody.clone();
    let serving = task::spawn(async move { melody_async_std::serve(&m, listener).await });
    assert_eq!(melody.close(), 0);
    task::block_on(serving).expect("serve returns Ok once closed");
}
