//! The request hook (`Melody::on_request`): refusals with any status and headers, keys,
//! state, topics and limits attached before the 101, hooks that await, hooks that panic.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use melody_driver::{RequestInfo, Verdict};

use crate::backend::Backend;
use crate::client::Client;
use crate::harness::{config, echo, wait_until, Server};

/// The value of query parameter `name` in the request's URI.
fn query_param(info: &RequestInfo, name: &str) -> Option<String> {
    info.uri.query()?.split('&').find_map(|kv| {
        kv.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .map(str::to_owned)
    })
}

/// A hook that refuses with 401 and `WWW-Authenticate: Bearer` fails the client's
/// handshake with exactly that status, header and reason; no session is created and
/// the refusal is counted. A request with the expected token is admitted.
pub fn request_hook_refuses_401_with_header<B: Backend>() {
    let connects = Arc::new(Mutex::new(0usize));
    let server = Server::<B>::serve(config(), |m| {
        m.on_request(|info| async move {
            if info.header("authorization") == Some("Bearer good") {
                Verdict::admit()
            } else {
                Verdict::refuse(401, "missing or bad token").header("WWW-Authenticate", "Bearer")
            }
        });
        let connects = connects.clone();
        m.on_connect(move |_| *connects.lock().unwrap() += 1);
        echo(m);
    });
    match Client::try_connect(server.addr, "/ws", &[]) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer")
            );
            let body = response.body().clone().unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(&body), "missing or bad token\n");
        }
        Err(e) => panic!("the hook's refusal must reach the client as 401, got {e}"),
        Ok(_) => panic!("a request without a token was admitted"),
    }
    let (mut ok, _) = Client::try_connect(server.addr, "/ws", &[("Authorization", "Bearer good")])
        .expect("a request with the token is admitted");
    ok.send_text("in");
    assert_eq!(ok.recv_text(), "in");
    let m = server.melody();
    assert_eq!(m.stats().rejected, 1, "{:?}", m.stats());
    assert_eq!(
        *connects.lock().unwrap(),
        1,
        "only the admitted request connects"
    );
}

/// Keys and typed state a hook attaches are visible from `on_connect` on.
pub fn request_hook_attaches_keys_and_state<B: Backend>() {
    #[derive(Clone, Debug, PartialEq)]
    struct Role(&'static str);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = Server::<B>::serve(config(), |m| {
        m.on_request(|info| {
            let user = query_param(&info, "user").unwrap_or_default();
            let role = if user == "ada" { "admin" } else { "guest" };
            async move { Verdict::admit().key("user", user).state(Role(role)) }
        });
        let seen = seen.clone();
        m.on_connect(move |s| {
            seen.lock()
                .unwrap()
                .push((s.get::<String>("user"), s.state::<Role>()));
        });
        m.on_message(|s, _| {
            let user = s.get::<String>("user").unwrap_or_default();
            let role = s.state::<Role>().map_or("none", |r| r.0);
            let _ = s.write(&format!("{user} {role}"));
        });
    });
    let mut ada = Client::connect(server.addr, "/ws?user=ada");
    wait_until(Duration::from_secs(5), "on_connect", || {
        seen.lock().unwrap().len() == 1
    });
    assert_eq!(
        seen.lock().unwrap()[0],
        (Some("ada".to_owned()), Some(Role("admin")))
    );
    ada.send_text("who");
    assert_eq!(ada.recv_text(), "ada admin");
    let mut bob = Client::connect(server.addr, "/ws?user=bob");
    bob.send_text("who");
    assert_eq!(bob.recv_text(), "bob guest");
}

/// A topic the hook subscribes is in place before the 101: a publish made as soon as
/// the client's handshake completes reaches it, as does one made from `on_connect`;
/// sessions of other topics get neither.
pub fn request_hook_subscribes_before_the_101<B: Backend>() {
    let server = Server::<B>::serve(config(), |m| {
        m.on_request(|info| {
            let room = query_param(&info, "room").unwrap_or_default();
            async move { Verdict::admit().key("room", room.clone()).subscribe(room) }
        });
        let melody = m.clone();
        m.on_connect(move |s| {
            let room = s.get::<String>("room").unwrap_or_default();
            let _ = melody.publish(&room, &format!("welcome to {room}"));
        });
    });
    let mut reader = Client::connect(server.addr, "/ws?room=news");
    let d = server.melody().publish("news", "right after the handshake");
    assert_eq!(d.queued, 1, "the session is subscribed by its 101: {d:?}");
    let mut got = vec![reader.recv_text(), reader.recv_text()];
    got.sort();
    assert_eq!(got, vec!["right after the handshake", "welcome to news"]);
    let mut other = Client::connect(server.addr, "/ws?room=sport");
    assert_eq!(other.recv_text(), "welcome to sport");
    assert_eq!(server.melody().publish("sport", "goal").queued, 1);
    assert_eq!(other.recv_text(), "goal");
    reader.expect_no_data(Duration::from_millis(100));
}

