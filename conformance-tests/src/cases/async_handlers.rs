//! Async message handlers: order per session, bounded concurrency, the overflow
//! policies, panics, `on_disconnect` after the handlers in flight.
//!
//! Handlers await either the runtime's own timer (through [`Runtime::sleep_until`]) or a
//! [`Gate`] the test thread opens, so nothing here depends on timing: a case waits (with
//! a bound) for a count to be reached, never for a duration to pass.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use melody_driver::api::{AsyncHandling, Overflow};
use melody_driver::{Error, Runtime};
use tungstenite::Message;

use crate::backend::Backend;
use crate::client::{Client, RecvError};
use crate::harness::{config, wait_until, Call, Recorder, Server};

/// A latch that async handlers await and the test thread opens; runtime-agnostic.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, Vec<Waker>)>,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    fn open(&self) {
        let wakers = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.0 = true;
            std::mem::take(&mut state.1)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    fn wait(self: &Arc<Self>) -> GateWait {
        GateWait(self.clone())
    }
}

struct GateWait(Arc<Gate>);

impl Future for GateWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 {
            return Poll::Ready(());
        }
        if !state.1.iter().any(|w| w.will_wake(cx.waker())) {
            state.1.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// A small pseudo-random delay (0–1999 µs) for message `i` of client `c`.
fn jitter(c: u32, i: u32) -> Duration {
    let mut x =
        u64::from(c).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(i).wrapping_mul(0xBF58_476D);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    Duration::from_micros(x % 2000)
}

/// 100 clients each send 20 numbered messages at once, alternating text and binary; an
/// async handler (text and binary) awaits a random small delay on the runtime's timer
/// before recording the number and answering it. With the default handling (in order,
/// bound 16, wait), every session records and answers its messages exactly in order:
/// each starts after the previous one finished.
pub fn async_handlers_keep_order_per_session<B: Backend>() {
    const CLIENTS: u32 = 100;
    const MESSAGES: u32 = 20;
    type Log = Arc<Mutex<HashMap<u32, Vec<(u32, bool)>>>>;
    let log: Log = Arc::default();
    let running = Arc::new(Mutex::new(HashMap::<u32, usize>::new()));

    let server = Server::<B>::serve(config(), |m| {
        fn handle<R: Runtime>(
            rt: R,
            log: Log,
            running: Arc<Mutex<HashMap<u32, usize>>>,
            text: &str,
        ) -> impl Future<Output = String> + Send + 'static {
            let (c, i) = text.split_once(':').expect("client:number");
            let (c, i): (u32, u32) = (c.parse().expect("client"), i.parse().expect("number"));
            async move {
                let overlap = {
                    let mut running = running.lock().unwrap();
                    let n = running.entry(c).or_default();
                    *n += 1;
                    *n > 1
                };
                rt.sleep_until(rt.now() + jitter(c, i)).await;
                running.lock().unwrap().entry(c).and_modify(|n| *n -= 1);
                log.lock().unwrap().entry(c).or_default().push((i, overlap));
                format!("{c}:{i}")
            }
        }
        let (rt, l, r) = (m.runtime().clone(), log.clone(), running.clone());
        m.on_message_async(move |s, text| {
            let work = handle(rt.clone(), l.clone(), r.clone(), &text);
            async move {
                let _ = s.write(&work.await);
            }
        });
        let (rt, l, r) = (m.runtime().clone(), log.clone(), running.clone());
        m.on_message_binary_async(move |s, data| {
            let text = std::str::from_utf8(&data).expect("utf-8").to_owned();
            let work = handle(rt.clone(), l.clone(), r.clone(), &text);
            async move {
                let _ = s.write_binary(work.await.as_bytes());
            }
        });
    });

    let addr = server.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr, "/ordered");
                for i in 0..MESSAGES {
                    let text = format!("{c}:{i}");
                    if i % 2 == 0 {
                        client.write(Message::text(text));
                    } else {
                        client.write(Message::binary(text.into_bytes()));
                    }
                }
                client.flush();
                for i in 0..MESSAGES {
                    let answer = match client.recv() {
                        Message::Text(text) => text.as_str().to_owned(),
                        Message::Binary(data) => String::from_utf8(data.to_vec()).expect("utf-8"),
                        other => panic!("client {c}: unexpected {other:?}"),
                    };
                    assert_eq!(answer, format!("{c}:{i}"), "client {c}: answers in order");
                }
                client.close_and_wait();
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client thread failed");
    }

    let log = log.lock().unwrap();
    assert_eq!(
        log.len(),
        CLIENTS as usize,
        "every session handled messages"
    );
    for (c, handled) in log.iter() {
        let order: Vec<u32> = handled.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            order,
            (0..MESSAGES).collect::<Vec<_>>(),
            "session {c}: handlers finished out of order"
        );
        assert!(
            handled.iter().all(|(_, overlap)| !overlap),
            "session {c}: two handlers ran at once in in-order mode: {handled:?}"
        );
    }
    let stats = server.melody().async_stats();
    assert_eq!(stats.started, u64::from(CLIENTS * MESSAGES), "{stats:?}");
    assert_eq!(stats.finished, stats.started, "{stats:?}");
    assert_eq!(stats.in_flight(), 0, "{stats:?}");
    assert_eq!((stats.dropped, stats.closed, stats.panicked), (0, 0, 0));
}

