//! With the `metrics` feature, the server example's `--metrics-addr` endpoint (its code
//! is `examples_support::serve_metrics`) answers in Prometheus text format, and the
//! counters move as traffic goes through.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use examples_support::ServerOptions;
use melody_tokio::{Config, TokioRuntime};
use tungstenite::Message;

/// The metrics page, fetched with a plain HTTP/1.1 GET.
fn scrape(at: SocketAddr) -> String {
    let mut stream = TcpStream::connect(at).expect("connect to the exporter");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {at}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the first sample whose line starts with `series` (name and labels).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

fn wait_for(at: SocketAddr, what: &str, mut holds: impl FnMut(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = scrape(at);
        if holds(&page) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within 10 s; last page:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn counters_move_as_traffic_goes_through() {
    let metrics_at = examples_support::serve_metrics("127.0.0.1:0").expect("exporter");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let options = ServerOptions {
        addr: "127.0.0.1:0".into(),
        shards: Some(1),
        threads: Some(1),
        stats_addr: None,
        metrics_addr: None,
        config: Config::default(),
    };
    let melody = rt
        .block_on(async { examples_support::server(TokioRuntime, &options) })
        .expect("server");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let m = melody.clone();
    rt.spawn(async move { melody_tokio::serve(&m, listener).await });

    let before = scrape(metrics_at);
    let in_before = sample(&before, "melody_messages_in_total{kind=\"text\"}");
    let (mut client, _) = tungstenite::client::client(
        format!("ws://{addr}/echo"),
        TcpStream::connect(addr).expect("connect"),
    )
    .expect("handshake");
    for i in 0..3 {
        client.send(Message::text(format!("m{i}"))).expect("send");
        assert_eq!(client.read().expect("echo"), Message::text(format!("m{i}")));
    }
    let page = wait_for(metrics_at, "3 messages in and out", |page| {
        sample(page, "melody_messages_in_total{kind=\"text\"}") >= in_before + 3.0
            && sample(page, "melody_messages_out_total") >= 3.0
    });
    assert!(
        sample(
            &page,
            "melody_upgrades_total{outcome=\"accepted\",status=\"101\"}"
        ) >= 1.0
    );
    assert_eq!(
        sample(&page, "melody_sessions_open{kind=\"websocket\"}"),
        1.0
    );
    assert!(sample(&page, "melody_bytes_in_total") > 0.0);
    assert!(sample(&page, "melody_bytes_out_total") > 0.0);

    client.close(None).expect("close");
    while client.read().is_ok() {}
    wait_for(metrics_at, "the session's disconnect", |page| {
        sample(page, "melody_disconnects_total{cause=\"normal\"}") >= 1.0
            && sample(page, "melody_sessions_open{kind=\"websocket\"}") == 0.0
    });
    melody.close();
}
