//! The gate's memory, seen through the crate-private held-bytes accessor.

use crate::test_support::open;
use crate::{Config, Event, SessionError};

/// A masked header (zero key) in the 64-bit length form.
fn header_64(first: u8, len: u64) -> Vec<u8> {
    let mut h = vec![first, 0x80 | 127];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0; 4]);
    h
}

#[test]
fn a_header_announcing_16_mib_holds_only_the_bytes_that_arrived() {
    let limit = 16 << 20;
    let (mut hub, id, t0) = open(Config::default().max_message_size(limit));
    let header = header_64(0x82, limit as u64);
    hub.handle_input(id, t0, &header).expect("known session");
    assert_eq!(hub.held_inbound_bytes(id), Some(header.len()));
    hub.handle_input(id, t0, &[7; 1000]).expect("known session");
    assert_eq!(hub.held_inbound_bytes(id), Some(header.len() + 1000));
    assert_eq!(hub.poll_event(id), None, "nothing complete, nothing failed");
}

#[test]
fn a_fragmented_message_is_held_until_its_last_frame() {
    let (mut hub, id, t0) = open(Config::default());
    // 300 bytes in a first fragment, then half of the second's header.
    let mut first = vec![0x02, 0x80 | 126, 0x01, 0x2c, 0, 0, 0, 0];
    first.extend_from_slice(&[1; 300]);
    hub.handle_input(id, t0, &first).expect("known session");
    assert_eq!(hub.held_inbound_bytes(id), Some(300));
    hub.handle_input(id, t0, &[0x80, 0x85, 0])
        .expect("known session");
    assert_eq!(hub.held_inbound_bytes(id), Some(303));
    hub.handle_input(id, t0, &[0, 0, 0, 2, 2, 2, 2, 2])
        .expect("known session");
    assert_eq!(hub.held_inbound_bytes(id), Some(0));
    assert!(matches!(hub.poll_event(id), Some(Event::Binary(b)) if b.len() == 305));
    // Idle again: the gate gives its memory back.
    assert!(hub.trim(id));
    assert_eq!(hub.held_inbound_bytes(id), Some(0));
}

#[test]
fn a_frame_announcing_more_than_the_limit_is_refused_before_it_is_buffered() {
    let limit = 16 << 20;
    let (mut hub, id, t0) = open(Config::default().max_message_size(limit));
    hub.handle_input(id, t0, &header_64(0x82, limit as u64 + 1))
        .expect("known session");
    assert_eq!(hub.held_inbound_bytes(id), Some(0));
    assert_eq!(
        hub.poll_event(id),
        Some(Event::Error(SessionError::MessageTooBig {
            size: limit + 1,
            max: limit
        }))
    );
}

#[test]
fn an_idle_session_pays_nothing_for_the_gate() {
    // One pointer, inside the open phase's room: the handshake phase (a buffer and a
    // held request) is the larger variant, so sessions do not grow.
    assert_eq!(
        std::mem::size_of::<super::InboundGate>(),
        std::mem::size_of::<usize>()
    );
    assert!(
        std::mem::size_of::<crate::session::Phase>()
            <= std::mem::size_of::<Vec<u8>>() + 2 * std::mem::size_of::<usize>()
    );
    // Whole frames in one piece allocate nothing in the gate.
    let (mut hub, id, t0) = open(Config::default());
    hub.handle_input(id, t0, &[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'])
        .expect("known session");
    assert!(matches!(hub.poll_event(id), Some(Event::Text(t)) if t == "hi"));
    assert!(!hub.gate_allocated(id));
    // A frame in two pieces does, until the session is trimmed.
    hub.handle_input(id, t0, &[0x81, 0x82, 0])
        .expect("known session");
    hub.handle_input(id, t0, &[0, 0, 0, b'h', b'o'])
        .expect("known session");
    assert!(hub.gate_allocated(id));
    hub.trim(id);
    assert!(!hub.gate_allocated(id));
}
