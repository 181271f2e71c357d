//! melody-smol over real loopback sockets, with blocking tungstenite clients: echo
//! through `serve` on smol's global executor and on an executor of our own, and a
//! broadcast through `accept`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use melody_smol::{ConnectionInfo, Melody, SmolRuntime};
use smol::net::TcpListener;
use smol::Executor;

fn listener() -> (TcpListener, SocketAddr) {
    let listener = smol::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

#[test]
fn echo_on_the_global_executor() {
    let melody = Melody::new();
    common::echo(&melody);
    let (listener, addr) = listener();
    let m = melody.clone();
    let serving = smol::spawn(async move { melody_smol::serve(&m, listener).await });
    common::echo_case(addr);
    melody.close();
    smol::block_on(serving).expect("serve returns Ok once closed");
}

#[test]
fn echo_on_an_executor_of_our_own() {
    let executor = Arc::new(Executor::new());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let ex = executor.clone();
    let thread = std::thread::spawn(move || smol::block_on(ex.run(stopped.recv())));

    let melody = Melody::with_runtime(
        SmolRuntime::with_executor(executor.clone()),
        Default::default(),
    )
    .expect("valid config");
    common::echo(&melody);
    let (listener, addr) = listener();
    let m = melody.clone();
    executor
        .spawn(async move { melody_smol::serve(&m, listener).await })
        .detach();
    common::echo_case(addr);
    common::wait_until("the session to end", || melody.is_empty());
    drop(stop);
    thread.join().unwrap().ok();
}

#[test]
fn broadcast_through_accept() {
    let melody = Melody::new();
    common::room(&melody);
    let (listener, addr) = listener();
    let m = melody.clone();
    smol::spawn(async move {
        while let Ok((stream, remote)) = listener.accept().await {
            let info = ConnectionInfo {
                remote_addr: Some(remote),
                local_addr: stream.local_addr().ok(),
            };
            melody_smol::accept(&m, stream, info);
        }
    })
    .detach();
    common::broadcast_case(addr, || melody.len());
    let remotes: Vec<_> = melody.sessions().iter().map(|s| s.remote_addr()).collect();
    assert!(
        remotes.iter().all(Option::is_some),
        "accept passes the addresses on"
    );
}
