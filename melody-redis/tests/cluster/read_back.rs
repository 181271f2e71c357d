//! The read-back wait of the request hook's admission (`Melody::judge`, the path of
//! HTTP integrations), with an in-process backplane standing for Redis: a resume on a
//! history topic this instance never listened to waits for the backplane to read the
//! shared log into the copy, and no longer than a failed read or the handshake timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use melody_core::history::{HistoryLimits, HistoryRules, Position};
use melody_core::http;
use melody_core::Publication;
use melody_driver::{Backplane, BackplaneLink, BoxFuture};
use melody_tokio::{Config, ConnectionInfo, Melody, Prepared, TokioRuntime, Verdict};

const TOPIC: &str = "device/9";
const EPOCH: u64 = 0x7;

/// What the in-process backplane does when it hears of a topic.
#[derive(Clone, Copy)]
enum Reading {
    /// Puts three messages in the copy, then reports the read-back.
    Reads,
    /// Reports that reading failed.
    Fails,
    /// Says nothing (a Redis that does not answer).
    Silent,
}

/// A backplane keeping history, whose shared log holds `e1..=e3` at `EPOCH.1..=3`.
struct Log(Reading, Arc<Mutex<Vec<String>>>);

impl Backplane<TokioRuntime> for Log {
    fn keeps_history(&self) -> bool {
        true
    }

    fn run(self, link: BackplaneLink<TokioRuntime>) -> BoxFuture {
        Box::pin(async move {
            let mut topics = Vec::new();
            while link.next_new_topics(&mut topics).await {
                for topic in topics.drain(..) {
                    if let Ok(mut heard) = self.1.lock() {
                        heard.push(topic.to_string());
                    }
                    match self.0 {
                        Reading::Reads => {
                            let entries = (1..=3)
                                .map(|n| {
                                    let text = format!("e{n}");
                                    let message = Publication::from(Prepared::text(&text));
                                    (Position::new(EPOCH, n), message)
                                })
                                .collect();
                            let _ = link.backfill(&topic, entries);
                            link.history_read_back(&topic);
                        }
                        Reading::Fails => link.history_read_back_failed(&topic),
                        Reading::Silent => {}
                    }
                }
            }
        })
    }
}

fn websocket_request() -> http::Request<()> {
    http::Request::get(format!("/h/{TOPIC}"))
        .header("host", "localhost")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .expect("a valid request")
}

fn event_stream_request(last_event_id: &str) -> http::Request<()> {
    http::Request::get(format!("/h/{TOPIC}"))
        .header("host", "localhost")
        .header("accept", "text/event-stream")
        .header("last-event-id", last_event_id)
        .body(())
        .expect("a valid request")
}

