//! Bounded inflation of permessage-deflate payloads (RFC 7692 §7.2.2).
//!
//! Output is produced in small steps and counted against the message's remaining room
//! before it is kept, so a bomb (a few bytes that inflate to gigabytes) costs at most
//! one limit's worth of output plus one step, never more.

use flate2::{Decompress, FlushDecompress, Status};

/// Bytes inflated per step: what may be produced past the limit before the overflow
/// is seen (it is then discarded, never kept).
const STEP: usize = 4096;

/// Why a payload could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The output would exceed the room left (`size` is what it reached at least).
    TooBig { size: usize },
    /// Not a valid deflate stream.
    Corrupt(String),
}

/// One session's decompressor: a raw deflate stream whose window may carry over from
/// one message to the next (context takeover).
pub(crate) struct Inflater {
    raw: Decompress,
    /// The stream ended with a final block: what follows in the message is ignored,
    /// and the next message starts a fresh stream.
    ended: bool,
}

impl Inflater {
    /// A decompressor for a peer whose compressor uses at most `2^window_bits` bytes
    /// of window. zlib cannot inflate with an 8-bit window, and its own compressor
    /// writes a 9-bit window when asked for 8 (RFC 7692 §7.1.2.2 notes this), so the
    /// window is at least 9 bits.
    pub(crate) fn new(window_bits: u8) -> Self {
        Inflater {
            raw: Decompress::new_with_window_bits(false, window_bits.clamp(9, 15)),
            ended: false,
        }
    }

    /// Starts the next message with an empty window (no context takeover, or a stream
    /// that ended with a final block).
    pub(crate) fn reset(&mut self) {
        self.raw.reset(false);
        self.ended = false;
    }

    /// Whether the next message needs a fresh stream whatever was negotiated.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Inflates `input`, appending to `out` at most `room` bytes; more is an error.
    pub(crate) fn inflate(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        room: usize,
    ) -> Result<(), InflateError> {
        let mut step = [0u8; STEP];
        let mut produced = 0usize;
        while !self.ended {
            let (in_before, out_before) = (self.raw.total_in(), self.raw.total_out());
            let status = self
                .raw
                .decompress(input, &mut step, FlushDecompress::Sync)
                .map_err(|e| InflateError::Corrupt(e.to_string()))?;
            let consumed = usize::try_from(self.raw.total_in() - in_before).unwrap_or(usize::MAX);
            let written = usize::try_from(self.raw.total_out() - out_before).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            produced = produced.saturating_add(written);
            if produced > room {
                return Err(InflateError::TooBig { size: produced });
            }
            out.extend_from_slice(&step[..written]);
            if status == Status::StreamEnd {
                self.ended = true;
            }
            // Done when the input is used up and the last step had room to spare (so
            // nothing is left pending inside), or when no progress is possible.
            if (input.is_empty() && written < STEP) || (consumed == 0 && written == 0) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    fn deflate(data: &[u8]) -> Vec<u8> {
        deflate_with_window(data, 15)
    }

    fn deflate_with_window(data: &[u8], bits: u8) -> Vec<u8> {
        let mut c = Compress::new_with_window_bits(Compression::best(), false, bits);
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, FlushCompress::Sync)
            .expect("compress");
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    #[test]
    fn inflates_exactly_the_room_and_refuses_one_byte_less() {
        let data = vec![b'a'; 100_000];
        let mut payload = deflate(&data);
        payload.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::new();
        Inflater::new(15)
            .inflate(&payload, &mut out, data.len())
            .expect("fits");
        assert_eq!(out, data);
        let mut out = Vec::new();
        let err = Inflater::new(15).inflate(&payload, &mut out, data.len() - 1);
        assert!(matches!(err, Err(InflateError::TooBig { size }) if size >= data.len()));
        assert!(out.len() < data.len());
    }

    #[test]
    fn a_decompressor_with_the_agreed_narrow_window_inflates_its_streams() {
        // 1,000 pseudo-random letters, twice: the second copy refers 1,000 bytes back.
        let block: Vec<u8> = (0..1000u32)
            .map(|n| b'a' + ((n.wrapping_mul(2_654_435_761) >> 11) % 26) as u8)
            .collect();
        let data = [block.clone(), block].concat();
        let tail = [0, 0, 0xff, 0xff];
        // A 9-bit compressor's stream (it cannot refer that far back) inflates with a
        // 9-bit window: 512 bytes of history instead of 32 KiB.
        let narrow = [deflate_with_window(&data, 9), tail.to_vec()].concat();
        let mut out = Vec::new();
        Inflater::new(9)
            .inflate(&narrow, &mut out, 1 << 20)
            .expect("within the window");
        assert_eq!(out, data);
        // An 8-bit agreement inflates with 9 bits, as zlib's own 8-bit compressor
        // writes (RFC 7692 §7.1.2.2).
        let mut out = Vec::new();
        Inflater::new(8)
            .inflate(&narrow, &mut out, 1 << 20)
            .expect("9 bits");
        assert_eq!(out, data);
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut out = Vec::new();
        let err = Inflater::new(15).inflate(&[0xff; 16], &mut out, 1 << 20);
        assert!(matches!(err, Err(InflateError::Corrupt(_))), "{err:?}");
    }
}
