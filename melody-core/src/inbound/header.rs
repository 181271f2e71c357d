//! Reading one frame header (RFC 6455 §5.2) from the bytes that have arrived so far,
//! strictly: a length written in more bytes than it needs is refused, as is a 64-bit
//! length with its top bit set.

/// Opcodes the gate tells apart; tungstenite judges every other one.
pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;

/// The fields of a frame header the gate acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The first byte as sent: FIN, RSV1–3 and the opcode.
    pub(crate) first: u8,
    /// The masking key, if the frame is masked.
    pub(crate) mask: Option<[u8; 4]>,
    /// Bytes of the header itself, 2 to 14.
    pub(crate) header_len: usize,
    /// The announced payload length.
    pub(crate) payload_len: u64,
}

impl Header {
    pub(crate) fn is_final(&self) -> bool {
        self.first & 0x80 != 0
    }

    pub(crate) fn rsv1(&self) -> bool {
        self.first & 0x40 != 0
    }

    pub(crate) fn opcode(&self) -> u8 {
        self.first & 0x0f
    }

    pub(crate) fn is_control(&self) -> bool {
        self.opcode() & 0x8 != 0
    }

    /// Header and payload, or `None` when that does not fit in memory at all.
    pub(crate) fn frame_len(&self) -> Option<usize> {
        usize::try_from(self.payload_len)
            .ok()?
            .checked_add(self.header_len)
    }
}

/// What the bytes at hand say about the next header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parse {
    /// More bytes are needed to read the header.
    Partial,
    Complete(Header),
    /// The length is not in its shortest form, or uses the 64-bit form's top bit.
    BadLength(&'static str),
}

/// Reads the header at the start of `bytes`.
pub(crate) fn parse(bytes: &[u8]) -> Parse {
    let (Some(&first), Some(&second)) = (bytes.first(), bytes.get(1)) else {
        return Parse::Partial;
    };
    let masked = second & 0x80 != 0;
    let (len_bytes, short) = match second & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
    if bytes.len() < header_len {
        return Parse::Partial;
    }
    let payload_len = match short {
        Some(n) => n,
        None => {
            let mut raw = [0u8; 8];
            raw[8 - len_bytes..].copy_from_slice(&bytes[2..2 + len_bytes]);
            u64::from_be_bytes(raw)
        }
    };
    if len_bytes == 2 && payload_len < 126 {
        return Parse::BadLength("a frame length under 126 written in the 16-bit form");
    }
    if len_bytes == 8 && payload_len >> 63 != 0 {
        return Parse::BadLength("a 64-bit frame length with its most significant bit set");
    }
    if len_bytes == 8 && payload_len <= 0xffff {
        return Parse::BadLength("a frame length under 65536 written in the 64-bit form");
    }
    let mask = masked.then(|| {
        let at = 2 + len_bytes;
        [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
    });
    Parse::Complete(Header {
        first,
        mask,
        header_len,
        payload_len,
    })
}

/// Writes a masked frame header with a zero key (the payload goes as is), in the
/// shortest length form: how the gate hands tungstenite an inflated frame.
pub(crate) fn write_masked(out: &mut Vec<u8>, first: u8, payload_len: usize) {
    out.push(first);
    match payload_len {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
}

/// XORs `payload` with `mask`, whose key cycles from the payload's first byte.
///
/// Eight bytes at a time: byte by byte, a 64-byte echo spent about 380 instructions
/// here, as much as tungstenite's whole read of the frame.
pub(crate) fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    let key = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut words = payload.chunks_exact_mut(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ key).to_ne_bytes());
    }
    // Whole words came before: the key is at its start again.
    for (byte, key) in words.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *byte ^= key;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmasking_by_words_matches_the_bytewise_rule() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..40 {
            let payload: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(29)).collect();
            let mut fast = payload.clone();
            unmask(&mut fast, mask);
            let slow: Vec<u8> = payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow, "length {len}");
        }
    }

    #[test]
    fn shortest_forms_parse_and_longer_ones_are_refused() {
        assert_eq!(parse(&[0x81]), Parse::Partial);
        let Parse::Complete(h) = parse(&[0x81, 0x85, 1, 2, 3, 4]) else {
            panic!("complete")
        };
        assert_eq!(
            (h.header_len, h.payload_len, h.mask),
            (6, 5, Some([1, 2, 3, 4]))
        );
        assert!(matches!(parse(&[0x82, 126, 0, 126]), Parse::Complete(h) if h.payload_len == 126));
        assert!(matches!(parse(&[0x82, 126, 0, 125]), Parse::BadLength(_)));
        let long = |n: u64| {
            let mut b = vec![0x82, 127];
            b.extend_from_slice(&n.to_be_bytes());
            parse(&b)
        };
        assert!(matches!(long(0x1_0000), Parse::Complete(h) if h.header_len == 10));
        assert!(matches!(long(0xffff), Parse::BadLength(_)));
        assert!(matches!(long(1 << 63), Parse::BadLength(_)));
        assert_eq!(parse(&[0x82, 127, 0, 0, 0]), Parse::Partial);
    }
}
