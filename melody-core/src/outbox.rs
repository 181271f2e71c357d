//! A session's outbound queue: a control lane written first, a bounded data lane, the
//! final close frame, and the bytes handed to the transport but not yet confirmed.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::batch::{Batch, COPY_AT_MOST};
use crate::config::DropPolicy;
use crate::frame_log::{FormLane, FrameLogs};
use crate::prepared::{MessageKind, Prepared};

/// Most unsent pongs kept; older ones are dropped first.
pub(crate) const MAX_PENDING_PONGS: usize = 16;

/// Most buffers handed out by one `poll_transmit` (Linux's `IOV_MAX` is 1024).
pub(crate) const MAX_TRANSMIT_ITEMS: usize = 1024;

/// Room made in a write's copy buffer for control frames (a ping or pong is at most
/// 131 bytes, a close 127).
const CONTROL_ROOM: usize = 256;

/// What happened to one message offered to the data lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Queued; `evicted` older messages were dropped to make room.
    Queued { evicted: usize },
    /// The lane is full and the policy refused the message.
    Dropped,
    /// The lane had room, but the hub's memory budget did not: the message is dropped
    /// (counted like [`Admit::Dropped`]), whatever the policy.
    OverBudget,
    /// The lane is full and the policy says to disconnect the session; `discarded`
    /// queued messages were dropped with the new one.
    Disconnect { discarded: usize },
    /// The lane is sealed by a close: no data is accepted any more.
    Closed,
    /// The message has no form this session can carry (binary data for an event
    /// stream): not offered to the lane at all.
    Skipped,
}

/// Bounds of the data lane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) messages: usize,
    pub(crate) bytes: Option<usize>,
    pub(crate) policy: DropPolicy,
}

/// A data message in the lane, and the form it takes on the wire.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A small plain frame, copied in: queuing and writing it take no reference count
    /// (an atomic increment per recipient, and the decrement once written, otherwise)
    /// and it is copied out beside its neighbours (see `Batch`).
    Inline(InlineFrame),
    /// A frame shared by reference.
    Shared {
        /// The uncompressed frame: what goes out unless `wire` says otherwise, and
        /// what `Sent` events report.
        msg: Prepared,
        wire: Wire,
    },
}

/// Frames up to this size are queued as copies: as many bytes as fit in the size of
/// a shared entry (80 bytes; a test holds it there), so copies cost the lane no
/// memory. Payloads up to 66 bytes: cursor positions, presence, small readings.
pub(crate) const INLINE_AT_MOST: usize = 68;

/// A small frame's bytes, held in the lane's entry.
#[derive(Debug)]
pub(crate) struct InlineFrame {
    bytes: [u8; INLINE_AT_MOST],
    len: u8,
    header_len: u8,
    kind: MessageKind,
}

impl InlineFrame {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The message as shared bytes again (for a `Sent` event turned on meanwhile).
    fn to_prepared(&self) -> Prepared {
        Prepared::from_parts(
            Bytes::copy_from_slice(self.as_slice()),
            self.header_len,
            self.kind,
        )
    }
}

/// How a queued data message goes on the wire.
#[derive(Debug)]
pub(crate) enum Wire {
    /// As its uncompressed frame.
    Plain,
    /// As this compressed frame, made already (a shared copy).
    Deflated(Bytes),
    /// Compressed by the session's own compressor as it leaves the lane, so that the
    /// compressor's context holds exactly what the peer receives, in order: a message
    /// evicted or discarded while queued was never compressed.
    DeflateOnTransmit,
}

impl Outgoing {
    pub(crate) fn new(msg: Prepared, wire: Wire) -> Self {
        Outgoing::Shared { msg, wire }
    }

    /// Bytes it takes in the lane: the compressed size when known, else the
    /// uncompressed frame's.
    pub(crate) fn wire_len(&self) -> usize {
        match self {
            Outgoing::Inline(inline) => usize::from(inline.len),
            Outgoing::Shared {
                wire: Wire::Deflated(frame),
                ..
            } => frame.len(),
            Outgoing::Shared { msg, .. } => msg.wire_len(),
        }
    }
}

impl From<Prepared> for Outgoing {
    fn from(msg: Prepared) -> Self {
        Outgoing::new(msg, Wire::Plain)
    }
}

/// A data message offered to the lane: a plain frame to queue as its size makes best,
/// a frame held in the hub's log, or an entry made already.
#[derive(Debug)]
pub(crate) enum Offer<'a> {
    /// A plain frame: copied straight into the lane's entry when small (see
    /// `Outgoing::Inline`), else shared. Made on the stack and moved in, a copy's
    /// bytes were read back right behind its stores (a failed store-to-load forward:
    /// the load waits for every store before it); broadcast to 100 subscribers took
    /// 8-12% more CPU per delivery that way.
    Copy(&'a Prepared),
    /// A small message given as its payload (at most [`ENCODE_AT_MOST`] bytes): its
    /// frame is written straight into the lane's entry, so a single session's write
    /// makes no frame of its own to allocate and free.
    Encode {
        kind: MessageKind,
        payload: &'a [u8],
    },
    Entry(Outgoing),
}

/// The largest payload [`Hub::send_text`](crate::Hub::send_text) and
/// [`Hub::send_binary`](crate::Hub::send_binary) frame straight into a session's
/// outbox: with its 2-byte header, the size of an inline entry. A larger message is
/// encoded apart first, so callers that hold a lock around the hub may encode it
/// before they take the lock (see [`Prepared`]).
pub const SMALL_WRITE_AT_MOST: usize = INLINE_AT_MOST - 2;