/// `AsyncHandling::concurrent(4)`: ten messages sent at once put exactly 4 handlers in
/// flight (all awaiting a gate) and reading pauses at the bound (`Overflow::Wait`,
/// counted and reported once per pause); meanwhile the session still gets a broadcast
/// and its pings. Once the gate opens, all ten finish, and at no time were 5 in flight.
pub fn async_handlers_run_concurrently_up_to_the_bound<B: Backend>() {
    let gate = Gate::new();
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let overflows = Arc::new(Mutex::new(Vec::new()));
    let cfg = config().ping_period(Duration::from_millis(100));
    let server = Server::<B>::serve(cfg, |m| {
        m.set_async_handling(AsyncHandling::concurrent(4));
        let o = overflows.clone();
        m.on_overflow(move |_, policy| o.lock().unwrap().push(policy));
        let (g, n, x, st) = (gate.clone(), now.clone(), most.clone(), started.clone());
        m.on_message_async(move |s, text| {
            let (g, n, x, st) = (g.clone(), n.clone(), x.clone(), st.clone());
            async move {
                let inside = n.fetch_add(1, Ordering::SeqCst) + 1;
                x.fetch_max(inside, Ordering::SeqCst);
                st.fetch_add(1, Ordering::SeqCst);
                g.wait().await;
                n.fetch_sub(1, Ordering::SeqCst);
                let _ = s.write(&format!("done:{text}"));
            }
        });
    });
    let melody = server.melody();
    assert_eq!(melody.async_handling().concurrency, 4);

    let mut client = Client::connect(server.addr, "/concurrent");
    for i in 0..10 {
        client.write(Message::text(i.to_string()));
    }
    client.flush();
    wait_until(Duration::from_secs(5), "4 handlers in flight", || {
        started.load(Ordering::SeqCst) == 4
    });
    wait_until(Duration::from_secs(5), "the 5th message to wait", || {
        melody.async_stats().waited == 1
    });
    assert_eq!(now.load(Ordering::SeqCst), 4, "4 awaiting the gate");
    assert_eq!(started.load(Ordering::SeqCst), 4, "no 5th handler started");
    assert_eq!(melody.async_stats().in_flight(), 4);
    assert_eq!(*overflows.lock().unwrap(), [Overflow::Wait]);

    // Writes and keepalive go on while the handlers await and reading is paused.
    assert_eq!(melody.broadcast("tick").queued, 1);
    let (mut tick, mut ping) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(tick && ping) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "tick {tick}, ping {ping} while handlers await"
        );
        match client.try_recv(left) {
            Ok(Message::Text(text)) if text.as_str() == "tick" => tick = true,
            Ok(Message::Ping(_)) => ping = true,
            Ok(other) => panic!("unexpected {other:?} while handlers await"),
            Err(RecvError::Timeout) => {}
            Err(RecvError::Closed(e)) => panic!("connection ended: {e}"),
        }
    }

    gate.open();
    let done: BTreeSet<String> = (0..10).map(|_| client.recv_text()).collect();
    let want: BTreeSet<String> = (0..10).map(|i| format!("done:{i}")).collect();
    assert_eq!(done, want);
    assert_eq!(
        most.load(Ordering::SeqCst),
        4,
        "at most 4 in flight, and 4 reached"
    );
    let stats = melody.async_stats();
    assert_eq!((stats.started, stats.finished), (10, 10), "{stats:?}");
    assert!(stats.waited >= 1, "{stats:?}");
    assert_eq!((stats.dropped, stats.closed), (0, 0), "{stats:?}");
    assert!(overflows
        .lock()
        .unwrap()
        .iter()
        .all(|o| *o == Overflow::Wait));
    client.close_and_wait();
}