/// An instance keeping `device/` history whose hook admits on `TOPIC`, resuming from
/// `resume_from` when given, with `reading` as its backplane.
fn start(
    rt: &tokio::runtime::Runtime,
    reading: Reading,
    resume_from: Option<String>,
    handshake_timeout: Duration,
) -> (Melody, Arc<Mutex<Vec<String>>>) {
    let rules = HistoryRules::new().prefix("device/", HistoryLimits::new().max_messages(10));
    let config = Config::default()
        .history(rules)
        .handshake_timeout(handshake_timeout);
    let melody = Melody::with_config(config).expect("valid config");
    melody.on_request(move |_info| {
        let verdict = Verdict::admit().subscribe(TOPIC);
        let verdict = match resume_from.clone() {
            Some(position) => verdict.resume_from(position),
            None => verdict,
        };
        async move { verdict }
    });
    let heard = Arc::default();
    rt.block_on(async {
        assert!(melody
            .attach_backplane(Log(reading, Arc::clone(&heard)))
            .is_ok());
    });
    (melody, heard)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

#[test]
fn judging_a_resume_waits_for_the_shared_log_to_be_read_back() {
    let rt = runtime();
    let from = Position::new(EPOCH, 1).to_string();
    let cases = [
        (
            "a WebSocket's resume_from",
            Some(from.clone()),
            websocket_request(),
        ),
        (
            "an event stream's Last-Event-ID",
            None,
            event_stream_request(&from),
        ),
    ];
    for (what, resume_from, request) in cases {
        let (melody, heard) = start(&rt, Reading::Reads, resume_from, Duration::from_secs(10));
        assert_eq!(
            melody.last_position(TOPIC),
            None,
            "{what}: nothing read yet"
        );
        let verdict = rt.block_on(melody.judge(&request, ConnectionInfo::default()));
        assert!(verdict.is_admit(), "{what}");
        assert_eq!(
            melody.last_position(TOPIC),
            Some(Position::new(EPOCH, 3)),
            "{what}: the copy holds the log when the verdict is out"
        );
        assert_eq!(melody.stats().history.messages, 3, "{what}");
        assert_eq!(heard.lock().map(|h| h.clone()).unwrap_or_default(), [TOPIC]);

        // Read back once: the next resume does not report the topic again.
        let verdict = rt.block_on(melody.judge(&request, ConnectionInfo::default()));
        assert!(verdict.is_admit(), "{what}");
        assert_eq!(heard.lock().map(|h| h.len()).unwrap_or_default(), 1);
    }
}

#[test]
fn a_subscription_without_a_position_does_not_wait() {
    let rt = runtime();
    let (melody, heard) = start(&rt, Reading::Silent, None, Duration::from_secs(600));
    // A backplane that never reads would hold a waiting verdict for 10 minutes.
    let verdict = rt.block_on(melody.judge(&websocket_request(), ConnectionInfo::default()));
    assert!(verdict.is_admit());
    assert!(heard.lock().map(|h| h.is_empty()).unwrap_or_default());
}

#[test]
fn a_failed_read_back_lets_the_resume_go_on_with_what_is_there() {
    let rt = runtime();
    // With a read-back that fails, the verdict comes without waiting out the timeout
    // (10 minutes: the test would not end otherwise).
    let (melody, _) = start(
        &rt,
        Reading::Fails,
        Some("7.1".to_owned()),
        Duration::from_secs(600),
    );
    let verdict = rt.block_on(melody.judge(&websocket_request(), ConnectionInfo::default()));
    assert!(verdict.is_admit());
    assert_eq!(melody.last_position(TOPIC), None, "nothing was read");
}

#[test]
fn a_silent_backplane_holds_the_verdict_no_longer_than_the_handshake_timeout() {
    let rt = runtime();
    let (melody, _) = start(
        &rt,
        Reading::Silent,
        Some("7.1".to_owned()),
        Duration::from_millis(200),
    );
    let verdict = rt.block_on(melody.judge(&websocket_request(), ConnectionInfo::default()));
    assert!(
        verdict.is_admit(),
        "admitted all the same: the resume reports a gap"
    );
    assert_eq!(melody.last_position(TOPIC), None);
}

#[test]
fn an_application_can_wait_for_the_read_back_before_subscribe_from() {
    let rt = runtime();
    let within = Duration::from_secs(600);
    let (melody, _) = start(&rt, Reading::Reads, None, within);
    assert!(rt.block_on(melody.read_back_history(TOPIC, within)));
    assert_eq!(melody.last_position(TOPIC), Some(Position::new(EPOCH, 3)));
    assert!(
        rt.block_on(melody.read_back_history("chat", within)),
        "a topic without history has nothing to read"
    );

    let (melody, _) = start(&rt, Reading::Fails, None, within);
    assert!(!rt.block_on(melody.read_back_history(TOPIC, within)));

    let (melody, _) = start(&rt, Reading::Silent, None, within);
    let short = Duration::from_millis(100);
    assert!(!rt.block_on(melody.read_back_history(TOPIC, short)));
}

#[test]
fn a_served_resume_that_waited_in_vain_is_answered_before_the_handshake_deadline() {
    let rt = runtime();
    let timeout = Duration::from_millis(400);
    let (melody, heard) = start(&rt, Reading::Silent, Some("7.1".to_owned()), timeout);
    melody.on_history_gap(|session, topic, reason| {
        session.write(&format!("gap {topic} {}", reason.as_str()));
    });
    let listener = rt.block_on(async {
        tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port")
    });
    let addr = listener.local_addr().expect("local address");
    let served = melody.clone();
    rt.spawn(async move { melody_tokio::serve(&served, listener).await });

    // The 101 comes (not a 503 for a verdict past the deadline), then the gap.
    let mut client = crate::harness::Client::connect(addr, &format!("/h/{TOPIC}"));
    let gap = client.recv();
    assert!(gap.starts_with(&format!("gap {TOPIC} ")), "{gap:?}");
    assert_eq!(heard.lock().map(|h| h.clone()).unwrap_or_default(), [TOPIC]);
    assert_eq!(melody.stats().history.gaps, 1, "counted");
    melody.close();
}
