//! Load: many connections at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::client::Client;
use crate::harness::{config, echo, raise_fd_limit, wait_until, Server};

const CONNECTIONS: usize = 2000;
const THREADS: usize = 8;

/// 2000 connections are opened (from 8 threads), each echoed while all are open;
/// `len()` and `sessions()` count them all; all are closed; `len()` is back to 0 and
/// the server still serves.
pub fn load_2000_connections<B: Backend>() {
    // Both ends of every connection live in this process, plus the rest of the suite.
    let limit = raise_fd_limit(2 * CONNECTIONS as u64 + 2048);
    assert!(
        limit >= 2 * CONNECTIONS as u64 + 256,
        "the open-file limit ({limit}) is too low for {CONNECTIONS} connections; raise `ulimit -n`"
    );
    let server = Server::<B>::serve(config(), echo);
    let addr = server.addr;
    let opened = Arc::new(AtomicUsize::new(0));
    let checked = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (opened, checked) = (opened.clone(), checked.clone());
            std::thread::spawn(move || {
                let mut clients = Vec::new();
                for i in (t..CONNECTIONS).step_by(THREADS) {
                    let mut c = Client::connect(addr, &format!("/{i}"));
                    let text = format!("hello {i}");
                    c.send_text(&text);
                    assert_eq!(c.recv_text(), text);
                    clients.push(c);
                }
                opened.fetch_add(1, Ordering::SeqCst);
                wait_until(Duration::from_secs(30), "the count to be checked", || {
                    checked.load(Ordering::SeqCst)
                });
                for c in clients {
                    c.close_and_wait();
                }
            })
        })
        .collect();
    wait_until(Duration::from_secs(45), "every connection to open", || {
        opened.load(Ordering::SeqCst) == THREADS || threads.iter().any(|t| t.is_finished())
    });
    if opened.load(Ordering::SeqCst) < THREADS {
        checked.store(true, Ordering::SeqCst);
        for t in threads {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
        unreachable!("a client thread ended early without failing");
    }
    let m = server.melody();
    let (len, listed) = (m.len(), m.sessions().len());
    checked.store(true, Ordering::SeqCst);
    assert_eq!(len, CONNECTIONS, "len() with every connection open");
    assert_eq!(listed, CONNECTIONS, "sessions() with every connection open");
    for t in threads {
        if let Err(panic) = t.join() {
            std::panic::resume_unwind(panic);
        }
    }
    wait_until(
        Duration::from_secs(10),
        "len() == 0 after every close",
        || m.is_empty(),
    );
    let mut after = Client::connect(addr, "/after");
    after.send_text("still serving");
    assert_eq!(after.recv_text(), "still serving");
}
