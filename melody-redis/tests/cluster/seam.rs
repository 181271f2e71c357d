//! The backplane seam itself, with an in-process backplane instead of Redis: what is
//! forwarded, that forwarding never waits, and that deliveries from a backplane stay
//! local.

use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use melody_core::history::{HistoryLimits, HistoryRules, Position};
use melody_core::Publication;
use melody_driver::{Audience, Backplane, BackplaneLink, BoxFuture, Delivered, Outgoing};
use melody_tokio::{Config, Melody, Prepared, TokioRuntime};
use tungstenite::Message;

use crate::harness::{wait_until, IO_TIMEOUT, SETTLE};

const CAPACITY: usize = 4;

type Slot = Arc<Mutex<Option<BackplaneLink<TokioRuntime>>>>;

/// A backplane that hands its link to the test and never takes outgoing messages,
/// like one stuck on a stalled broker; with `true`, one that keeps history topics'
/// history (as melody-redis does).
struct Stuck(Slot, bool);

impl Backplane<TokioRuntime> for Stuck {
    fn queue_capacity(&self) -> usize {
        CAPACITY
    }

    fn keeps_history(&self) -> bool {
        self.1
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
    attached_keeping(rt, melody, false)
}

fn attached_keeping(
    rt: &tokio::runtime::Runtime,
    melody: &Melody,
    keeps_history: bool,
) -> BackplaneLink<TokioRuntime> {
    let slot: Slot = Arc::default();
    rt.block_on(async {
        assert!(melody
            .attach_backplane(Stuck(slot.clone(), keeps_history))
            .is_ok());
        assert!(
            melody
                .attach_backplane(Stuck(slot.clone(), keeps_history))
                .is_err(),
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

    let delivery = link.deliver_to_topic("room", &Prepared::text("from afar").into());
    assert_eq!(delivery.map(|d| d.queued), Some(1));
    match client.read().expect("a message") {
        Message::Text(text) => assert_eq!(text.as_str(), "from afar"),
        other => panic!("expected text, got {other:?}"),
    }
    assert_eq!(link.counters().queued(), 0, "not forwarded again");
    melody.close();
}

#[test]
fn a_backplane_keeping_history_gets_history_publishes_and_hands_out_their_positions() {
    let rt = runtime();
    let rules = HistoryRules::new().prefix("device/", HistoryLimits::new().max_messages(10));
    let melody = Melody::with_config(Config::default().history(rules)).expect("valid config");
    melody.on_connect(|session| {
        session.subscribe("device/1");
    });
    let link = attached_keeping(&rt, &melody, true);
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
        melody.subscriber_count("device/1") == 1
    });
    let mut read = || match client.read().expect("a message") {
        Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    };

    // Handed over, not delivered here yet, not stamped here.
    assert_eq!(melody.publish("device/1", "kept").queued, 0);
    let _ = melody.publish("room", "plain");
    let mut batch: Vec<Outgoing> = Vec::new();
    assert!(rt.block_on(link.next_outgoing(&mut batch, 100)));
    let kept: Vec<bool> = batch.iter().map(|o| o.kept).collect();
    assert_eq!(kept, [true, false], "only the history topic's is kept");
    assert_eq!(melody.last_position("device/1"), None);

    // Back from the shared log at its position: kept and delivered; a repeat is not.
    let at = |seq| Position::new(0x7, seq);
    let message: Publication = Prepared::text("kept").into();
    let first = link.deliver_at("device/1", at(1), &message);
    assert_eq!(
        first.map(|(d, q)| (d, q.queued)),
        Some((Delivered::Kept, 1))
    );
    assert_eq!(read(), "kept");
    let again = link.deliver_at("device/1", at(1), &message);
    assert_eq!(
        again.map(|(d, q)| (d, q.queued)),
        Some((Delivered::Duplicate, 0))
    );
    assert_eq!(melody.last_position("device/1"), Some(at(1)));
    assert!(!link.forget_if_unused("device/1"), "a history topic stays");

    // A full queue: delivered here only, unkept, and counted dropped.
    batch.clear();
    for i in 0..CAPACITY {
        let _ = melody.publish("device/1", format!("q{i}").as_str());
    }
    assert_eq!(melody.publish("device/1", "overflow").queued, 1);
    assert_eq!(read(), "overflow");
    assert_eq!(link.counters().dropped(), 1);
    assert_eq!(melody.last_position("device/1"), Some(at(1)), "not kept");
    melody.close();
}
