//! The HTTP upgrade: what is accepted, what is refused and how, timeouts, the session
//! cap, and keys attached at upgrade.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melody_core::{Keys, OriginPolicy};

use crate::backend::{Backend, Upgrade};
use crate::client::{upgrade_request, Client, Raw, SAMPLE_ACCEPT};
use crate::harness::{config, echo, modes, wait_until, Call, Recorder, Server};

/// What `on_connect` saw of a session.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    protocol: Option<String>,
    uri: String,
    header: Option<String>,
    via: Option<String>,
}

/// A valid upgrade gets 101 with the RFC 6455 `Sec-WebSocket-Accept` for its key and
/// the first of the server's subprotocols the client offers; the session then works,
/// and `on_connect` sees the subprotocol, the request URI and its headers. A client
/// offering no known subprotocol gets none. Checked with both upgrade modes.
pub fn handshake_accepts_with_subprotocol<B: Backend>() {
    for mode in modes() {
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let cfg = config().subprotocols(vec!["chat.v2".into(), "chat.v1".into()]);
        let keyed = matches!(mode, Upgrade::WithKeys(_));
        let server = Server::<B>::start(cfg, mode, |m| {
            let seen = seen.clone();
            m.on_connect(move |s| {
                let header = s
                    .request()
                    .headers()
                    .get("x-conformance")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                seen.lock().unwrap().push(Seen {
                    protocol: s.protocol().map(str::to_owned),
                    uri: s.request().uri().to_string(),
                    header,
                    via: s.get::<String>("via"),
                });
            });
            echo(m);
        });
        let addr = server.addr;

        let mut raw = Raw::connect(addr);
        let request = upgrade_request(
            addr,
            "/chat?room=1",
            &[],
            &[
                "Sec-WebSocket-Protocol: chat.v1, chat.v2",
                "X-Conformance: 42",
            ],
        );
        raw.send(request.as_bytes());
        let head = raw.read_head();
        assert_eq!(head.status, 101, "valid upgrade refused: {head:?}");
        assert_eq!(head.header("sec-websocket-accept"), Some(SAMPLE_ACCEPT));
        assert_eq!(
            head.header("sec-websocket-protocol"),
            Some("chat.v2"),
            "the server's preferred subprotocol among those offered"
        );
        assert!(
            head.header("upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            "Upgrade: websocket missing: {head:?}"
        );
        assert!(
            head.header("connection")
                .is_some_and(|v| v.to_ascii_lowercase().contains("upgrade")),
            "Connection: upgrade missing: {head:?}"
        );
        raw.send_frame(true, 0x1, b"hi");
        let frame = raw.read_frame();
        assert_eq!(
            (frame.fin, frame.opcode, frame.masked, &frame.payload[..]),
            (true, 0x1, false, &b"hi"[..]),
            "the echo must be one unmasked final text frame"
        );

        let (mut plain, response) = Client::try_connect(addr, "/plain", &[]).unwrap();
        assert!(
            response.headers().get("sec-websocket-protocol").is_none(),
            "no subprotocol was offered, none may be chosen"
        );
        plain.send_text("ok");
        assert_eq!(plain.recv_text(), "ok");

        wait_until(Duration::from_secs(5), "two on_connect calls", || {
            seen.lock().unwrap().len() == 2
        });
        let seen = seen.lock().unwrap().clone();
        let via = keyed.then(|| String::from("keys"));
        assert_eq!(
            seen[0],
            Seen {
                protocol: Some("chat.v2".into()),
                uri: "/chat?room=1".into(),
                header: Some("42".into()),
                via: via.clone(),
            }
        );
        assert_eq!(seen[1].protocol, None);
        assert_eq!(seen[1].uri, "/plain");
    }
}

/// Sends `request` on a fresh connection and returns the response status, checking
/// that no handler ran and that the server still accepts a valid client afterwards.
fn refused<B: Backend>(
    cfg: melody_core::Config,
    request: impl Fn(std::net::SocketAddr) -> String,
) -> Vec<(u16, Option<String>)> {
    refused_in::<B>(&modes(), cfg, request)
}

/// [`refused`] in the given modes.
fn refused_in<B: Backend>(
    modes: &[Upgrade],
    cfg: melody_core::Config,
    request: impl Fn(std::net::SocketAddr) -> String,
) -> Vec<(u16, Option<String>)> {
    let mut out = Vec::new();
    for mode in modes {
        let rec = Recorder::new();
        let server = Server::<B>::start(cfg.clone(), mode.clone(), |m| {
            rec.lifecycle(m);
            echo(m);
        });
        let mut raw = Raw::connect(server.addr);
        raw.send(request(server.addr).as_bytes());
        let head = raw.read_head();
        out.push((
            head.status,
            head.header("sec-websocket-version").map(str::to_owned),
        ));
        drop(raw);
        // The refusal ran no handler, and the server goes on serving.
        let mut client = Client::connect(server.addr, "/after");
        client.send_text("still serving");
        assert_eq!(client.recv_text(), "still serving");
        let calls = rec.all();
        assert!(
            calls.iter().all(|(a, _)| *a == Some(client.local)),
            "a refused handshake must call no handler ({mode:?}): {calls:?}"
        );
        assert_eq!(server.melody().len(), 1);
    }
    out
}

/// A plain GET without upgrade headers gets a 4xx response, not a session.
pub fn handshake_refuses_plain_get<B: Backend>() {
    let statuses = refused::<B>(config(), |addr| {
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n")
    });
    for (status, _) in statuses {
        assert!(
            (400..500).contains(&status),
            "a plain GET must get a 4xx, got {status}"
        );
    }
}

/// `Sec-WebSocket-Version: 8` gets 426 Upgrade Required with
/// `Sec-WebSocket-Version: 13`.
pub fn handshake_refuses_wrong_version<B: Backend>() {
    let statuses = refused::<B>(config(), |addr| {
        upgrade_request(
            addr,
            "/",
            &["Sec-WebSocket-Version"],
            &["Sec-WebSocket-Version: 8"],
        )
    });
    for (status, version) in statuses {
        assert_eq!(status, 426, "wrong version must get 426");
        assert_eq!(
            version.as_deref(),
            Some("13"),
            "426 must name the supported version"
        );
    }
}

/// An upgrade without `Sec-WebSocket-Key` gets 400.
pub fn handshake_refuses_missing_key<B: Backend>() {
    let statuses = refused::<B>(config(), |addr| {
        upgrade_request(addr, "/", &["Sec-WebSocket-Key"], &[])
    });
    for (status, _) in statuses {
        assert_eq!(status, 400, "a missing key must get 400");
    }
}

/// An upgrade request with another method than GET gets 405.
pub fn handshake_refuses_non_get<B: Backend>() {
    let statuses = refused::<B>(config(), |addr| {
        upgrade_request(addr, "/", &[], &[]).replacen("GET", "POST", 1)
    });
    for (status, _) in statuses {
        assert_eq!(status, 405, "a POST upgrade must get 405");
    }
}

/// A request head larger than `max_handshake_size` (1 KiB here) gets 431, whether
/// complete or still growing, and so does one with 200 headers. Only for [`Upgrade::Serve`]: with an HTTP integration
/// the framework's own header limits apply.
pub fn handshake_refuses_oversized_request<B: Backend>() {
    let cfg = config().max_handshake_size(1024);
    let filler = format!("X-Filler: {}", "f".repeat(2000));
    let statuses = refused_in::<B>(&[Upgrade::Serve], cfg.clone(), |addr| {
        upgrade_request(addr, "/", &[], &[&filler])
    });
    assert_eq!(statuses[0].0, 431, "an oversized request must get 431");
    let statuses = refused_in::<B>(&[Upgrade::Serve], cfg, |addr| {
        // Never ends: the limit must apply before the end of the head.
        format!("GET / HTTP/1.1\r\nHost: {addr}\r\n{filler}")
    });
    assert_eq!(statuses[0].0, 431, "an endless request must get 431");
    let many: Vec<String> = (0..200).map(|i| format!("X-{i}: y")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let statuses = refused_in::<B>(&[Upgrade::Serve], config(), |addr| {
        upgrade_request(addr, "/", &[], &many)
    });
    assert_eq!(statuses[0].0, 431, "200 headers must get 431");
}

/// Frames sent right behind the upgrade request, in the same write (before the 101
/// arrives), are not lost. Both upgrade modes.
pub fn handshake_keeps_pipelined_frames<B: Backend>() {
    for mode in modes() {
        let server = Server::<B>::start(config(), mode.clone(), echo);
        let mut raw = Raw::connect(server.addr);
        let mut bytes = upgrade_request(server.addr, "/", &[], &[]).into_bytes();
        bytes.extend(crate::client::frame(
            true,
            0x1,
            b"early",
            Some([1, 2, 3, 4]),
        ));
        bytes.extend(crate::client::frame(true, 0x2, &[1, 2], Some([5, 6, 7, 8])));
        raw.send(&bytes);
        assert_eq!(raw.read_head().status, 101);
        let first = raw.read_frame();
        assert_eq!(
            (first.opcode, &first.payload[..]),
            (0x1, &b"early"[..]),
            "{mode:?}"
        );
        let second = raw.read_frame();
        assert_eq!(
            (second.opcode, &second.payload[..]),
            (0x2, &[1u8, 2][..]),
            "{mode:?}"
        );
    }
}

/// By default a cross-origin upgrade (an `Origin` whose host is not the `Host`) gets
/// 403; a same-origin one is accepted.
pub fn handshake_refuses_cross_origin_by_default<B: Backend>() {
    let statuses = refused::<B>(config(), |addr| {
        upgrade_request(addr, "/", &[], &["Origin: http://evil.example"])
    });
    for (status, _) in statuses {
        assert_eq!(status, 403, "cross-origin must get 403 by default");
    }
    for mode in modes() {
        let server = Server::<B>::start(config(), mode, echo);
        let origin = format!("Origin: http://{}", server.addr);
        let mut raw = Raw::connect(server.addr);
        raw.send(upgrade_request(server.addr, "/", &[], &[&origin]).as_bytes());
        assert_eq!(raw.read_head().status, 101, "same origin must be accepted");
    }
}

/// With an `OriginPolicy` that allows it (an allow list, or `Any`), the cross-origin
/// upgrade is accepted; an origin outside the list is still refused.
pub fn handshake_accepts_configured_origin<B: Backend>() {
    let policies = [
        OriginPolicy::AllowList(vec!["http://evil.example".into()]),
        OriginPolicy::Any,
    ];
    for policy in policies {
        for mode in modes() {
            let cfg = config().origin_policy(policy.clone());
            let server = Server::<B>::start(cfg, mode, echo);
            let mut raw = Raw::connect(server.addr);
            raw.send(
                upgrade_request(server.addr, "/", &[], &["Origin: http://EVIL.example"]).as_bytes(),
            );
            assert_eq!(
                raw.read_head().status,
                101,
                "{policy:?} must accept the origin"
            );
            raw.send_frame(true, 0x1, b"cross");
            assert_eq!(raw.read_frame().payload, b"cross");
            if let OriginPolicy::AllowList(_) = policy {
                let mut other = Raw::connect(server.addr);
                other.send(
                    upgrade_request(server.addr, "/", &[], &["Origin: http://other.example"])
                        .as_bytes(),
                );
                assert_eq!(other.read_head().status, 403, "not in the allow list");
            }
        }
    }
}

/// A connection that does not complete its handshake within `handshake_timeout`
/// (300 ms here) is dropped — whether it sent nothing or half a request — without any
/// handler call, while a valid client connecting meanwhile is served.
pub fn handshake_times_out_incomplete<B: Backend>() {
    let timeout = Duration::from_millis(300);
    let rec = Recorder::new();
    let server = Server::<B>::serve(config().handshake_timeout(timeout), |m| {
        rec.lifecycle(m);
        echo(m);
    });
    let start = Instant::now();
    let mut silent = Raw::connect(server.addr);
    let mut partial = Raw::connect(server.addr);
    partial.send(format!("GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: web", server.addr).as_bytes());
    let mut good = Client::connect(server.addr, "/");
    good.send_text("served");
    assert_eq!(good.recv_text(), "served");
    for (name, raw) in [("silent", &mut silent), ("partial", &mut partial)] {
        let left = Duration::from_secs(3).saturating_sub(start.elapsed());
        let closed = raw.wait_closed(left);
        let at = start.elapsed();
        assert!(
            closed.is_some(),
            "the {name} connection was still open {at:?} after connecting (handshake_timeout {timeout:?})"
        );
        assert!(
            at >= timeout - Duration::from_millis(50),
            "the {name} connection was dropped after {at:?}, before handshake_timeout {timeout:?}"
        );
    }
    let calls = rec.all();
    assert!(
        calls.iter().all(|(a, _)| *a == Some(good.local)),
        "an incomplete handshake must call no handler: {calls:?}"
    );
    good.send_text("still");
    assert_eq!(good.recv_text(), "still");
    assert_eq!(server.melody().len(), 1);
}

/// With `max_sessions` 2, further upgrades (three in a row) get 503 while the two
/// sessions keep working: each is echoed, and a broadcast reaches both. When melody
/// answers the upgrade itself ([`Upgrade::Serve`]), `HubStats::rejected` counts each
/// refusal. Once a session leaves, a new client is accepted.
pub fn session_cap_refuses_with_503<B: Backend>() {
    const REFUSED: u64 = 3;
    for mode in modes() {
        let rec = Recorder::new();
        let server = Server::<B>::start(config().max_sessions(Some(2)), mode.clone(), |m| {
            rec.lifecycle(m);
            echo(m);
        });
        let mut a = Client::connect(server.addr, "/a");
        let mut b = Client::connect(server.addr, "/b");
        server.wait_len(2);
        for attempt in 0..REFUSED {
            match Client::try_connect(server.addr, "/c", &[]) {
                Err(tungstenite::Error::Http(response)) => assert_eq!(
                    response.status().as_u16(),
                    503,
                    "over the cap, attempt {attempt} ({mode:?})"
                ),
                Err(e) => panic!("over the cap must get 503 ({mode:?}), got {e}"),
                Ok(_) => panic!("a third session was accepted with max_sessions 2 ({mode:?})"),
            }
        }
        for (client, text) in [(&mut a, "a"), (&mut b, "b")] {
            client.send_text(text);
            assert_eq!(client.recv_text(), text);
        }
        let m = server.melody();
        assert_eq!(m.broadcast("to both").queued, 2, "({mode:?})");
        for client in [&mut a, &mut b] {
            assert_eq!(client.recv_text(), "to both", "({mode:?})");
        }
        if matches!(mode, Upgrade::Serve) {
            assert_eq!(m.stats().rejected, REFUSED, "{:?}", m.stats());
        }
        let a_addr = a.local;
        a.close_and_wait();
        rec.wait_disconnect(a_addr);
        server.wait_len(1);
        let mut c = Client::connect(server.addr, "/c");
        c.send_text("c");
        assert_eq!(c.recv_text(), "c");
        b.send_text("b again");
        assert_eq!(b.recv_text(), "b again");
        let connects = rec
            .all()
            .iter()
            .filter(|(_, call)| *call == Call::Connect)
            .count();
        assert_eq!(connects, 3, "the refused client must not get on_connect");
    }
}

/// Keys computed from the upgrade request ([`Upgrade::WithKeys`], olahol/melody's
/// `HandleRequestWithKeys`) are visible from `on_connect` on, in handlers and in
/// broadcast filters; keys set later add to them. The session knows both its
/// addresses, as after a plain upgrade.
pub fn keys_visible_in_on_connect<B: Backend>() {
    let keys_fn: crate::backend::KeysFn = Arc::new(|request| {
        let mut keys = Keys::new();
        let user = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("user=")))
            .unwrap_or("nobody")
            .to_owned();
        keys.set("user", user);
        keys.set("path", request.uri().path().to_owned());
        keys
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = Server::<B>::start(config(), Upgrade::WithKeys(keys_fn), |m| {
        let seen = seen.clone();
        m.on_connect(move |s| {
            seen.lock().unwrap().push((
                s.remote_addr(),
                s.local_addr(),
                s.get::<String>("user"),
                s.get::<String>("path"),
            ));
            s.set("greeted", true);
        });
        m.on_message(|s, _| {
            let user = s.get::<String>("user").unwrap_or_default();
            let greeted = s.get::<bool>("greeted").unwrap_or(false);
            let _ = s.write(&format!("{user} {greeted}"));
        });
    });
    let mut ada = Client::connect(server.addr, "/ws?user=ada");
    let mut bob = Client::connect(server.addr, "/ws/other?x=1&user=bob");
    wait_until(Duration::from_secs(5), "two on_connect calls", || {
        seen.lock().unwrap().len() == 2
    });
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|(remote, _, _, _)| *remote != Some(ada.local));
    let ours = Some(server.addr);
    assert_eq!(
        seen,
        vec![
            (
                Some(ada.local),
                ours,
                Some("ada".into()),
                Some("/ws".into())
            ),
            (
                Some(bob.local),
                ours,
                Some("bob".into()),
                Some("/ws/other".into())
            ),
        ],
        "on_connect must see both addresses and the keys attached at upgrade"
    );
    ada.send_text("who");
    assert_eq!(ada.recv_text(), "ada true");
    let d = server.melody().broadcast_filter("for bob", |r| {
        r.get::<String>("user").map(String::as_str) == Some("bob")
    });
    assert_eq!(d.queued, 1, "the filter must see the keys: {d:?}");
    assert_eq!(bob.recv_text(), "for bob");
    let _ = server.melody().broadcast("all");
    assert_eq!(ada.recv_text(), "all", "ada must not get bob's message");
}