/// `Overflow::Drop` with 2 running and a bound of 3: of six messages sent at once, three
/// are accepted (two run, one waits its turn) and three are dropped, counted and
/// reported; the session stays open and handles the next message once the bound frees.
pub fn async_overflow_drop_counts_dropped_messages<B: Backend>() {
    let gate = Gate::new();
    let started = Arc::new(Mutex::new(Vec::new()));
    let overflows = Arc::new(Mutex::new(Vec::new()));
    let server = Server::<B>::serve(config(), |m| {
        m.set_async_handling(
            AsyncHandling::concurrent(2)
                .max_in_flight(3)
                .overflow(Overflow::Drop),
        );
        let o = overflows.clone();
        m.on_overflow(move |_, policy| o.lock().unwrap().push(policy));
        let (g, st) = (gate.clone(), started.clone());
        m.on_message_async(move |s, text| {
            let (g, st) = (g.clone(), st.clone());
            async move {
                st.lock().unwrap().push(text.clone());
                g.wait().await;
                let _ = s.write(&format!("done:{text}"));
            }
        });
    });
    let melody = server.melody();
    let mut client = Client::connect(server.addr, "/drop");
    for i in 0..6 {
        client.write(Message::text(i.to_string()));
    }
    client.flush();
    wait_until(Duration::from_secs(5), "3 messages dropped", || {
        melody.async_stats().dropped == 3
    });
    let stats = melody.async_stats();
    assert_eq!((stats.started, stats.in_flight()), (3, 3), "{stats:?}");
    assert_eq!(*started.lock().unwrap(), ["0", "1"], "two run at once");
    assert_eq!(*overflows.lock().unwrap(), [Overflow::Drop; 3]);

    gate.open();
    let done: BTreeSet<String> = (0..3).map(|_| client.recv_text()).collect();
    assert_eq!(
        done,
        ["done:0", "done:1", "done:2"].map(String::from).into(),
        "the accepted messages are handled, the dropped ones not"
    );
    client.send_text("after");
    assert_eq!(client.recv_text(), "done:after", "the bound freed");
    let stats = melody.async_stats();
    assert_eq!((stats.started, stats.finished), (4, 4), "{stats:?}");
    assert_eq!(
        (stats.dropped, stats.closed, stats.waited),
        (3, 0, 0),
        "{stats:?}"
    );
    client.close_and_wait();
}

