//! The inbound gate: every byte a peer sends passes here before tungstenite sees it.
//!
//! tungstenite's frame reader reserves a frame's whole announced length as soon as its
//! header arrives (`FrameCodec::read_frame` calls `in_buffer.reserve(len)`), so a
//! 14-byte header announcing 16 MiB costs 16 MiB of address space at a 16 MiB limit.
//! The gate reads headers itself and hands tungstenite only complete frames: a partial
//! frame waits here, in a buffer that grows with the bytes that arrived, never with the
//! length announced. On each header it also enforces what tungstenite does not: a length
//! in its shortest form (RFC 6455 §5.2), a message within `max_message_size` before
//! anything is buffered, and the RSV1 rules of permessage-deflate.
//!
//! **Compressed messages.** tungstenite 0.30 knows no extension and fails any frame
//! with RSV1 set, so the gate inflates: a message whose first frame has RSV1 set
//! (RFC 7692 §6) is inflated frame by frame as each one completes, and tungstenite
//! gets the same frames uncompressed, RSV1 cleared. Everything else it checks (UTF-8,
//! fragmentation order, control frames, the close handshake) then works unchanged on
//! the inflated bytes, and no fork or second frame parser is needed. The inflated size
//! is counted against `max_message_size` while inflating (see `inflate.rs`).
//!
//! **Whole messages.** A plain data message in one frame, the common case, is handed
//! out as [`Step::Whole`]: the session unmasks it and checks its UTF-8 itself, which
//! is all tungstenite would do with it while the connection is open both ways.
//!
//! An idle session's gate is one null pointer: its state is boxed only while a frame
//! or message is in progress or a decompressor is kept, and `trim` frees it.

mod header;
mod inflate;

use bytes::Bytes;
use header::{Header, Parse, OP_BINARY, OP_CONTINUATION, OP_TEXT};
use inflate::{InflateError, Inflater};
use tungstenite::error::ProtocolError;

use crate::error::SessionError;
use crate::DeflateParams;

/// The end of every compressed message, removed by the sender (RFC 7692 §7.2.1) and
/// put back before inflating (§7.2.2).
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// RSV1, RSV2 and RSV3 in a frame's first byte.
const RESERVED_BITS: u8 = 0x70;

/// Compressed payload unmasked per step (a multiple of 4 keeps the mask aligned).
const UNMASK_STEP: usize = 4096;

/// What the gate has for tungstenite next.
pub(crate) enum Step<'a> {
    /// One complete frame, as tungstenite reads it.
    Frame(&'a [u8]),
    /// A whole data message in one plain frame: the session may take its payload
    /// without tungstenite (see [`Whole`]), or hand it the frame like any other.
    Whole(Whole<'a>),
    /// The input is used up; a partial frame (if any) is kept.
    NeedMore,
    /// The peer broke the protocol or a limit: fail the session with this error.
    Fail(SessionError),
}

/// A text or binary message in one final, masked frame, with no reserved bit set and
/// no message in progress, within the size limit (checked on its header).
///
/// Such a frame needs nothing of tungstenite's state (fragments, close handshake), and
/// is most of what a busy session reads: taking it here saves tungstenite's second
/// parse of the header, its buffer and its read loop (about 200 of an echo's 8,650
/// instructions when it came in). Every other frame still goes through tungstenite.
pub(crate) struct Whole<'a> {
    /// The frame as it came, header included.
    pub(crate) frame: &'a [u8],
    /// A text message (else binary).
    pub(crate) text: bool,
    header_len: usize,
    mask: [u8; 4],
}

impl Whole<'_> {
    /// The payload, unmasked, in a buffer of its own.
    pub(crate) fn payload(&self) -> Bytes {
        let mut payload = self.frame[self.header_len..].to_vec();
        header::unmask(&mut payload, self.mask);
        Bytes::from(payload)
    }
}

/// The limits and extension a session reads with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// Largest message (and frame), after inflation.
    pub(crate) max_message_size: usize,
    /// permessage-deflate as agreed, if it was.
    pub(crate) deflate: Option<DeflateParams>,
}

/// One session's gate (see the module docs).
#[derive(Default)]
pub(crate) struct InboundGate {
    state: Option<Box<GateState>>,
}

