//! Server-sent events across nodes: a `publish_event` on one node reaches event-stream
//! and WebSocket subscribers of the topic on every node, with its name and id.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use melody_tokio::Event;

use crate::harness::{config, Node, SharedRedis, IO_TIMEOUT, SETTLE};

/// A blocking event-stream client: sends the request, then reads chunks.
pub struct StreamClient {
    reader: BufReader<TcpStream>,
}

impl StreamClient {
    pub fn connect(addr: SocketAddr, path: &str) -> StreamClient {
        StreamClient::connect_with(addr, path, "")
    }

    /// [`StreamClient::connect`] with `headers` (each line ending in CRLF) added.
    pub fn connect_with(addr: SocketAddr, path: &str, headers: &str) -> StreamClient {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{headers}\r\n"
        )
        .expect("send the request");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("a header line");
            if line == "\r\n" {
                break;
            }
        }
        StreamClient { reader }
    }

    /// The next chunk of the body that is not the `retry:` field or a comment.
    pub fn next_event(&mut self) -> String {
        loop {
            let mut size = String::new();
            self.reader.read_line(&mut size).expect("a chunk size");
            let size = usize::from_str_radix(size.trim_end(), 16).expect("hex chunk size");
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).expect("a chunk");
            chunk.truncate(size);
            let chunk = String::from_utf8(chunk).expect("UTF-8 event");
            if !chunk.starts_with("retry:") && !chunk.starts_with(':') {
                return chunk;
            }
        }
    }
}

#[test]
fn a_published_event_reaches_streams_and_sockets_on_every_node() {
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "events");
    let (a, b) = (Node::start(cfg.clone()), Node::start(cfg));
    let mut stream_on_b = StreamClient::connect(b.addr, "/t/device-7");
    let mut socket_on_b = b.connect("/t/device-7");
    let mut socket_on_a = a.connect("/t/device-7");
    b.wait_subscribers("device-7", 2);
    a.wait_subscribers("device-7", 1);
    a.wait_ready(&["device-7"], SETTLE);
    b.wait_ready(&["device-7"], SETTLE);

    let event = Event::new("21.5\n21.7")
        .name("reading")
        .and_then(|e| e.id("1042"))
        .expect("a valid event");
    let here = a.melody.publish_event("device-7", event);
    assert_eq!(here.queued, 1, "node A's own subscriber");
    assert_eq!(
        stream_on_b.next_event(),
        "event: reading\nid: 1042\ndata: 21.5\ndata: 21.7\n\n",
        "the stream on the other node gets the whole event"
    );
    assert_eq!(socket_on_b.recv(), "21.5\n21.7", "a socket gets the data");
    assert_eq!(socket_on_a.recv(), "21.5\n21.7");
    let stats = b.redis.stats();
    assert_eq!(stats.malformed, 0, "{stats:?}");
}
