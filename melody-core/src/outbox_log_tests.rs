//! The data lane with frames held in the hub's log: runs, order beside other entries,
//! eviction and discards that give the log's slots back.

use super::*;

fn bounds(messages: usize, policy: DropPolicy) -> Bounds {
    Bounds {
        messages,
        bytes: None,
        policy,
    }
}

/// The lane these tests log frames in.
const LANE: FormLane = FormLane::Frame;

/// `text` appended to the logs in a fan-out of its own: its position, and the message.
fn logged(logs: &mut FrameLogs, text: &str) -> (u64, Prepared) {
    let msg = Prepared::text(text);
    logs.begin_fanout();
    let at = logs.lane(LANE).append(&msg).expect("room in the log");
    (at, msg)
}

/// Offers the frame at `at` of the logs under `b`.
fn push(o: &mut Outbox, at: u64, b: Bounds, logs: &mut FrameLogs) -> Admit {
    let len = logs.get(LANE).len(at);
    o.push_logged(LANE, at, len, b, usize::MAX, logs)
}

/// Slots in use once the next fan-out appended one frame: what the earlier ones
/// still hold, and that one.
fn slots_after_next_fanout(logs: &mut FrameLogs) -> usize {
    logs.begin_fanout();
    logs.lane(LANE).append(&Prepared::text("next"));
    logs.slots_in_use()
}

/// Everything transmitted and reported written; the bytes and the completions.
fn drain(o: &mut Outbox, keep: bool, log: &mut FrameLogs) -> (Vec<u8>, Vec<Completed>) {
    let (mut bytes, mut done) = (Vec::new(), Vec::new());
    let mut out = Batch::new();
    while o.transmit_with(&mut out, keep, log, |m| m.frame().clone()) > 0 {
        let n = out.unwritten_bytes();
        out.iter().for_each(|b| bytes.extend_from_slice(b));
        o.transmitted(&mut out, n, |c| done.push(c));
    }
    (bytes, done)
}

#[test]
fn logged_frames_in_a_row_share_one_entry_and_go_out_in_order_with_the_rest() {
    let mut log = FrameLogs::default();
    let b = bounds(8, DropPolicy::DropNewest);
    let mut o = Outbox::default();
    let (a, a_msg) = logged(&mut log, "a");
    assert_eq!(push(&mut o, a, b, &mut log), Admit::Queued { evicted: 0 });
    let (bb, b_msg) = logged(&mut log, "bb");
    push(&mut o, bb, b, &mut log);
    let c_msg = Prepared::text("ccc");
    o.push_data_within(Offer::Copy(&c_msg), b, usize::MAX, &mut log);
    let (d, d_msg) = logged(&mut log, "dddd");
    push(&mut o, d, b, &mut log);
    assert_eq!(o.data_len(), 4);
    assert_eq!(
        o.lanes.as_ref().map(|l| l.data.len()),
        Some(3),
        "a and bb in one run, ccc copied, dddd a run of its own"
    );
    let lens = [&a_msg, &b_msg, &c_msg, &d_msg].map(|m| m.wire_len());
    assert_eq!(o.data_bytes(), lens.iter().sum::<usize>());
    let (bytes, done) = drain(&mut o, false, &mut log);
    let expected: Vec<u8> = [a_msg, b_msg, c_msg, d_msg]
        .iter()
        .flat_map(|m| m.frame().to_vec())
        .collect();
    assert_eq!(bytes, expected);
    let sent: usize = done
        .iter()
        .map(|c| match c {
            Completed::Data { count, .. } => *count,
            Completed::Close => 0,
        })
        .sum();
    assert_eq!(sent, 4);
    assert!(o.is_empty() && o.data_bytes() == 0);
    assert_eq!(
        slots_after_next_fanout(&mut log),
        1,
        "every slot was given back"
    );
}