#[derive(Default)]
struct GateState {
    /// The bytes of a frame that has not arrived whole.
    partial: Vec<u8>,
    /// `partial` holds a frame handed out by the last step: cleared on the next.
    partial_handed_out: bool,
    /// An inflated frame handed out by the last step (with room for its header at
    /// the front).
    inflated: Vec<u8>,
    /// The data message whose first frame has been handed out and its last not yet.
    message: Option<Message>,
    /// A message began since the last `take_message_started`.
    message_started: bool,
    /// Created with the first compressed message, kept for context takeover.
    inflater: Option<Box<Inflater>>,
}

#[derive(Debug, Clone, Copy)]
struct Message {
    compressed: bool,
    /// Payload bytes (inflated, when compressed) handed to tungstenite so far: what it
    /// holds of the message.
    bytes: usize,
}

/// The room for a frame's header ahead of its inflated payload.
const HEADER_ROOM: usize = 14;

impl InboundGate {
    /// The next complete frame for tungstenite, taken from `input` (advanced past what
    /// was used) and the bytes kept from earlier input.
    pub(crate) fn next<'g, 'i: 'g>(&'g mut self, input: &mut &'i [u8], rules: &Rules) -> Step<'g> {
        if let Some(state) = &mut self.state {
            if state.partial_handed_out {
                // tungstenite has copied the frame: a large buffer goes at once rather
                // than wait for `trim`, so a big frame is not held twice for long.
                release(&mut state.partial);
                state.partial_handed_out = false;
            }
            release(&mut state.inflated);
        }
        let kept = self.state.as_ref().map_or(0, |s| s.partial.len());
        if kept == 0 && input.is_empty() {
            return Step::NeedMore;
        }
        // The header, read across the kept bytes and the new ones.
        let mut head = [0u8; HEADER_ROOM];
        let from_kept = kept.min(HEADER_ROOM);
        if let Some(state) = &self.state {
            head[..from_kept].copy_from_slice(&state.partial[..from_kept]);
        }
        let from_input = (HEADER_ROOM - from_kept).min(input.len());
        head[from_kept..from_kept + from_input].copy_from_slice(&input[..from_input]);
        let header = match header::parse(&head[..from_kept + from_input]) {
            Parse::Partial => {
                self.keep(input);
                return Step::NeedMore;
            }
            Parse::BadLength(why) => return Step::Fail(SessionError::Protocol(why.to_owned())),
            Parse::Complete(header) => header,
        };
        let message = self.state.as_ref().and_then(|s| s.message);
        if let Err(err) = check(&header, message, rules) {
            return Step::Fail(err);
        }
        let Some(frame_len) = header.frame_len() else {
            return Step::Fail(too_big(header.payload_len, rules.max_message_size));
        };
        // The frame, whole: straight from the input, or completed in `partial`.
        let at = if kept == 0 && input.len() >= frame_len {
            let (frame, rest) = input.split_at(frame_len);
            *input = rest;
            At::Input(frame)
        } else if kept + input.len() >= frame_len {
            let (tail, rest) = input.split_at(frame_len - kept);
            *input = rest;
            let state = self.state.get_or_insert_with(Box::default);
            state.partial.extend_from_slice(tail);
            state.partial_handed_out = true;
            At::Partial
        } else {
            self.keep(input);
            return Step::NeedMore;
        };
        self.pass(header, at, rules)
    }

    /// Keeps all of `input` as the start of a frame.
    fn keep(&mut self, input: &mut &[u8]) {
        if input.is_empty() {
            return;
        }
        let state = self.state.get_or_insert_with(Box::default);
        state.partial.extend_from_slice(input);
        *input = &[];
    }