/// `Overflow::Close` with a bound of 1: the second message closes the session with 1013
/// (counted once, each dropped message reported); the handler in flight still finishes,
/// and `on_disconnect` runs once, after it, although the close handshake was over first.
pub fn async_overflow_close_closes_1013_and_disconnects_last<B: Backend>() {
    let gate = Gate::new();
    let rec = Recorder::new();
    let overflows = Arc::new(Mutex::new(Vec::new()));
    let server = Server::<B>::serve(config(), |m| {
        rec.lifecycle(m);
        m.set_async_handling(
            AsyncHandling::in_order()
                .max_in_flight(1)
                .overflow(Overflow::Close),
        );
        let o = overflows.clone();
        m.on_overflow(move |_, policy| o.lock().unwrap().push(policy));
        let (g, r) = (gate.clone(), rec.clone());
        m.on_message_async(move |s, text| {
            let (g, r) = (g.clone(), r.clone());
            async move {
                r.record(&s, Call::Text(format!("start:{text}")));
                g.wait().await;
                r.record(&s, Call::Text(format!("end:{text}")));
            }
        });
    });
    let melody = server.melody();
    let mut client = Client::connect(server.addr, "/close");
    for i in 0..3 {
        client.write(Message::text(i.to_string()));
    }
    client.flush();
    let (code, reason) = client.recv_close();
    assert_eq!(code, 1013, "closed at the bound: {reason}");
    client.flush(); // the client's close reply
    let stats = melody.async_stats();
    assert_eq!((stats.started, stats.closed), (1, 1), "{stats:?}");
    assert!((1..=2).contains(&stats.dropped), "{stats:?}");
    // The session is over for the hub; its `on_disconnect` waits for the handler.
    server.wait_len(0);
    let calls = rec.of(client.local);
    assert!(
        !calls.contains(&Call::Disconnect),
        "on_disconnect ran with a handler in flight: {calls:?}"
    );
    gate.open();
    client.finish_close();
    rec.wait_disconnect(client.local);
    let calls = rec.of(client.local);
    let main: Vec<&Call> = calls
        .iter()
        .filter(|c| !matches!(c, Call::Close(..) | Call::Pong))
        .collect();
    assert_eq!(
        main,
        [
            &Call::Connect,
            &Call::Text("start:0".into()),
            &Call::Text("end:0".into()),
            &Call::Disconnect
        ],
        "{calls:?}"
    );
    let overflows = overflows.lock().unwrap();
    assert!(
        !overflows.is_empty() && overflows.iter().all(|o| *o == Overflow::Close),
        "{overflows:?}"
    );
    assert_eq!(overflows.len() as u64, melody.async_stats().dropped);
    assert_eq!(melody.async_stats().finished, 1);
}

/// An async handler that panics while polled (after an await), or when called (before
/// its future exists), behaves like a panicking sync handler: `on_error` gets
/// `HandlerPanicked`, its session is closed with 1011 and disconnected once; other
/// sessions carry on. Both panics are counted.
pub fn panicking_async_handler_closes_its_session_only<B: Backend>() {
    let rec = Recorder::new();
    let server = Server::<B>::serve(config().close_timeout(Duration::from_secs(1)), |m| {
        rec.lifecycle(m);
        let rt = m.runtime().clone();
        m.on_message_async(move |s, text| {
            let rt = rt.clone();
            async move {
                rt.sleep_until(rt.now() + Duration::from_millis(1)).await;
                if text == "panic" {
                    panic!("conformance: planned panic in an async handler");
                }
                let _ = s.write(&text);
            }
        });
        m.on_message_binary_async(|s, data| {
            if &data[..] == b"panic" {
                panic!("conformance: planned panic calling an async handler");
            }
            async move {
                let _ = s.write_binary(&data);
            }
        });
    });
    for (path, message, planned) in [
        (
            "/a",
            Message::text("panic"),
            "planned panic in an async handler",
        ),
        (
            "/c",
            Message::binary(b"panic".to_vec()),
            "planned panic calling an async handler",
        ),
    ] {
        let mut a = Client::connect(server.addr, path);
        let mut b = Client::connect(server.addr, "/b");
        a.send(message);
        assert_eq!(
            a.recv_close().0,
            1011,
            "a panicking async handler closes 1011"
        );
        a.finish_close();
        rec.wait_disconnect(a.local);
        let calls = rec.of(a.local);
        assert!(
            calls.iter().any(|c| matches!(
                c,
                Call::Error(Error::HandlerPanicked(m)) if m.contains(planned)
            )),
            "on_error must get the panic: {calls:?}"
        );
        assert_eq!(
            calls.iter().filter(|c| **c == Call::Disconnect).count(),
            1,
            "{calls:?}"
        );
        assert_eq!(calls.last(), Some(&Call::Disconnect), "{calls:?}");
        b.send_text("b is fine");
        assert_eq!(b.recv_text(), "b is fine");
        b.send(Message::binary(b"bin".to_vec()));
        assert_eq!(b.recv_binary(), b"bin");
        b.close_and_wait();
    }
    let stats = server.melody().async_stats();
    assert_eq!(stats.panicked, 2, "{stats:?}");
    wait_until(Duration::from_secs(5), "no handler in flight", || {
        server.melody().async_stats().in_flight() == 0
    });
}
