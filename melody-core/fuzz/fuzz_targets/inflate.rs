//! The compressed inbound path: a session that agreed to permessage-deflate (with or
//! without client context takeover) receives messages a client compressed, fragmented
//! and interleaved with pings, some damaged, under a small fuzz-chosen
//! `max_message_size`, cut at fuzz-chosen boundaries.
//!
//! What must hold: no panic; cutting the bytes differently changes neither the events
//! nor the bytes written; every message delivered is within `max_message_size`
//! (checked by the harness); up to the first damaged message, exactly the messages
//! sent are delivered, in order, and a message over the limit ends the session before
//! anything after it is delivered.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use melody_core::{Compression, Config, Event};
use melody_fuzz::chunks::split;
use melody_fuzz::deflate_wire::{Client, ClientMessage, Expect};
use melody_fuzz::stream::{run, Ending};
use melody_fuzz::wire::upgrade_request;

#[derive(Debug, Arbitrary)]
struct Input {
    max_message_size: u16,
    no_context_takeover: bool,
    pattern: [u8; 4],
    messages: Vec<ClientMessage>,
}

fuzz_target!(|input: Input| {
    let max = 1 + usize::from(input.max_message_size % 8192);
    let config = Config::default()
        .max_message_size(max)
        .compression(Compression::Dedicated)
        // The server sends nothing compressed: its echo-free output stays readable.
        .compression_threshold(usize::MAX);
    let offer = if input.no_context_takeover {
        "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
    } else {
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    };
    let mut stream = upgrade_request(offer);
    let mut client = Client::new(!input.no_context_takeover);
    let mut expected = Vec::new();
    for msg in input.messages.iter().take(16) {
        let expect = client.send(msg, max, &mut stream);
        let stop = expect != Expect::Failure && !matches!(expect, Expect::Message { .. });
        let failed = expect == Expect::Failure;
        expected.push(expect);
        if stop || failed {
            break;
        }
    }

    let whole = run(&config, 0, std::iter::once(&stream[..]), Ending::Silence);
    let chunked = run(&config, 0, split(&stream, &input.pattern), Ending::Silence);
    assert_eq!(
        whole, chunked,
        "the outcome depends on how the bytes were cut"
    );

    let delivered: Vec<(bool, Vec<u8>)> = whole
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Text(t) => Some((true, t.as_bytes().to_vec())),
            Event::Binary(b) => Some((false, b.to_vec())),
            _ => None,
        })
        .collect();
    let known: Vec<(bool, Vec<u8>)> = expected
        .iter()
        .filter_map(|e| match e {
            Expect::Message { text, data } => Some((*text, data.clone())),
            _ => None,
        })
        .collect();
    match expected.last() {
        Some(Expect::Unknown) => assert!(
            delivered.starts_with(&known),
            "the messages before the damaged one were not delivered intact"
        ),
        _ => assert_eq!(
            delivered, known,
            "delivered messages differ from those sent"
        ),
    }
    if expected.last() == Some(&Expect::Failure) {
        assert!(
            whole.events.iter().any(|e| matches!(e, Event::Error(_))),
            "a message over the limit or with RSV1 on a continuation did not fail the session"
        );
    }
});
