//! Shared compression: one compressed copy of a message per window, made on first need
//! and shared by every compressing recipient like the uncompressed frame.

use std::sync::OnceLock;

use bytes::Bytes;

use super::encoder::{shared_window, Deflater, MIN_WINDOW_BITS};
use super::MAX_WINDOW_BITS;
use crate::prepared::{MessageKind, Prepared};

/// Windows a shared copy can be made for: 9 to 15 bits.
const WINDOWS: usize = (MAX_WINDOW_BITS - MIN_WINDOW_BITS + 1) as usize;

/// A hub's compressors for shared copies, one per window, created on first use and
/// reset after every message (no context takeover), so they allocate once.
#[derive(Default)]
pub(crate) struct SharedDeflaters {
    by_window: [Option<Box<Deflater>>; WINDOWS],
}

impl SharedDeflaters {
    fn get(&mut self, window_bits: u8) -> &mut Deflater {
        let slot = usize::from(window_bits - MIN_WINDOW_BITS);
        self.by_window[slot].get_or_insert_with(|| Box::new(Deflater::new(window_bits)))
    }
}

/// The compressed copies of one message: per window, and per frame kind (text data
/// goes to binary-writing sessions in a binary frame). `None` in a slot: compression
/// did not make the message smaller (or failed), so it goes uncompressed.
#[derive(Default, Clone)]
pub(crate) struct DeflatedCopies {
    slots: [[OnceLock<Option<Bytes>>; 2]; WINDOWS],
}

impl std::fmt::Debug for DeflatedCopies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let made = self.slots.iter().flatten().filter(|s| s.get().is_some());
        f.debug_struct("DeflatedCopies")
            .field("made", &made.count())
            .finish()
    }
}

impl DeflatedCopies {
    /// The compressed frame of `frame` for a recipient whose window is
    /// `window_bits`, compressing it now if no recipient needed it yet.
    pub(crate) fn frame_for(
        &self,
        frame: &Prepared,
        window_bits: u8,
        deflaters: &mut SharedDeflaters,
    ) -> Option<Bytes> {
        let payload = frame.payload();
        let window = shared_window(window_bits, payload.len());
        let kind = usize::from(frame.kind() == MessageKind::Binary);
        self.slots[usize::from(window - MIN_WINDOW_BITS)][kind]
            .get_or_init(|| {
                deflaters
                    .get(window)
                    .frame(frame.kind(), &payload, false)
                    // Incompressible data goes as it is: RSV1 is chosen per message.
                    .filter(|compressed| compressed.len() < frame.wire_len())
            })
            .clone()
    }
}