    /// Tracks the message a complete frame belongs to, inflating it if it is
    /// compressed, and hands it out.
    fn pass<'a>(&'a mut self, header: Header, at: At<'a>, rules: &Rules) -> Step<'a> {
        let opcode = header.opcode();
        let message = self.state.as_ref().and_then(|s| s.message);
        // Control frames, and data frames out of order (tungstenite fails those with
        // 1002), go to tungstenite as they are.
        let in_order = match opcode {
            OP_TEXT | OP_BINARY => message.is_none(),
            OP_CONTINUATION => message.is_some(),
            _ => false,
        };
        let compressed = message.map_or(header.rsv1(), |m| m.compressed);
        // A frame without a mask goes as it is too: tungstenite refuses it from a client.
        let inflate = in_order && compressed && header.mask.is_some();
        if !inflate {
            let payload_len = match at {
                At::Input(frame) => frame.len(),
                At::Partial => self.state.as_ref().map_or(0, |s| s.partial.len()),
            } - header.header_len;
            let single = header.is_final() && message.is_none();
            if in_order && !single {
                let state = self.state.get_or_insert_with(Box::default);
                advance(state, header, payload_len);
            }
            let frame = match at {
                At::Input(frame) => frame,
                At::Partial => match &self.state {
                    Some(state) => &state.partial[..],
                    None => return Step::NeedMore,
                },
            };
            return match header.mask {
                Some(mask) if in_order && single && header.first & RESERVED_BITS == 0 => {
                    Step::Whole(Whole {
                        frame,
                        text: opcode == OP_TEXT,
                        header_len: header.header_len,
                        mask,
                    })
                }
                _ => Step::Frame(frame),
            };
        }
        let state: &mut GateState = self.state.get_or_insert_with(Box::default);
        let already = message.map_or(0, |m| m.bytes);
        let room = rules.max_message_size.saturating_sub(already);
        let window = rules.deflate.map_or(15, |d| d.client_max_window_bits);
        let frame: &[u8] = match at {
            At::Input(frame) => frame,
            At::Partial => &state.partial,
        };
        let inflater = state
            .inflater
            .get_or_insert_with(|| Box::new(Inflater::new(window)));
        let masked = &frame[header.header_len..];
        if let Err(err) = inflate_frame(inflater, &header, masked, &mut state.inflated, room) {
            return Step::Fail(match err {
                InflateError::TooBig { size } => too_big(
                    (already as u64).saturating_add(size as u64),
                    rules.max_message_size,
                ),
                InflateError::Corrupt(why) => SessionError::Compression(why),
            });
        }
        if header.is_final() {
            let reset = rules.deflate.is_some_and(|d| d.client_no_context_takeover);
            if reset || inflater.ended() {
                inflater.reset();
            }
        }
        let inflated_len = state.inflated.len() - HEADER_ROOM;
        advance(state, header, inflated_len);
        // The header goes right in front of the payload, in the room left for it:
        // FIN and the opcode as sent, RSV1 cleared.
        let mut head = Vec::with_capacity(HEADER_ROOM);
        header::write_masked(&mut head, header.first & !0x40, inflated_len);
        let start = HEADER_ROOM - head.len();
        state.inflated[start..HEADER_ROOM].copy_from_slice(&head);
        Step::Frame(&state.inflated[start..])
    }

    /// Whether a data message has begun and not ended (its first frame in part or
    /// whole): the message-completion deadline runs.
    pub(crate) fn message_in_progress(&self) -> bool {
        self.state.as_ref().is_some_and(|s| {
            s.message.is_some() || s.partial.first().is_some_and(|b| b & 0x08 == 0)
        })
    }

    /// Whether a message began since the last call (its deadline starts afresh).
    pub(crate) fn take_message_started(&mut self) -> bool {
        self.state
            .as_mut()
            .is_some_and(|s| std::mem::take(&mut s.message_started))
    }

    /// The bytes this session holds of frames and messages not yet complete: the
    /// partial frame kept here, and what tungstenite holds of a fragmented message.
    #[inline]
    pub(crate) fn held_bytes(&self) -> usize {
        self.state.as_ref().map_or(0, |s| {
            let partial = if s.partial_handed_out {
                0
            } else {
                s.partial.len()
            };
            partial + s.message.map_or(0, |m| m.bytes)
        })
    }

    /// Whether the gate holds any memory (for tests of the idle cost).
    #[cfg(test)]
    pub(crate) fn is_allocated(&self) -> bool {
        self.state.is_some()
    }

    /// Frees what an idle session does not need: everything, unless a frame or a
    /// message is in progress or the decompressor's window must carry over to the next
    /// message (context takeover).
    pub(crate) fn trim(&mut self, deflate: Option<&DeflateParams>) {
        let Some(state) = &mut self.state else {
            return;
        };
        let busy =
            state.message.is_some() || (!state.partial_handed_out && !state.partial.is_empty());
        if busy {
            return;
        }
        let takeover = deflate.is_some_and(|d| !d.client_no_context_takeover);
        let keeps_window = takeover && state.inflater.as_ref().is_some_and(|i| !i.ended());
        if keeps_window {
            state.partial = Vec::new();
            state.partial_handed_out = false;
            state.inflated = Vec::new();
        } else {
            self.state = None;
        }
    }
}

/// Capacity a buffer keeps between frames; a larger one is freed once used.
const RETAIN: usize = 16 * 1024;