/// The largest payload [`Offer::Encode`] takes.
pub(crate) const ENCODE_AT_MOST: usize = SMALL_WRITE_AT_MOST;

impl<'a> Offer<'a> {
    /// `frame` as it is: queued as its size makes best (see `Offer::Copy`) when no
    /// `Sent` event will need it (`keep`), else kept whole.
    pub(crate) fn plain(frame: &'a Prepared, keep: bool) -> Self {
        if keep {
            Offer::Entry(Outgoing::new(frame.clone(), Wire::Plain))
        } else {
            Offer::Copy(frame)
        }
    }

    pub(crate) fn wire_len(&self) -> usize {
        match self {
            Offer::Copy(frame) => frame.wire_len(),
            Offer::Encode { payload, .. } => 2 + payload.len(),
            Offer::Entry(entry) => entry.wire_len(),
        }
    }
}

impl From<Outgoing> for Offer<'_> {
    fn from(entry: Outgoing) -> Self {
        Offer::Entry(entry)
    }
}

impl From<Prepared> for Offer<'_> {
    fn from(msg: Prepared) -> Self {
        Offer::Entry(msg.into())
    }
}

/// An entry of the data lane.
#[derive(Debug)]
enum Queued {
    /// One message.
    One(Outgoing),
    /// `count` messages held in the hub's frame log of `lane`, at positions
    /// `first..first + count`: a session that gets every message of a fan-out extends
    /// one entry.
    Logged {
        lane: FormLane,
        first: u64,
        count: u32,
    },
}

impl Queued {
    fn messages(&self) -> usize {
        match self {
            Queued::One(_) => 1,
            Queued::Logged { count, .. } => *count as usize,
        }
    }

    /// The wire length of its `index`th message.
    fn len_of(&self, index: usize, logs: &FrameLogs) -> usize {
        match self {
            Queued::One(msg) => msg.wire_len(),
            Queued::Logged { lane, first, .. } => logs.get(*lane).len(first + index as u64),
        }
    }

    /// Drops it; the wire bytes it held.
    fn release(self, logs: &mut FrameLogs) -> usize {
        match self {
            Queued::One(msg) => msg.wire_len(),
            Queued::Logged { lane, first, count } => (first..first + u64::from(count))
                .map(|at| {
                    let log = logs.lane(lane);
                    let len = log.len(at);
                    log.release(at);
                    len
                })
                .sum(),
        }
    }
}

/// What a buffer handed to the transport is; its unwritten bytes are in the driver's
/// [`Batch`], in the same order.
#[derive(Debug)]
enum Flight {
    Control {
        len: usize,
    },
    /// `count` data messages one after another, their lengths at the front of
    /// `Outbox::run_lens`: one entry for a run of them (no `Sent` events), so the
    /// drain side's bookkeeping per message is one length.
    Run {
        count: usize,
    },
    /// A data message kept until it is written, for its `Sent` event.
    Kept {
        wire_len: usize,
        msg: Prepared,
    },
    Close {
        len: usize,
    },
}

impl Flight {
    /// Its bytes in the batch (small frames share a buffer there).
    fn len(&self) -> usize {
        match self {
            Flight::Control { len } | Flight::Close { len } => *len,
            Flight::Kept { wire_len, .. } => *wire_len,
            // A run is accounted message by message (see `Outbox::transmitted`).
            Flight::Run { .. } => 0,
        }
    }
}

/// Something the transport finished writing.
#[derive(Debug)]
pub(crate) enum Completed {
    /// `count` data messages, fully written (the message itself if it was kept: then
    /// `count` is 1).
    Data { count: usize, msg: Option<Prepared> },
    /// The close frame, fully written.
    Close,
}

/// A session's outbound queue. Its counters are inline; its lanes are boxed and exist
/// only while something is queued or in flight (see `Outbox::trim`): an idle session
/// holds one pointer for them.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    lanes: Option<Box<Lanes>>,
    /// Wire bytes of data messages queued or in flight.
    data_bytes: usize,
    data_in_flight: usize,
    sealed: bool,
    /// An empty close was reached with nothing left in flight.
    closed_without_bytes: bool,
}

/// What the outbox queues and has in flight.
#[derive(Debug, Default)]
struct Lanes {
    data: VecDeque<Queued>,
    /// Data messages queued (an entry of `data` may hold several).
    queued: usize,
    /// Handed to the transport, in order; the batch holds their unwritten bytes.
    in_flight: VecDeque<Flight>,
    control: VecDeque<Bytes>,
    /// Unsent pongs, at most `MAX_PENDING_PONGS`: a ping flood cannot grow the outbox.
    pongs: VecDeque<Bytes>,
    /// The last thing to write; empty for a session whose end needs no bytes (an event
    /// stream whose HTTP framing is an HTTP framework's): it is done once everything
    /// before it is written.
    close: Option<Bytes>,
    /// The wire lengths of the data messages in `Flight::Run`s, in order.
    run_lens: VecDeque<usize>,
    /// Bytes of the first in-flight item already written.
    front_written: usize,
}

impl Lanes {
    fn has_unsent(&self) -> bool {
        !self.control.is_empty()
            || !self.pongs.is_empty()
            || !self.data.is_empty()
            || self.close.is_some()
    }