#[test]
fn drop_oldest_evicts_part_of_a_run_and_gives_its_slots_back() {
    let mut log = FrameLogs::default();
    let b = bounds(3, DropPolicy::DropOldest);
    let mut o = Outbox::default();
    let mut msgs = Vec::new();
    for text in ["1", "22", "333", "4444"] {
        let (offer, msg) = logged(&mut log, text);
        msgs.push(msg);
        let admit = push(&mut o, offer, b, &mut log);
        let evicted = usize::from(text == "4444");
        assert_eq!(admit, Admit::Queued { evicted });
    }
    assert_eq!(o.data_len(), 3);
    let held: usize = msgs[1..].iter().map(Prepared::wire_len).sum();
    assert_eq!(o.data_bytes(), held);
    let (bytes, _) = drain(&mut o, false, &mut log);
    let expected: Vec<u8> = msgs[1..].iter().flat_map(|m| m.frame().to_vec()).collect();
    assert_eq!(bytes, expected, "the oldest went");
    assert_eq!(slots_after_next_fanout(&mut log), 1);
}

#[test]
fn discarded_and_cleared_outboxes_give_their_slots_back() {
    let mut log = FrameLogs::default();
    let b = bounds(8, DropPolicy::DropNewest);
    let mut o = Outbox::default();
    for text in ["a", "b", "c"] {
        let (offer, _) = logged(&mut log, text);
        push(&mut o, offer, b, &mut log);
    }
    assert_eq!(o.discard_queued_data(&mut log), 3);
    assert_eq!((o.data_len(), o.data_bytes()), (0, 0));
    let (offer, _) = logged(&mut log, "d");
    push(&mut o, offer, b, &mut log);
    assert_eq!(log.slots_in_use(), 1, "a, b and c were given back");
    assert_eq!(o.clear(&mut log), 1);
    assert_eq!(slots_after_next_fanout(&mut log), 1, "d was given back");
}

#[test]
fn a_logged_frame_still_reports_its_message_when_sent_events_come_on() {
    let mut log = FrameLogs::default();
    let mut o = Outbox::default();
    let (offer, msg) = logged(&mut log, "hi");
    push(&mut o, offer, bounds(8, DropPolicy::DropNewest), &mut log);
    let (bytes, done) = drain(&mut o, true, &mut log);
    assert_eq!(bytes, msg.frame().to_vec());
    assert!(
        matches!(&done[..], [Completed::Data { count: 1, msg: Some(m) }] if *m == msg),
        "{done:?}"
    );
}

#[test]
fn a_refused_logged_frame_is_not_held() {
    let mut log = FrameLogs::default();
    let b = bounds(1, DropPolicy::DropNewest);
    let mut o = Outbox::default();
    let (first, _) = logged(&mut log, "kept");
    push(&mut o, first, b, &mut log);
    let (second, _) = logged(&mut log, "refused");
    assert_eq!(push(&mut o, second, b, &mut log), Admit::Dropped);
    drain(&mut o, false, &mut log);
    assert_eq!(slots_after_next_fanout(&mut log), 1);
}

#[test]
fn a_spill_takes_old_logged_frames_out_in_order_and_keeps_the_newer_run() {
    let mut log = FrameLogs::default();
    let b = bounds(16, DropPolicy::DropNewest);
    let mut o = Outbox::default();
    let mut msgs = Vec::new();
    let mut positions = Vec::new();
    for text in ["a", "bb", "ccc"] {
        let (at, msg) = logged(&mut log, text);
        push(&mut o, at, b, &mut log);
        positions.push(at);
        msgs.push(msg);
    }
    let large = Prepared::text("x".repeat(200));
    o.push_data_within(Offer::Entry(large.clone().into()), b, usize::MAX, &mut log);
    msgs.push(large);
    for text in ["d", "e"] {
        let (at, msg) = logged(&mut log, text);
        push(&mut o, at, b, &mut log);
        positions.push(at);
        msgs.push(msg);
    }
    let bytes = o.data_bytes();
    o.spill_logged(LANE, positions[1], &mut log);
    assert_eq!(
        o.data_entries(),
        4,
        "a, then the run of bb and ccc, the large one, the run of d and e"
    );
    o.spill_logged(LANE, positions[4], &mut log);
    assert_eq!(
        o.data_entries(),
        6,
        "a, bb, ccc, the large one, d, the run of e"
    );
    assert_eq!((o.data_len(), o.data_bytes()), (6, bytes));
    assert_eq!(
        slots_after_next_fanout(&mut log),
        2,
        "a to d were given back: e and the new one are left"
    );
    let (out, _) = drain(&mut o, false, &mut log);
    let expected: Vec<u8> = msgs.iter().flat_map(|m| m.frame().to_vec()).collect();
    assert_eq!(out, expected);
}