/// A hook's `max_message_size` applies to its session alone: a message over it, though
/// under the config's limit, gets close 1009; other sessions keep the config's limit.
pub fn request_hook_overrides_max_message_size<B: Backend>() {
    let server = Server::<B>::serve(config(), |m| {
        m.on_request(|info| async move {
            if info.uri.path() == "/small" {
                Verdict::admit().max_message_size(1000)
            } else {
                Verdict::admit()
            }
        });
        echo(m);
    });
    let mut small = Client::connect(server.addr, "/small");
    let mut large = Client::connect(server.addr, "/large");
    small.send(tungstenite::Message::binary(vec![1u8; 1000]));
    assert_eq!(small.recv_binary(), vec![1u8; 1000]);
    large.send(tungstenite::Message::binary(vec![2u8; 5000]));
    assert_eq!(large.recv_binary(), vec![2u8; 5000]);
    small.send(tungstenite::Message::binary(vec![3u8; 1001]));
    assert_eq!(small.recv_close().0, 1009);
}

/// A future that is pending until another thread opens it (and wakes the task).
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Gate {
    fn open(&self) {
        let waker = {
            let mut state = self.state.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

struct GateOpened(Arc<Gate>, usize);

impl Future for GateOpened {
    type Output = usize;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        self.1 += 1;
        let polls = self.1;
        let mut state = self.0.state.lock().unwrap();
        if state.0 {
            Poll::Ready(polls)
        } else {
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// A hook that awaits (here, a gate another thread opens once the hook has been
/// polled) holds the handshake until its verdict, then admits as usual.
pub fn request_hook_may_await<B: Backend>() {
    let gate = Arc::new(Gate::default());
    let polled_pending = Arc::new(Mutex::new(None));
    let server = Server::<B>::serve(config(), |m| {
        let (gate, polled_pending) = (gate.clone(), polled_pending.clone());
        m.on_request(move |_| {
            let (gate, polled_pending) = (gate.clone(), polled_pending.clone());
            async move {
                let polls = GateOpened(gate, 0).await;
                *polled_pending.lock().unwrap() = Some(polls);
                Verdict::admit().key("waited", true)
            }
        });
        m.on_message(|s, _| {
            let _ = s.write(&format!("{:?}", s.get::<bool>("waited")));
        });
    });
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || {
            // Opens the gate only once the hook is waiting behind it.
            wait_until(Duration::from_secs(5), "the hook to wait", || {
                gate.state.lock().unwrap().1.is_some()
            });
            gate.open();
        })
    };
    let mut client = Client::connect(server.addr, "/ws");
    opener.join().expect("the opener thread");
    let polls = polled_pending.lock().unwrap().expect("the hook finished");
    assert!(
        polls >= 2,
        "the hook was pending at least once ({polls} polls)"
    );
    client.send_text("?");
    assert_eq!(client.recv_text(), "Some(true)");
}

/// A hook that panics, when called or while its future is polled, refuses that request
/// with 500 "internal error" and is counted; the server keeps serving.
pub fn panicking_request_hook_gives_500<B: Backend>() {
    let server = Server::<B>::serve(config(), |m| {
        m.on_request(|info| {
            if info.uri.path() == "/panic-now" {
                panic!("hook panicked when called");
            }
            async move {
                if info.uri.path() == "/panic-later" {
                    panic!("hook panicked when polled");
                }
                Verdict::admit()
            }
        });
        echo(m);
    });
    for path in ["/panic-now", "/panic-later"] {
        match Client::try_connect(server.addr, path, &[]) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 500, "{path}");
                let body = response.body().clone().unwrap_or_default();
                assert_eq!(String::from_utf8_lossy(&body), "internal error\n", "{path}");
            }
            Err(e) => panic!("{path}: a panicking hook must give 500, got {e}"),
            Ok(_) => panic!("{path}: admitted despite the hook's panic"),
        }
    }
    assert_eq!(server.melody().hook_panics(), 2);
    let mut fine = Client::connect(server.addr, "/fine");
    fine.send_text("still serving");
    assert_eq!(fine.recv_text(), "still serving");
}

/// Drops its flag when dropped: tells whether a pending hook future was let go.
struct DropFlag(Arc<Mutex<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = true;
    }
}

/// A hook that never answers is bounded by `handshake_timeout`: the client gets 503
/// and the hook's future is dropped.
pub fn request_hook_timeout_gives_503<B: Backend>() {
    let dropped = Arc::new(Mutex::new(false));
    let cfg = config().handshake_timeout(Duration::from_millis(300));
    let server = Server::<B>::serve(cfg, |m| {
        let dropped = dropped.clone();
        m.on_request(move |_| {
            let flag = DropFlag(dropped.clone());
            async move {
                std::future::pending::<()>().await;
                drop(flag);
                Verdict::admit()
            }
        });
    });
    match Client::try_connect(server.addr, "/ws", &[]) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 503);
            let body = response.body().clone().unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&body),
                "request verdict timed out\n"
            );
        }
        Err(e) => panic!("a hook past the handshake timeout must give 503, got {e}"),
        Ok(_) => panic!("admitted without a verdict"),
    }
    wait_until(
        Duration::from_secs(5),
        "the hook's future to be dropped",
        || *dropped.lock().unwrap(),
    );
    assert_eq!(server.melody().len(), 0);
}