    /// Takes the oldest queued data message as an entry of its own (a logged frame
    /// is copied out of the log).
    fn pop_message(&mut self, logs: &mut FrameLogs) -> Option<Outgoing> {
        match self.data.front_mut()? {
            Queued::Logged { lane, first, count } => {
                let log = logs.lane(*lane);
                let at = *first;
                *first += 1;
                *count -= 1;
                if *count == 0 {
                    self.data.pop_front();
                }
                let msg = log.message(at);
                log.release(at);
                // A held position always has its frame; an empty one is sent if not.
                Some(Outgoing::new(
                    msg.unwrap_or_else(|| Prepared::binary([])),
                    Wire::Plain,
                ))
            }
            Queued::One(_) => match self.data.pop_front() {
                Some(Queued::One(msg)) => Some(msg),
                _ => None,
            },
        }
    }

    /// Accounts one more data message of `wire_len` bytes in flight, in the run at the
    /// back if there is one.
    fn extend_run(&mut self, wire_len: usize) {
        self.run_lens.push_back(wire_len);
        add_to_run(&mut self.in_flight, 1);
    }
}

/// Queues a plain frame at the back of `data`: copied into its entry when small (built
/// where it lies, see `Offer::Copy`), else shared.
fn push_plain(data: &mut VecDeque<Queued>, frame: &Prepared) {
    let len = frame.wire_len();
    if len > INLINE_AT_MOST {
        data.push_back(Queued::One(Outgoing::new(frame.clone(), Wire::Plain)));
        return;
    }
    if let Some(bytes) = push_inline(data, len, frame.header_len(), frame.kind()) {
        bytes.copy_from_slice(frame.frame());
    }
}

/// Queues a frame of `kind` around `payload`, built where it lies as [`push_plain`]
/// does (a payload over [`ENCODE_AT_MOST`] bytes, which callers do not offer, is
/// encoded apart and shared).
fn push_encoded(data: &mut VecDeque<Queued>, kind: MessageKind, payload: &[u8]) {
    if payload.len() > ENCODE_AT_MOST {
        let frame = Prepared::encode(kind, payload);
        data.push_back(Queued::One(Outgoing::new(frame, Wire::Plain)));
        return;
    }
    if let Some(bytes) = push_inline(data, 2 + payload.len(), 2, kind) {
        let opcode = match kind {
            MessageKind::Text => 0x1,
            MessageKind::Binary => 0x2,
        };
        // FIN and the opcode, then the length in its 7-bit form (RFC 6455 §5.2).
        bytes[0] = 0x80 | opcode;
        bytes[1] = payload.len() as u8;
        bytes[2..].copy_from_slice(payload);
    }
}

/// Pushes an inline entry of `len` bytes (at most [`INLINE_AT_MOST`]) and lends its
/// bytes to be filled where they lie.
fn push_inline(
    data: &mut VecDeque<Queued>,
    len: usize,
    header_len: u8,
    kind: MessageKind,
) -> Option<&mut [u8]> {
    data.push_back(Queued::One(Outgoing::Inline(InlineFrame {
        bytes: [0; INLINE_AT_MOST],
        len: len as u8,
        header_len,
        kind,
    })));
    match data.back_mut() {
        Some(Queued::One(Outgoing::Inline(inline))) => inline.bytes.get_mut(..len),
        _ => None,
    }
}

/// Accounts `count` more data messages in flight, in the run at the back if there is
/// one (their lengths go to `Lanes::run_lens`).
fn add_to_run(in_flight: &mut VecDeque<Flight>, count: usize) {
    match in_flight.back_mut() {
        Some(Flight::Run { count: run }) => *run += count,
        _ => in_flight.push_back(Flight::Run { count }),
    }
}

impl Outbox {
    fn lanes(&mut self) -> &mut Lanes {
        self.lanes.get_or_insert_with(Box::default)
    }

    pub(crate) fn push_control(&mut self, frame: Bytes) {
        self.lanes().control.push_back(frame);
    }

    /// Queues a pong; past `MAX_PENDING_PONGS` unsent ones, the oldest is dropped
    /// (RFC 6455 §5.5.3 allows answering only the latest ping). Peers that send a few
    /// pings at once get every answer, as Autobahn's cases 2.10 and 2.11 check.
    pub(crate) fn push_pong(&mut self, frame: Bytes) {
        let pongs = &mut self.lanes().pongs;
        if pongs.len() >= MAX_PENDING_PONGS {
            pongs.pop_front();
        }
        pongs.push_back(frame);
    }

    /// Whether a ping is already waiting in the control lane (pings are not stacked).
    pub(crate) fn has_queued_control(&self) -> bool {
        self.lanes.as_ref().is_some_and(|l| !l.control.is_empty())
    }

    /// Data messages queued, not yet handed to the transport.
    fn queued_len(&self) -> usize {
        self.lanes.as_ref().map_or(0, |l| l.queued)
    }

    /// Data messages queued or in flight: what counts against the bound.
    pub(crate) fn data_len(&self) -> usize {
        self.queued_len() + self.data_in_flight
    }

    /// Wire bytes of the data messages queued or in flight: what counts against the
    /// byte bound.
    pub(crate) fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Whether anything is queued or in flight.
    pub(crate) fn is_empty(&self) -> bool {
        !self.has_in_flight() && !self.has_unsent()
    }

    /// Whether the driver holds bytes of this outbox that it has not reported written.
    pub(crate) fn has_in_flight(&self) -> bool {
        self.lanes.as_ref().is_some_and(|l| !l.in_flight.is_empty())
    }

