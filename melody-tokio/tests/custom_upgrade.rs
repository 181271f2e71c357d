//! A custom upgrade written against `melody_tokio` alone: the handshake types, the
//! `http` crate and the `Runtime`/`Transport` traits all come from the adapter's root,
//! so an application needs no direct dependency on `melody-core` or `melody-driver`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use melody_tokio::http::{self, StatusCode};
use melody_tokio::{
    Accept, BoxFuture, ConnectionInfo, HandshakeRejection, Keys, Melody, MessageKind, Prepared,
    Request, RequestHead, Runtime, TokioTransport, Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tungstenite::Message;

/// Upgrade requests are small; a longer head is refused rather than buffered forever.
const MAX_HEAD: usize = 8 * 1024;

/// Reads an HTTP request head (up to the blank line) and parses it into a [`Request`].
/// The client sends nothing more before the answer, so no byte past the head is read.
async fn read_request(stream: &mut TcpStream) -> io::Result<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || stream.read(&mut byte).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "no request head",
            ));
        }
        head.push(byte[0]);
    }
    let text =
        String::from_utf8(head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, uri) = (parts.next().unwrap_or("GET"), parts.next().unwrap_or("/"));
    let mut builder = http::Request::builder().method(method).uri(uri);
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    builder
        .body(())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Serves an already upgraded transport: generic over [`Transport`], spawned through
/// the [`Runtime`] trait as a [`BoxFuture`].
fn serve_upgraded<T: Transport>(melody: &Melody, transport: T, request: Request, accept: Accept) {
    let task: BoxFuture = Box::pin(melody.upgraded_connection(
        transport,
        request,
        accept,
        Keys::default(),
        ConnectionInfo::default(),
    ));
    Runtime::spawn(melody.runtime(), task);
}

/// Accepts one connection on `listener`, answers its upgrade by hand and serves it.
async fn custom_upgrade(melody: Melody, listener: tokio::net::TcpListener) -> io::Result<()> {
    let (mut stream, _) = listener.accept().await?;
    let request = read_request(&mut stream).await?;
    match melody.check_upgrade(&request) {
        Ok(accept) => {
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
                accept.accept_key
            );
            stream.write_all(answer.as_bytes()).await?;
            serve_upgraded(&melody, TokioTransport(stream), request, accept);
        }
        Err(HandshakeRejection { status, reason }) => {
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{reason}",
                reason.len()
            );
            stream.write_all(answer.as_bytes()).await?;
        }
    }
    Ok(())
}

#[test]
fn a_custom_upgrade_uses_the_adapter_root_only() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let melody = Melody::new();
    melody.on_message(|session, text| {
        let path = session.request().uri().path().to_owned();
        session.write(&format!("{path}: {text}"));
    });
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind a loopback port");
    let addr: SocketAddr = listener.local_addr().expect("local address");
    let serving = rt.spawn(custom_upgrade(melody.clone(), listener));

    let stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let (mut client, response) = tungstenite::client::client(format!("ws://{addr}/custom"), stream)
        .expect("the custom upgrade");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    client.send(Message::text("hi")).expect("send");
    match client.read().expect("the echo") {
        Message::Text(text) => assert_eq!(text.as_str(), "/custom: hi"),
        other => panic!("expected text, got {other:?}"),
    }
    rt.block_on(serving)
        .expect("the upgrade task")
        .expect("the upgrade");
    assert_eq!(melody.len(), 1);
}

/// A request the handshake refuses comes back as a `HandshakeRejection` whose status
/// is an `http::StatusCode`, as the adapter re-exports it.
#[test]
fn a_refused_upgrade_reports_an_http_status() {
    let melody = Melody::new();
    let request: Request = http::Request::builder()
        .uri("/no-key")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .body(())
        .expect("a request");
    let head = RequestHead::parsed(request);
    match melody.check_upgrade(head.request()) {
        Err(rejection) => assert_eq!(rejection.status, StatusCode::BAD_REQUEST, "{rejection:?}"),
        Ok(accept) => panic!("a request without Sec-WebSocket-Key was accepted: {accept:?}"),
    }
    assert_eq!(Prepared::text("x").kind(), MessageKind::Text);
}
