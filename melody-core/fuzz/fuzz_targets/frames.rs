//! The frame reader: a valid upgrade followed by arbitrary bytes, under a fuzz-chosen
//! message size limit and read buffer, cut at arbitrary boundaries. Cutting the bytes
//! differently must change neither the events nor the bytes written back; every
//! message delivered respects `max_message_size`; the session ends exactly once.
//!
//! Input layout: `[max_message_size, read_buffer_size, flags, pattern × 4, frames…]`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use melody_core::Config;
use melody_fuzz::chunks::split;
use melody_fuzz::stream::{run, Ending};
use melody_fuzz::wire::upgrade_request;

const HEADER: usize = 7;

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let (max_message, read_buffer, flags) = (data[0], data[1], data[2]);
    let (pattern, frames) = (&data[3..HEADER], &data[HEADER..]);
    let config = Config::default()
        .max_message_size(1 + usize::from(max_message) * 2)
        .read_buffer_size(1 + usize::from(read_buffer))
        .sent_events(flags & 1 != 0);
    let ending = if flags & 2 != 0 {
        Ending::Eof
    } else {
        Ending::Silence
    };
    let mut stream = upgrade_request("");
    stream.extend_from_slice(frames);

    let whole = run(&config, 0, std::iter::once(&stream[..]), ending);
    let chunked = run(&config, 0, split(&stream, pattern), ending);
    assert_eq!(
        whole, chunked,
        "the outcome depends on how the bytes were cut"
    );
});