    /// Whether anything waits to be handed to the transport.
    pub(crate) fn has_unsent(&self) -> bool {
        self.lanes.as_ref().is_some_and(|l| l.has_unsent())
    }

    /// Offers a data message under the bounds and policy, with no memory budget.
    #[cfg(test)]
    pub(crate) fn push_data<'a>(&mut self, msg: impl Into<Offer<'a>>, bounds: Bounds) -> Admit {
        self.push_data_within(msg, bounds, usize::MAX, &mut FrameLogs::default())
    }

    /// Offers a data message under the bounds and policy, when the hub's memory budget
    /// has `budget_room` bytes left. Eviction (under `DropOldest`) frees budget too.
    /// `logs` hold the frames of logged entries.
    pub(crate) fn push_data_within<'a>(
        &mut self,
        msg: impl Into<Offer<'a>>,
        bounds: Bounds,
        budget_room: usize,
        logs: &mut FrameLogs,
    ) -> Admit {
        let msg = msg.into();
        let len = msg.wire_len();
        let evicted = match self.make_room(len, bounds, budget_room, logs) {
            Ok(evicted) => evicted,
            Err(refused) => return refused,
        };
        self.data_bytes += len;
        let lanes = self.lanes();
        lanes.queued += 1;
        let data = &mut lanes.data;
        match msg {
            Offer::Entry(entry) => data.push_back(Queued::One(entry)),
            Offer::Copy(frame) => push_plain(data, frame),
            Offer::Encode { kind, payload } => push_encoded(data, kind, payload),
        }
        Admit::Queued { evicted }
    }

    /// Offers the frame of `len` bytes held in the log of `lane` at `at`, as
    /// [`Outbox::push_data_within`] does: on top of the run of logged frames it follows
    /// when there is one. Its arguments are plain numbers: an offer made on the stack
    /// and moved in was read back behind its stores.
    pub(crate) fn push_logged(
        &mut self,
        lane: FormLane,
        at: u64,
        len: usize,
        bounds: Bounds,
        budget_room: usize,
        logs: &mut FrameLogs,
    ) -> Admit {
        let evicted = match self.make_room(len, bounds, budget_room, logs) {
            Ok(evicted) => evicted,
            Err(refused) => return refused,
        };
        self.data_bytes += len;
        logs.lane(lane).hold(at);
        let lanes = self.lanes();
        lanes.queued += 1;
        match lanes.data.back_mut() {
            Some(Queued::Logged {
                lane: run_lane,
                first,
                count,
            }) if *run_lane == lane && *first + u64::from(*count) == at && *count < u32::MAX => {
                *count += 1
            }
            _ => lanes.data.push_back(Queued::Logged {
                lane,
                first: at,
                count: 1,
            }),
        }
        Admit::Queued { evicted }
    }

    /// Makes room for a message of `len` bytes under the bounds, policy and budget:
    /// how many older messages it evicted, or why the message is refused.
    #[inline(always)]
    fn make_room(
        &mut self,
        len: usize,
        bounds: Bounds,
        budget_room: usize,
        logs: &mut FrameLogs,
    ) -> Result<usize, Admit> {
        // The usual answer, inlined into every delivery: it fits as it is.
        let fits = !self.sealed
            && self.data_len() < bounds.messages
            && bounds.bytes.is_none_or(|max| self.data_bytes + len <= max)
            && len <= budget_room;
        if fits {
            return Ok(0);
        }
        self.make_room_otherwise(len, bounds, budget_room, logs)
    }

    /// [`Outbox::make_room`] when the message does not simply fit.
    #[inline(never)]
    fn make_room_otherwise(
        &mut self,
        len: usize,
        bounds: Bounds,
        budget_room: usize,
        logs: &mut FrameLogs,
    ) -> Result<usize, Admit> {
        if self.sealed {
            return Err(Admit::Closed);
        }
        if bounds.bytes.is_some_and(|max| len > max) {
            // Larger than the whole lane: it could never be queued, whatever the policy,
            // and says nothing about how fast this peer reads.
            return Err(Admit::Dropped);
        }
        let lane_fits = |count: usize, bytes: usize| {
            count < bounds.messages && bounds.bytes.is_none_or(|max| bytes + len <= max)
        };
        let mut evicted = 0;
        if lane_fits(self.data_len(), self.data_bytes) {
            if len > budget_room {
                return Err(Admit::OverBudget);
            }
        } else {
            match bounds.policy {
                DropPolicy::DropNewest => return Err(Admit::Dropped),
                DropPolicy::Disconnect => return Err(Admit::Disconnect { discarded: 0 }),
                DropPolicy::DropOldest => {
                    // Count the oldest queued messages that must go first: when evicting
                    // them all is not enough (in-flight data is never evicted), refuse
                    // the new message and evict nothing, rather than lose them unreported.
                    // What they free counts for the budget too.
                    let held = self.data_bytes;
                    let room = |count: usize, bytes: usize| {
                        lane_fits(count, bytes) && len <= budget_room.saturating_add(held - bytes)
                    };
                    let (mut count, mut bytes) = (self.data_len(), self.data_bytes);
                    let queued = self.lanes.as_ref().map(|l| &l.data);
                    'oldest: for old in queued.into_iter().flatten() {
                        for index in 0..old.messages() {
                            if room(count, bytes) {
                                break 'oldest;
                            }
                            count -= 1;
                            bytes -= old.len_of(index, logs);
                            evicted += 1;
                        }
                    }
                    if !room(count, bytes) {
                        return Err(Admit::Dropped);
                    }
                    self.evict_oldest(evicted, logs);
                }
            }
        }
        Ok(evicted)
    }

    /// Takes the frames of `lane`'s log at positions before `before` out of it, as
    /// entries of their own in the same order, so that the log can reuse their slots
    /// (see `FrameLog::spill_before`). Rare: the lane is rebuilt.
    pub(crate) fn spill_logged(&mut self, lane: FormLane, before: u64, logs: &mut FrameLogs) {
        let Some(lanes) = self.lanes.as_deref_mut() else {
            return;
        };
        let old = |q: &Queued| matches!(q, Queued::Logged { lane: l, first, .. } if *l == lane && *first < before);
        if !lanes.data.iter().any(old) {
            return;
        }
        let log = logs.lane(lane);
        for entry in std::mem::take(&mut lanes.data) {
            let Queued::Logged { first, count, .. } = entry else {
                lanes.data.push_back(entry);
                continue;
            };
            if !old(&entry) {
                lanes.data.push_back(entry);
                continue;
            }
            let end = first + u64::from(count);
            let split = end.min(before);
            for at in first..split {
                // A held position always has its frame; an empty one is sent if not.
                let msg = log.message(at).unwrap_or_else(|| Prepared::binary([]));
                log.release(at);
                push_plain(&mut lanes.data, &msg);
            }
            if split < end {
                lanes.data.push_back(Queued::Logged {
                    lane,
                    first: split,
                    count: (end - split) as u32,
                });
            }
        }
    }

    /// Drops the `n` oldest queued data messages.
    fn evict_oldest(&mut self, mut n: usize, logs: &mut FrameLogs) {
        let Some(lanes) = self.lanes.as_deref_mut() else {
            return;
        };
        while n > 0 {
            match lanes.data.front_mut() {
                Some(Queued::Logged { lane, first, count }) if *count as usize > n => {
                    let log = logs.lane(*lane);
                    for _ in 0..n {
                        self.data_bytes -= log.len(*first);
                        log.release(*first);
                        *first += 1;
                        *count -= 1;
                    }
                    lanes.queued -= n;
                    return;
                }
                Some(_) => {
                    if let Some(old) = lanes.data.pop_front() {
                        n -= old.messages();
                        lanes.queued -= old.messages();
                        self.data_bytes -= old.release(logs);
                    }
                }
                None => return,
            }
        }
    }

    /// Discards the queued (not in-flight) data; returns how many messages.
    pub(crate) fn discard_queued_data(&mut self, logs: &mut FrameLogs) -> usize {
        let Some(lanes) = self.lanes.as_mut() else {
            return 0;
        };
        for msg in lanes.data.drain(..) {
            self.data_bytes -= msg.release(logs);
        }
        std::mem::take(&mut lanes.queued)
    }

    /// Seals the data lane and queues the close frame behind the data already queued.
    /// Returns `false` (and queues nothing) when already sealed.
    pub(crate) fn seal_with_close(&mut self, frame: Bytes) -> bool {
        if self.sealed {
            return false;
        }
        self.sealed = true;
        self.lanes().close = Some(frame);
        true
    }

    /// [`Outbox::transmit_with`] for a lane without per-session compression.
    #[cfg(test)]
    pub(crate) fn transmit(&mut self, batch: &mut Batch, keep_messages: bool) -> usize {
        self.transmit_with(batch, keep_messages, &mut FrameLogs::default(), |msg| {
            msg.frame().clone()
        })
    }

    /// Moves what waits into `batch`, control first, then the pongs, data, the close
    /// frame. `keep_messages` keeps each data message until it is written (for `Sent`
    /// events); otherwise its frame moves to the batch without another reference.
    /// `deflate` compresses the messages the session's own compressor sends, in order.
    /// Logged frames are copied from `logs` and released there.
    pub(crate) fn transmit_with(
        &mut self,
        batch: &mut Batch,
        keep_messages: bool,
        logs: &mut FrameLogs,
        mut deflate: impl FnMut(&Prepared) -> Bytes,
    ) -> usize {
        let Some(lanes) = self.lanes.as_deref_mut() else {
            return 0;
        };
        let mut moved = 0;
        // What waits to be copied, about: small frames are, large ones (by reference)
        // are not, pings and pongs are small.
        let data_room = self.data_bytes.min(lanes.queued * COPY_AT_MOST);
        let mut batch = batch.fill(data_room + CONTROL_ROOM);
        while moved < MAX_TRANSMIT_ITEMS {
            let (bytes, flight) = if let Some(c) = lanes.control.pop_front() {
                let len = c.len();
                (c, Flight::Control { len })
            } else if let Some(p) = lanes.pongs.pop_front() {
                let len = p.len();
                (p, Flight::Control { len })
            } else if let Some(Queued::One(Outgoing::Inline(inline))) =
                lanes.data.front().filter(|_| !keep_messages)
            {
                // Copied from where it lies: popped first, the entry was moved through
                // the stack and its length read back across two stores (a failed
                // store-to-load forward per message).
                let len = inline.as_slice().len();
                batch.push_copy(inline.as_slice());
                lanes.data.pop_front();
                lanes.queued -= 1;
                self.data_in_flight += 1;
                lanes.extend_run(len);
                moved += 1;
                continue;
            } else if let Some(Queued::Logged { lane, first, count }) =
                lanes.data.front_mut().filter(|_| !keep_messages)
            {
                let log = logs.lane(*lane);
                // The run's frames, copied from the log while they are in the cache.
                let take = (*count as usize).min(MAX_TRANSMIT_ITEMS - moved);
                for _ in 0..take {
                    // A held position always has its frame; nothing is sent if not.
                    let len = match log.frame(*first) {
                        Some(frame) => {
                            batch.push_shared(frame);
                            frame.len()
                        }
                        None => 0,
                    };
                    lanes.run_lens.push_back(len);
                    log.release(*first);
                    *first += 1;
                }
                *count -= take as u32;
                if *count == 0 {
                    lanes.data.pop_front();
                }
                add_to_run(&mut lanes.in_flight, take);
                lanes.queued -= take;
                self.data_in_flight += take;
                moved += take;
                continue;
            } else if let Some(out) = lanes.pop_message(logs) {
                lanes.queued -= 1;
                self.data_in_flight += 1;
                let (msg, wire) = match out {
                    Outgoing::Inline(inline) => (inline.to_prepared(), Wire::Plain),
                    Outgoing::Shared { msg, wire } => (msg, wire),
                };
                let frame = match wire {
                    Wire::Deflated(frame) => frame,
                    Wire::DeflateOnTransmit => {
                        let frame = deflate(&msg);
                        // The lane now holds the compressed size.
                        self.data_bytes = self.data_bytes - msg.wire_len() + frame.len();
                        frame
                    }
                    Wire::Plain if keep_messages => msg.frame().clone(),
                    Wire::Plain => {
                        lanes.extend_run(msg.wire_len());
                        batch.push(msg.into_frame());
                        moved += 1;
                        continue;
                    }
                };
                if !keep_messages {
                    lanes.extend_run(frame.len());
                    batch.push(frame);
                    moved += 1;
                    continue;
                }
                let flight = Flight::Kept {
                    wire_len: frame.len(),
                    msg,
                };
                (frame, flight)
            } else if lanes.close.as_ref().is_some_and(Bytes::is_empty) {
                if lanes.in_flight.is_empty() {
                    lanes.close = None;
                    self.closed_without_bytes = true;
                }
                break;
            } else if let Some(c) = lanes.close.take() {
                let len = c.len();
                (c, Flight::Close { len })
            } else {
                break;
            };
            lanes.in_flight.push_back(flight);
            batch.push(bytes);
            moved += 1;
        }
        moved
    }

    /// Whether an empty close was reached (once: the flag is cleared).
    pub(crate) fn take_closed_without_bytes(&mut self) -> bool {
        std::mem::take(&mut self.closed_without_bytes)
    }

    /// Accounts `n` bytes the transport took from the front of `batch`, reporting each
    /// item it finished. Bytes beyond what was handed out are ignored.
    pub(crate) fn transmitted(
        &mut self,
        batch: &mut Batch,
        n: usize,
        mut done: impl FnMut(Completed),
    ) {
        let taken = batch.consume(n);
        let Some(lanes) = self.lanes.as_deref_mut() else {
            return;
        };
        lanes.front_written += taken;
        while let Some(front) = lanes.in_flight.front_mut() {
            if let Flight::Run { count } = front {
                // Every message of the run written in full counts as sent.
                let (mut sent, mut sent_bytes) = (0, 0);
                while sent < *count {
                    let Some(&len) = lanes.run_lens.front() else {
                        break;
                    };
                    if lanes.front_written < len {
                        break;
                    }
                    lanes.front_written -= len;
                    sent_bytes += len;
                    sent += 1;
                    lanes.run_lens.pop_front();
                }
                *count -= sent;
                let run_done = *count == 0;
                if sent > 0 {
                    self.data_in_flight = self.data_in_flight.saturating_sub(sent);
                    self.data_bytes = self.data_bytes.saturating_sub(sent_bytes);
                    done(Completed::Data {
                        count: sent,
                        msg: None,
                    });
                }
                if !run_done {
                    return;
                }
                lanes.in_flight.pop_front();
                continue;
            }
            let len = front.len();
            if lanes.front_written < len {
                return;
            }
            lanes.front_written -= len;
            match lanes.in_flight.pop_front() {
                Some(Flight::Control { .. } | Flight::Run { .. }) | None => {}
                Some(Flight::Kept { wire_len, msg }) => {
                    self.data_in_flight = self.data_in_flight.saturating_sub(1);
                    self.data_bytes = self.data_bytes.saturating_sub(wire_len);
                    done(Completed::Data {
                        count: 1,
                        msg: Some(msg),
                    });
                }
                Some(Flight::Close { .. }) => done(Completed::Close),
            }
        }
    }

    /// Frees the memory of empty lanes (an idle session keeps none): all of them when
    /// nothing is queued or in flight.
    pub(crate) fn trim(&mut self) {
        let Some(lanes) = self.lanes.as_deref_mut() else {
            return;
        };
        if lanes.in_flight.is_empty() && !lanes.has_unsent() {
            self.lanes = None;
            return;
        }
        if lanes.control.is_empty() {
            lanes.control = VecDeque::new();
        }
        if lanes.pongs.is_empty() {
            lanes.pongs = VecDeque::new();
        }
        if lanes.data.is_empty() {
            lanes.data = VecDeque::new();
        }
        if lanes.in_flight.is_empty() {
            lanes.in_flight = VecDeque::new();
            lanes.run_lens = VecDeque::new();
        }
    }

    /// Entries of the data lane (for tests: a run of logged frames is one).
    #[cfg(test)]
    pub(crate) fn data_entries(&self) -> usize {
        self.lanes.as_ref().map_or(0, |l| l.data.len())
    }

    /// Whether the lanes are allocated (for tests of what an idle session holds).
    #[cfg(test)]
    pub(crate) fn holds_lanes(&self) -> bool {
        self.lanes.is_some()
    }

    /// Empties everything; returns how many data messages were never fully written.
    pub(crate) fn clear(&mut self, logs: &mut FrameLogs) -> usize {
        let lost = self.data_len();
        self.discard_queued_data(logs);
        *self = Outbox {
            sealed: true,
            ..Outbox::default()
        };
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(messages: usize, policy: DropPolicy) -> Bounds {
        Bounds {
            messages,
            bytes: None,
            policy,
        }
    }

    fn frames(out: &Batch) -> Vec<Vec<u8>> {
        out.iter().map(|b| b.to_vec()).collect()
    }

    #[test]
    fn drop_newest_refuses_when_full_counting_in_flight() {
        let mut o = Outbox::default();
        let b = bounds(2, DropPolicy::DropNewest);
        assert_eq!(
            o.push_data(Prepared::text("a"), b),
            Admit::Queued { evicted: 0 }
        );
        let mut out = Batch::new();
        o.transmit(&mut out, false);
        assert_eq!(
            o.push_data(Prepared::text("b"), b),
            Admit::Queued { evicted: 0 }
        );
        assert_eq!(
            o.push_data(Prepared::text("c"), b),
            Admit::Dropped,
            "a in flight + b queued"
        );
    }

    #[test]
    fn drop_oldest_never_evicts_in_flight() {
        let mut o = Outbox::default();
        let b = bounds(2, DropPolicy::DropOldest);
        let _ = o.push_data(Prepared::text("a"), b);
        let mut out = Batch::new();
        o.transmit(&mut out, false);
        let _ = o.push_data(Prepared::text("b"), b);
        assert_eq!(
            o.push_data(Prepared::text("c"), b),
            Admit::Queued { evicted: 1 }
        );
        out.clear();
        o.transmit(&mut out, false);
        assert_eq!(frames(&out), vec![Prepared::text("c").frame().to_vec()]);
        let mut o = Outbox::default();
        let b1 = bounds(1, DropPolicy::DropOldest);
        let _ = o.push_data(Prepared::text("a"), b1);
        o.transmit(&mut out, false);
        assert_eq!(o.push_data(Prepared::text("b"), b1), Admit::Dropped);
    }

    #[test]
    fn a_message_larger_than_the_byte_bound_is_dropped_under_every_policy() {
        for policy in [
            DropPolicy::DropNewest,
            DropPolicy::DropOldest,
            DropPolicy::Disconnect,
        ] {
            let mut o = Outbox::default();
            let b = Bounds {
                messages: 100,
                bytes: Some(10),
                policy,
            };
            // 2 header bytes + 9 payload bytes = 11 > 10, even with an empty lane.
            assert_eq!(o.push_data(Prepared::text("123456789"), b), Admit::Dropped);
            assert_eq!(
                o.push_data(Prepared::text("1234"), b),
                Admit::Queued { evicted: 0 }
            );
        }
    }

    #[test]
    fn the_budget_refuses_at_its_exact_byte_and_eviction_frees_it() {
        let lane = Bounds {
            messages: 100,
            bytes: None,
            policy: DropPolicy::DropNewest,
        };
        let mut o = Outbox::default();
        // "12345" is 7 wire bytes.
        assert_eq!(
            o.push_data_within(Prepared::text("12345"), lane, 6, &mut FrameLogs::default()),
            Admit::OverBudget
        );
        assert_eq!(
            o.push_data_within(Prepared::text("12345"), lane, 7, &mut FrameLogs::default()),
            Admit::Queued { evicted: 0 }
        );
        // DropOldest with a full lane: evicting the old message frees its 7 bytes.
        let oldest = Bounds {
            messages: 1,
            policy: DropPolicy::DropOldest,
            ..lane
        };
        assert_eq!(
            o.push_data_within(
                Prepared::text("abcde"),
                oldest,
                0,
                &mut FrameLogs::default()
            ),
            Admit::Queued { evicted: 1 }
        );
        assert_eq!(
            o.push_data_within(
                Prepared::text("abcdef"),
                oldest,
                0,
                &mut FrameLogs::default()
            ),
            Admit::Dropped,
            "8 bytes do not fit in the 7 an eviction frees"
        );
        assert_eq!(o.data_bytes(), 7);
    }

    #[test]
    fn byte_bound_applies() {
        let mut o = Outbox::default();
        let b = Bounds {
            messages: 100,
            bytes: Some(10),
            policy: DropPolicy::DropNewest,
        };
        assert_eq!(
            o.push_data(Prepared::text("12345"), b),
            Admit::Queued { evicted: 0 }
        );
        assert_eq!(
            o.push_data(Prepared::text("12345"), b),
            Admit::Dropped,
            "7 + 7 > 10"
        );
    }

    #[test]
    fn control_goes_first_close_last_and_partial_writes_resume() {
        let mut o = Outbox::default();
        let b = bounds(8, DropPolicy::DropNewest);
        let _ = o.push_data(Prepared::text("data"), b);
        assert!(o.seal_with_close(Bytes::from_static(b"CLOSE")));
        o.push_control(Bytes::from_static(b"PING"));
        for i in 0..20 {
            o.push_pong(Bytes::from(format!("PONG{i:02}")));
        }
        assert_eq!(o.push_data(Prepared::text("late"), b), Admit::Closed);
        let mut out = Batch::new();
        assert_eq!(o.transmit(&mut out, false), 1 + MAX_PENDING_PONGS + 2);
        let mut expected = b"PING".to_vec();
        // The 4 oldest of 20 pongs were dropped.
        for i in 4..20 {
            expected.extend_from_slice(format!("PONG{i:02}").as_bytes());
        }
        expected.extend_from_slice(Prepared::text("data").frame());
        expected.extend_from_slice(b"CLOSE");
        assert_eq!(frames(&out).concat(), expected);
        let mut done = Vec::new();
        o.transmitted(&mut out, 4 + 6 * MAX_PENDING_PONGS + 3, |c| done.push(c));
        assert!(done.is_empty(), "data frame only partly written");
        assert_eq!(
            frames(&out).concat(),
            b"ataCLOSE".to_vec(),
            "the batch keeps the unwritten rest of the data frame"
        );
        o.transmitted(&mut out, 3 + 5, |c| done.push(c));
        assert!(matches!(
            done[..],
            [Completed::Data { count: 1, .. }, Completed::Close]
        ));
        assert!(o.is_empty());
    }

    #[test]
    fn a_run_counts_each_message_once_it_is_written_in_full() {
        let mut o = Outbox::default();
        let b = bounds(8, DropPolicy::DropNewest);
        for text in ["12345", "1", "12345"] {
            let _ = o.push_data(Prepared::text(text), b);
        }
        let mut out = Batch::new();
        assert_eq!(o.transmit(&mut out, false), 3);
        assert_eq!(
            o.lanes.as_ref().map(|l| l.in_flight.len()),
            Some(1),
            "one entry for the run"
        );
        let sent = |o: &mut Outbox, out: &mut Batch, n| {
            let mut counts = Vec::new();
            o.transmitted(out, n, |c| {
                if let Completed::Data { count, .. } = c {
                    counts.push(count);
                }
            });
            counts
        };
        // 7 + 3 + 7 wire bytes.
        assert_eq!(sent(&mut o, &mut out, 6), Vec::<usize>::new());
        assert_eq!(o.data_len(), 3);
        assert_eq!(
            sent(&mut o, &mut out, 5),
            vec![2],
            "the first two, in one report"
        );
        assert_eq!((o.data_len(), o.data_bytes()), (1, 7));
        assert_eq!(sent(&mut o, &mut out, 6), vec![1]);
        assert!(o.is_empty() && out.is_empty());
    }

    #[test]
    fn a_small_frame_is_queued_as_a_copy_no_larger_than_a_shared_entry() {
        assert!(std::mem::size_of::<Outgoing>() <= 80);
        assert_eq!(
            std::mem::size_of::<Queued>(),
            std::mem::size_of::<Outgoing>()
        );
        let small = Prepared::text("x".repeat(INLINE_AT_MOST - 2));
        assert!(matches!(Offer::plain(&small, false), Offer::Copy(_)));
        assert!(matches!(Offer::plain(&small, true), Offer::Entry(_)));
        let large = Prepared::text("x".repeat(INLINE_AT_MOST - 1));
        assert!(matches!(Offer::plain(&large, false), Offer::Copy(_)));
        let mut o = Outbox::default();
        let b = bounds(8, DropPolicy::DropNewest);
        let _ = o.push_data(Offer::plain(&small, false), b);
        let _ = o.push_data(Offer::plain(&large, false), b);
        assert_eq!(o.data_bytes(), small.wire_len() + large.wire_len());
        let mut out = Batch::new();
        o.transmit(&mut out, false);
        let mut expected = small.frame().to_vec();
        expected.extend_from_slice(large.frame());
        assert_eq!(frames(&out).concat(), expected);
    }

    #[test]
    fn a_copied_frame_still_reports_its_message_when_sent_events_come_on() {
        let small = Prepared::text("hi");
        let mut o = Outbox::default();
        let _ = o.push_data(
            Offer::plain(&small, false),
            bounds(8, DropPolicy::DropNewest),
        );
        let mut out = Batch::new();
        o.transmit(&mut out, true);
        let mut done = Vec::new();
        o.transmitted(&mut out, small.wire_len(), |c| done.push(c));
        assert!(
            matches!(&done[..], [Completed::Data { count: 1, msg: Some(m) }] if *m == small),
            "{done:?}"
        );
    }

    #[test]
    fn an_empty_outbox_gives_its_lanes_back_at_trim_and_a_busy_one_keeps_them() {
        let mut o = Outbox::default();
        assert!(!o.holds_lanes());
        let _ = o.push_data(Prepared::text("a"), bounds(8, DropPolicy::DropNewest));
        let mut out = Batch::new();
        o.transmit(&mut out, false);
        o.trim();
        assert!(o.holds_lanes(), "a message in flight");
        o.transmitted(&mut out, 3, |_| {});
        assert!(o.is_empty());
        o.trim();
        assert!(!o.holds_lanes());
        assert!(!o.has_queued_control() && !o.has_in_flight() && o.data_len() == 0);
    }
}

#[cfg(test)]
#[path = "outbox_log_tests.rs"]
mod log_tests;
