//! The backplane seam itself, with an in-process backplane instead of Redis: what is
//! forwarded, that forwarding never waits, and that deliveries from a backplane stay
//! local.

use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use melody_driver::{Audience, Backplane, BackplaneLink, BoxFuture, Outgoing};
use melody_tokio::{Config, Melody, Prepared, TokioRuntime};
use tungstenite::Message;

use crate::harness::{wait_until, IO_TIMEOUT, SETTLE};

const CAPACITY: usize = 4;

type Slot = Arc<Mutex<Option<BackplaneLink<TokioRuntime>>>>;

/// A backplane that hands its link to the test and never takes outgoing messages,
/// like one stuck on a stalled broker.
struct Stuck(Slot);

impl Backplane<TokioRuntime> for Stuck {
    fn queue_capacity(&self) -> usize {
        CAPACITY
    }

    fn run(self, link: BackplaneLink<TokioRuntime>) -> BoxFuture {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(link.clone());
        }
        Box::pin(async move {
            let mut topics = Vec::new();
            while link.next_new_topics(&mut topics).await {
                topics.clear();
            }
        })
    }
}

fn attached(rt: &tokio::runtime::Runtime, melody: &Melody) -> BackplaneLink<TokioRuntime> {
    let slot: Slot = Arc::default();
    rt.block_on(async {
        assert!(melody.attach_backplane(Stuck(slot.clone())).is_ok());
        assert!(
            melody.attach_backplane(Stuck(slot.clone())).is_err(),
            "only one"
        );
    });
    let mut link = None;
    wait_until("the backplane to run", SETTLE, || {
        link = slot.lock().ok().and_then(|s| s.clone());
        link.is_some()
    });
    link.expect("waited for it")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn forwarding_never_waits_and_counts_what_overflows() {
    let rt = runtime();
    let melody = Melody::with_config(Config::default()).expect("valid config");
    let link = attached(&rt, &melody);

    for i in 0..10 {
        let _ = melody.broadcast(&format!("b{i}"));
    }
    let _ = melody.broadcast_filter("filtered", |_| true);
    let counters = link.counters();
    assert_eq!(
        (counters.queued(), counters.dropped()),
        (CAPACITY as u64, 6)
    );

    let mut batch: Vec<Outgoing> = Vec::new();
    assert!(rt.block_on(link.next_outgoing(&mut batch, 100)));
    let texts: Vec<_> = batch.iter().map(|o| o.message.payload()).collect();
    assert_eq!(
        texts,
        ["b0", "b1", "b2", "b3"],
        "the oldest, in order; filters stay local"
    );
    assert!(batch.iter().all(|o| o.audience == Audience::All));

    batch.clear();
    let _ = melody.publish_binary("room", b"bytes");
    assert!(rt.block_on(link.next_outgoing(&mut batch, 100)));
    assert_eq!(batch[0].audience, Audience::Topic("room".into()));
    assert_eq!(&batch[0].message.payload()[..], b"bytes");

    melody.close();
    batch.clear();
    assert!(
        !rt.block_on(link.next_outgoing(&mut batch, 100)),
        "closed: over"
    );
}

#[test]
fn deliveries_from_the_backplane_stay_local() {
    let rt = runtime();
    let melody = Melody::with_config(Config::default()).expect("valid config");
    melody.on_connect(|session| {
        session.subscribe("room");
    });
    let link = attached(&rt, &melody);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let m = melody.clone();
    rt.spawn(async move { melody_tokio::serve(&m, listener).await });

    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let (mut client, _) =
        tungstenite::client::client(format!("ws://{addr}/"), stream).expect("handshake");
    wait_until("the subscription", SETTLE, || {
        melody.subscriber_count("room") == 1
    });
    assert_eq!(link.known_topics(), [Arc::<str>::from("room")]);
    assert!(!link.forget_if_unused("room"), "a session still subscribes");

    let delivery = link.deliver_to_topic("room", &Prepared::text("from afar"));
    assert_eq!(delivery.map(|d| d.queued), Some(1));
    match client.read().expect("a message") {
        Message::Text(text) => assert_eq!(text.as_str(), "from afar"),
        other => panic!("expected text, got {other:?}"),
    }
    assert_eq!(link.counters().queued(), 0, "not forwarded again");
    melody.close();
}
