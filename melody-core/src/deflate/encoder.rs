//! Compressing one outbound message as RFC 7692 §7.2.1 says: raw deflate, flushed to a
//! byte boundary, the final `00 00 ff ff` removed, the frame's RSV1 set.

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, FlushCompress, Status};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::MAX_WINDOW_BITS;
use crate::prepared::MessageKind;

/// The tail a sync flush ends with, which the sender removes (§7.2.1).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib's level 6: its own default, the usual balance of ratio and speed. A shared
/// copy is paid once per message, whatever the number of recipients.
const LEVEL: u32 = 6;

/// zlib's default `memLevel`, which flate2 always uses.
const MEM_LEVEL: u32 = 8;

/// zlib-rs (like zlib-ng) hashes into a table of 2^16 entries whatever the level.
const HASH_BITS: u32 = 16;

/// Smallest window zlib compresses raw deflate with (it turns 8 into 9).
pub(crate) const MIN_WINDOW_BITS: u8 = 9;

/// One raw-deflate compressor with a fixed window.
pub(crate) struct Deflater {
    compress: Compress,
    window_bits: u8,
    /// Compressed bytes of the message in progress (kept for the next message).
    out: Vec<u8>,
}

impl Deflater {
    /// A compressor whose back-references reach at most `2^window_bits` bytes.
    pub(crate) fn new(window_bits: u8) -> Self {
        let window_bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        Deflater {
            compress: Compress::new_with_window_bits(
                flate2::Compression::new(LEVEL),
                false,
                window_bits,
            ),
            window_bits,
            out: Vec::new(),
        }
    }

    /// The memory this compressor holds (see [`state_memory`]), plus its output buffer.
    pub(crate) fn memory(&self) -> usize {
        state_memory(self.window_bits) + self.out.capacity()
    }

    /// Compresses `payload` as one message and frames it with RSV1 set. With
    /// `keep_context` the next message may refer back into this one (context
    /// takeover); otherwise the compressor starts empty again. `None` if compression
    /// failed: the compressor is reset, and the caller sends the message uncompressed.
    pub(crate) fn frame(
        &mut self,
        kind: MessageKind,
        payload: &[u8],
        keep_context: bool,
    ) -> Option<Bytes> {
        self.out.clear();
        let compressed = self.compress_message(payload);
        if !keep_context || !compressed {
            self.compress.reset();
        }
        let frame = compressed.then(|| compressed_frame(kind, &self.out));
        // A large message's buffer is not kept for an idle session.
        if self.out.capacity() > 16 * 1024 {
            self.out = Vec::new();
        }
        frame
    }

    /// Deflates `payload` into `self.out` with a sync flush, without the tail.
    fn compress_message(&mut self, payload: &[u8]) -> bool {
        let mut input = payload;
        loop {
            // Deflate's worst case is a few bytes per 16 KiB stored block over the input.
            self.out.reserve(input.len() + input.len() / 1024 + 64);
            let before_in = self.compress.total_in();
            match self
                .compress
                .compress_vec(input, &mut self.out, FlushCompress::Sync)
            {
                Ok(Status::Ok) | Ok(Status::BufError) => {}
                Ok(Status::StreamEnd) | Err(_) => return false,
            }
            let used = (self.compress.total_in() - before_in) as usize;
            input = &input[used.min(input.len())..];
            // Done when all input is in and the flush did not fill the buffer.
            if input.is_empty() && self.out.len() < self.out.capacity() {
                break;
            }
        }
        if !self.out.ends_with(&SYNC_TAIL) {
            return false;
        }
        self.out.truncate(self.out.len() - SYNC_TAIL.len());
        if self.out.is_empty() {
            // An empty result is sent as a single 0x00 (§7.2.3.6's empty block).
            self.out.push(0x00);
        }
        true
    }
}

/// What zlib-rs allocates for a deflate state with `window_bits` at the default
/// `memLevel`: the window (2 × 2^w bytes), the chain links (2^w × 2 bytes), the hash
/// table (2^16 × 2 bytes) and the pending buffer (4 × 2^(memLevel + 6) bytes). 320 KiB
/// at 15 bits; measured as ~323 KB of RSS per idle dedicated session (BENCHMARKS.md).
pub(crate) fn state_memory(window_bits: u8) -> usize {
    let window = 1usize << window_bits;
    2 * window + 2 * window + (2 << HASH_BITS) + (4 << (MEM_LEVEL + 6))
}

/// An unmasked final data frame with RSV1 set, carrying `compressed`.
pub(crate) fn compressed_frame(kind: MessageKind, compressed: &[u8]) -> Bytes {
    let opcode = match kind {
        MessageKind::Text => OpCode::Data(Data::Text),
        MessageKind::Binary => OpCode::Data(Data::Binary),
    };
    let header = FrameHeader {
        opcode,
        rsv1: true,
        ..FrameHeader::default()
    };
    let len = compressed.len() as u64;
    let mut writer = BytesMut::with_capacity(header.len(len) + compressed.len()).writer();
    // Writing into memory cannot fail.
    let _ = header.format(len, &mut writer);
    let mut buf = writer.into_inner();
    buf.extend_from_slice(compressed);
    buf.freeze()
}

/// The window a shared copy is compressed with for a recipient that allows
/// `window_bits`: a message no longer than that window cannot refer further back than
/// any window holds, so every such recipient shares the full-window copy; only a longer
/// message needs a copy per smaller window.
pub(crate) fn shared_window(window_bits: u8, payload_len: usize) -> u8 {
    let window_bits = window_bits.clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    if payload_len <= 1 << window_bits {
        MAX_WINDOW_BITS
    } else {
        window_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(compressed: &[u8], d: &mut Decompress) -> Vec<u8> {
        let mut input = compressed.to_vec();
        input.extend_from_slice(&SYNC_TAIL);
        let mut out = Vec::with_capacity(1 << 20);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("a valid deflate stream");
        out
    }

    #[test]
    fn frames_have_rsv1_and_no_tail_and_inflate_back() {
        let mut deflater = Deflater::new(15);
        let text = "hello hello hello hello hello".repeat(20);
        let frame = deflater
            .frame(MessageKind::Text, text.as_bytes(), false)
            .expect("compressed");
        assert_eq!(frame[0], 0x80 | 0x40 | 0x01, "FIN, RSV1, text");
        let header_len = 2;
        assert!(!frame.ends_with(&SYNC_TAIL));
        let mut d = Decompress::new_with_window_bits(false, 15);
        assert_eq!(inflate(&frame[header_len..], &mut d), text.as_bytes());
    }

    #[test]
    fn empty_message_is_one_zero_byte() {
        let mut deflater = Deflater::new(15);
        let frame = deflater.frame(MessageKind::Binary, b"", false).expect("ok");
        assert_eq!(&frame[..], &[0x80 | 0x40 | 0x02, 1, 0x00]);
    }

    #[test]
    fn shared_window_is_full_for_messages_that_fit_the_smallest() {
        assert_eq!(shared_window(9, 512), 15);
        assert_eq!(shared_window(9, 513), 9);
        assert_eq!(shared_window(15, 1 << 20), 15);
        assert_eq!(shared_window(8, 100), 15);
    }

    #[test]
    fn memory_follows_zlib_rs_allocations() {
        assert_eq!(state_memory(15), 320 * 1024);
        assert_eq!(state_memory(9), 2 * 1024 + 128 * 1024 + 64 * 1024);
    }
}
