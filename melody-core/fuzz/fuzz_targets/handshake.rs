//! The upgrade request parser, through the hub's input path: arbitrary bytes cut at
//! arbitrary boundaries. Whatever arrives, the connection ends in exactly one of: an
//! accepted session (101), an accepted event stream (200 `text/event-stream`, a chunked
//! body that ends with its last chunk once the server closes it), an HTTP refusal whose
//! status matches the error event, the configured page (200), or nothing written at all
//! when the request never completed; and cutting the bytes differently changes nothing.
//!
//! Input layout: `[size, flags, pattern × 4, stream…]`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use melody_core::{Config, Event, HttpPage, OriginPolicy, SessionError};
use melody_fuzz::chunks::split;
use melody_fuzz::stream::{run, Ending, Outcome};

const HEADER: usize = 6;

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let (size, flags, pattern, stream) = (data[0], data[1], &data[2..HEADER], &data[HEADER..]);
    let config = config(size, flags);
    // With the cap at one session and one already open, a valid request earns a 503.
    let occupied = usize::from(flags & 0x10 != 0);
    let ending = if flags & 0x20 != 0 {
        Ending::Eof
    } else {
        Ending::Silence
    };

    let whole = run(&config, occupied, std::iter::once(stream), ending);
    let chunked = run(&config, occupied, split(stream, pattern), ending);
    assert_eq!(
        whole, chunked,
        "the outcome depends on how the bytes were cut"
    );

    check_outcome(&chunked, &config, stream, ending);
});

fn config(size: u8, flags: u8) -> Config {
    let origin = match (flags >> 2) & 3 {
        0 => OriginPolicy::SameOrigin,
        1 => OriginPolicy::AllowList(vec!["http://allowed.test".into()]),
        _ => OriginPolicy::Any,
    };
    let subprotocols = if flags & 2 != 0 {
        vec!["chat".to_string()]
    } else {
        Vec::new()
    };
    Config::default()
        .max_handshake_size(32 + usize::from(size) * 16)
        .http_page((flags & 1 != 0).then(|| HttpPage::at("/", "<p>page</p>")))
        .origin_policy(origin)
        .subprotocols(subprotocols)
        .max_sessions((flags & 0x10 != 0).then_some(1))
        .max_message_size(256)
        .read_buffer_size(64)
}

fn check_outcome(outcome: &Outcome, config: &Config, stream: &[u8], ending: Ending) {
    let connected = outcome.events.first() == Some(&Event::Connect);
    let refusal = outcome.events.iter().find_map(|e| match e {
        Event::Error(SessionError::Handshake(r)) => Some(r),
        _ => None,
    });
    let written = &outcome.written;
    if connected && written.starts_with(b"HTTP/1.1 200 OK\r\n") {
        // An event stream (its body was checked when the session was released).
        assert!(refusal.is_none(), "accepted and refused");
        assert!(
            config.event_streams,
            "an event stream with event streams off"
        );
        let head = String::from_utf8_lossy(written).to_ascii_lowercase();
        assert!(
            head.contains("\r\ncontent-type: text/event-stream\r\n"),
            "a 200 after Connect that is no event stream: {head:?}"
        );
        // A client that closes its side ends the stream at once; a silent one sees the
        // server close it, with the last chunk.
        assert!(
            ending == Ending::Eof || written.ends_with(b"\r\n0\r\n\r\n"),
            "a closed event stream without its last chunk"
        );
    } else if connected {
        assert!(refusal.is_none(), "accepted and refused");
        assert!(
            written.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"),
            "accepted without a 101"
        );
    } else if let Some(refusal) = refusal {
        let status = format!("HTTP/1.1 {} ", refusal.status.as_u16());
        assert!(
            written.starts_with(status.as_bytes()),
            "refused with {} but wrote {:?}",
            refusal.status,
            String::from_utf8_lossy(&written[..written.len().min(40)])
        );
        assert!(
            refusal.status.is_client_error() || refusal.status.is_server_error(),
            "a refusal with status {}",
            refusal.status
        );
    } else if !written.is_empty() {
        assert!(
            config.http_page.is_some(),
            "wrote without accepting or refusing"
        );
        assert!(written.starts_with(b"HTTP/1.1 200 OK\r\n"), "not the page");
    } else {
        // Nothing came of it: the request must have been incomplete and within bounds.
        assert!(
            stream.len() < config.max_handshake_size,
            "{} bytes without an answer (max_handshake_size {})",
            stream.len(),
            config.max_handshake_size
        );
    }
}
