//! What the peer received, read back as a client would: the HTTP answer, then (after a
//! 101) well-formed server frames, with nothing after the close frame.

/// What a connection's bytes held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The HTTP status of the answer, if a whole head arrived.
    pub status: Option<u16>,
    /// Complete text and binary frames after a 101.
    pub data_frames: u64,
    /// Whether a complete close frame arrived.
    pub close: bool,
}

/// Reads `written` as the peer would, panicking at anything a server must not send:
/// masked or fragmented frames, reserved bits or opcodes, oversized control frames,
/// bytes after the close frame. The stream may stop mid-frame (a transport cut).
/// `upgraded`: an HTTP framework answered the upgrade, so frames start at once.
pub fn read(written: &[u8], upgraded: bool) -> Received {
    if upgraded {
        return read_frames(written, Received::default());
    }
    let mut received = Received::default();
    let Some(head_end) = find(written, b"\r\n\r\n") else {
        return received;
    };
    let head = &written[..head_end];
    assert!(head.starts_with(b"HTTP/1.1 "), "not an HTTP answer");
    let status = head.get(9..12).and_then(|s| std::str::from_utf8(s).ok());
    let Some(status) = status.and_then(|s| s.parse::<u16>().ok()) else {
        panic!("an HTTP answer without a status");
    };
    received.status = Some(status);
    if status != 101 {
        return received;
    }
    read_frames(&written[head_end + 4..], received)
}

fn read_frames(mut rest: &[u8], mut received: Received) -> Received {
    while let Some((header, payload_len)) = frame_header(rest) {
        let Some(total) = header.checked_add(payload_len).filter(|&t| t <= rest.len()) else {
            break; // cut mid-frame
        };
        assert!(!received.close, "bytes after the close frame");
        let (first, second) = (rest[0], rest[1]);
        assert_eq!(first & 0x80, 0x80, "a fragmented server frame");
        assert_eq!(first & 0x70, 0, "reserved bits set");
        assert_eq!(second & 0x80, 0, "a masked server frame");
        let payload = &rest[header..total];
        match first & 0x0f {
            0x1 => {
                assert!(std::str::from_utf8(payload).is_ok(), "text not UTF-8");
                received.data_frames += 1;
            }
            0x2 => received.data_frames += 1,
            0x8 => {
                assert!(payload.len() <= 125, "oversized close frame");
                assert_ne!(payload.len(), 1, "a close payload of one byte");
                if payload.len() > 2 {
                    assert!(std::str::from_utf8(&payload[2..]).is_ok(), "close reason");
                }
                received.close = true;
            }
            0x9 | 0xA => assert!(payload.len() <= 125, "oversized control frame"),
            other => panic!("a server frame with opcode {other:#x}"),
        }
        rest = &rest[total..];
    }
    received
}

/// The header length and payload length of the frame at the start of `bytes`, once the
/// whole header is there.
fn frame_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let second = *bytes.get(1)?;
    let (header, len) = match second & 0x7f {
        126 => (
            4,
            u64::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
        ),
        127 => {
            let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            (10, u64::from_be_bytes(raw))
        }
        n => (2, u64::from(n)),
    };
    let masked = if second & 0x80 != 0 { 4 } else { 0 };
    Some((header + masked, usize::try_from(len).ok()?))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