/// Empties `buf`, freeing it if it grew past [`RETAIN`].
fn release(buf: &mut Vec<u8>) {
    if buf.capacity() > RETAIN {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

/// Where a complete frame is: in the new input, or completed in the gate's buffer.
enum At<'a> {
    Input(&'a [u8]),
    Partial,
}

/// A data frame of the current message was handed out, `len` payload bytes of it.
fn advance(state: &mut GateState, header: Header, len: usize) {
    let started = state.message.is_none();
    let message = state.message.get_or_insert(Message {
        compressed: header.rsv1(),
        bytes: 0,
    });
    message.bytes += len;
    state.message_started |= started;
    if header.is_final() {
        state.message = None;
    }
}

/// Inflates one compressed frame's masked payload into `out`, after the room left for
/// its header; the message's last frame gets the deflate tail back first.
fn inflate_frame(
    inflater: &mut Inflater,
    header: &Header,
    masked: &[u8],
    out: &mut Vec<u8>,
    room: usize,
) -> Result<(), InflateError> {
    out.clear();
    out.resize(HEADER_ROOM, 0);
    let mask = header.mask.unwrap_or_default();
    let mut step = [0u8; UNMASK_STEP];
    // What a step reports as too big counts from the step's start: add what the frame
    // produced before it.
    let whole = |used: usize, err: InflateError| match err {
        InflateError::TooBig { size } => InflateError::TooBig {
            size: used.saturating_add(size),
        },
        other => other,
    };
    for piece in masked.chunks(UNMASK_STEP) {
        let step = &mut step[..piece.len()];
        step.copy_from_slice(piece);
        header::unmask(step, mask);
        let used = out.len() - HEADER_ROOM;
        inflater
            .inflate(step, out, room - used)
            .map_err(|e| whole(used, e))?;
    }
    if header.is_final() {
        let used = out.len() - HEADER_ROOM;
        inflater
            .inflate(&DEFLATE_TAIL, out, room - used)
            .map_err(|e| whole(used, e))?;
    }
    Ok(())
}

/// The rules a header breaks before anything of its frame is buffered.
fn check(header: &Header, message: Option<Message>, rules: &Rules) -> Result<(), SessionError> {
    let max = rules.max_message_size;
    let opcode = header.opcode();
    if header.rsv1() {
        if rules.deflate.is_none() {
            // tungstenite's own words for it, as for RSV2 and RSV3.
            return Err(SessionError::Protocol(
                ProtocolError::NonZeroReservedBits.to_string(),
            ));
        }
        if header.is_control() {
            return Err(SessionError::Protocol(
                "RSV1 set on a control frame".to_owned(),
            ));
        }
        if opcode == OP_CONTINUATION {
            return Err(SessionError::Protocol(
                "RSV1 set on a continuation frame (only a message's first frame may have it)"
                    .to_owned(),
            ));
        }
    }
    if header.is_control() && header.payload_len > 125 {
        // Refused on its header, as tungstenite would once it had it all (RFC 6455 §5.5).
        return Err(SessionError::Protocol(
            ProtocolError::ControlFrameTooBig.to_string(),
        ));
    }
    let compressed = match (opcode, message) {
        (OP_CONTINUATION, Some(m)) => m.compressed,
        _ => header.rsv1(),
    };
    let so_far = match (opcode, message) {
        (OP_CONTINUATION, Some(m)) => m.bytes as u64,
        _ => 0,
    };
    let limit = if compressed {
        // Compressed bytes may exceed the inflated size a little (stored blocks).
        compressed_limit(max) as u64
    } else {
        max as u64
    };
    // Inflated size is checked while inflating; the compressed frame alone is bounded.
    let announced = if compressed {
        header.payload_len
    } else {
        so_far.saturating_add(header.payload_len)
    };
    if announced > limit {
        return Err(too_big(announced, max));
    }
    Ok(())
}

/// The most compressed bytes one frame of a message of `max` bytes can need: data that
/// does not compress goes in stored blocks of 5 bytes' overhead each, which zlib cuts at
/// 16 KiB by default and at a few hundred bytes at its smallest memory level; 1/64 of
/// the limit plus a little covers blocks down to 320 bytes.
fn compressed_limit(max: usize) -> usize {
    max.saturating_add(max / 64 + 64)
}

fn too_big(size: u64, max: usize) -> SessionError {
    SessionError::MessageTooBig {
        size: usize::try_from(size).unwrap_or(usize::MAX),
        max,
    }
}

#[cfg(test)]
mod tests;
