//! The bytes a driver is writing for one session: filled by `Hub::poll_transmit`,
//! consumed by `Hub::handle_transmitted`. The driver only reads it; how far the
//! transport got is kept here, once, as the unwritten rest of the first buffer.
//!
//! Small frames queued together are copied into one buffer: a vectored write of one
//! buffer costs the kernel far less than one of a hundred 66-byte pieces (each piece
//! is a separate copy there), and copying them here is cheaper still. Large frames go
//! by reference, shared with every other recipient.

use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Frames up to this size are copied together; larger ones go by reference.
pub(crate) const COPY_AT_MOST: usize = 1024;

/// Most bytes copied into one buffer.
const COPIED_AT_MOST: usize = 64 * 1024;

/// A copy buffer this small is kept for the next write once everything is written (a
/// session answering message by message copies into the same memory each time); a
/// larger one is freed, so a busy session holds no spare room.
const COPY_ROOM_KEPT: usize = 1024;

/// Buffers handed to a driver to write, in order: frames of one session, small ones
/// copied together, large ones shared by reference count with every other recipient
/// of a broadcast.
///
/// Keep one per session. [`Hub::poll_transmit`](crate::Hub::poll_transmit) appends to
/// it when it is empty; write its [`io_slices`](Batch::io_slices) with one vectored
/// write and report what the transport took with
/// [`Hub::handle_transmitted`](crate::Hub::handle_transmitted), which removes the
/// written bytes (a buffer written in part keeps its unwritten rest).
///
/// ```
/// use melody_core::Batch;
///
/// let batch = Batch::new();
/// assert!(batch.is_empty());
/// let mut slices = [std::io::IoSlice::new(&[]); 8];
/// assert_eq!(batch.io_slices(&mut slices), 0);
/// ```
#[derive(Debug, Default)]
pub struct Batch {
    bufs: Vec<Piece>,
    /// Buffers before this index are written; the rest wait.
    head: usize,
    /// Where small frames are copied together: the [`Piece::Copied`] ranges point
    /// into it. Owned here, not shared: no reference count per write.
    copied: Vec<u8>,
}

/// One buffer of a batch.
#[derive(Debug)]
enum Piece {
    /// A frame by reference (its unwritten rest).
    Shared(Bytes),
    /// Frames copied together: `copied[start..end]` (its unwritten rest).
    Copied { start: usize, end: usize },
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch::default()
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.head == self.bufs.len()
    }

    /// Buffers waiting to be written (the first one possibly in part).
    pub fn len(&self) -> usize {
        self.bufs.len() - self.head
    }

    /// Bytes waiting to be written.
    pub fn unwritten_bytes(&self) -> usize {
        self.iter().map(<[u8]>::len).sum()
    }

    /// The waiting buffers, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs[self.head..]
            .iter()
            .map(|piece| self.bytes_of(piece))
    }

    /// Fills `slices` with the waiting buffers, in order, for one vectored write;
    /// returns how many it filled (at most `slices.len()`).
    pub fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        for (slot, buf) in slices.iter_mut().zip(self.iter()) {
            *slot = IoSlice::new(buf);
            count += 1;
        }
        count
    }

    fn bytes_of<'a>(&'a self, piece: &'a Piece) -> &'a [u8] {
        match piece {
            Piece::Shared(bytes) => bytes,
            Piece::Copied { start, end } => self.copied.get(*start..*end).unwrap_or_default(),
        }
    }

    /// Starts appending frames, about `room` bytes of them to copy (the copy buffer
    /// is made that size at once rather than grown frame by frame, and a lone small
    /// reply takes a small one, which the allocator keeps at hand); the fill ends
    /// when it is dropped.
    pub(crate) fn fill(&mut self, room: usize) -> Fill<'_> {
        if self.is_empty() {
            self.reset();
        }
        let run_start = self.copied.len();
        Fill {
            batch: self,
            run_start,
            room: room.min(COPIED_AT_MOST),
            loose: false,
        }
    }

    /// Takes `n` written bytes off the front (at most what waits); returns how many.
    pub(crate) fn consume(&mut self, mut n: usize) -> usize {
        let mut taken = 0;
        while n > 0 {
            let Some(front) = self.bufs.get_mut(self.head) else {
                break;
            };
            let len = match front {
                Piece::Shared(bytes) => bytes.len(),
                Piece::Copied { start, end } => *end - *start,
            };
            if n < len {
                match front {
                    Piece::Shared(bytes) => bytes.advance(n),
                    Piece::Copied { start, .. } => *start += n,
                }
                taken += n;
                break;
            }
            n -= len;
            taken += len;
            // Release the reference now: the last recipient frees the frame.
            *front = Piece::Copied { start: 0, end: 0 };
            self.head += 1;
        }
        if self.is_empty() {
            self.reset();
        }
        taken
    }

    pub(crate) fn clear(&mut self) {
        self.reset();
    }

    /// Empty again; the copy buffer is kept only if small.
    fn reset(&mut self) {
        self.bufs.clear();
        self.head = 0;
        if self.copied.capacity() > COPY_ROOM_KEPT {
            self.copied = Vec::new();
        } else {
            self.copied.clear();
        }
    }
}

/// Frames being appended to a [`Batch`]: small ones are copied together, the run of
/// copies becoming one buffer when a large frame comes, at the copy's bound, or at
/// the end.
pub(crate) struct Fill<'a> {
    batch: &'a mut Batch,
    /// Where the run of copies not in the batch yet starts, in the copy buffer.
    run_start: usize,
    /// Bytes to make room for at the first copy (none once made).
    room: usize,
    /// The batch's last buffer is a small frame not copied: a lone one goes by
    /// reference.
    loose: bool,
}

impl Fill<'_> {
    /// Appends a frame: by reference if large or alone, else copied.
    pub(crate) fn push(&mut self, frame: Bytes) {
        if frame.len() > COPY_AT_MOST {
            self.seal();
            self.batch.bufs.push(Piece::Shared(frame));
        } else if !self.loose && self.run_is_empty() {
            self.loose = true;
            self.batch.bufs.push(Piece::Shared(frame));
        } else {
            self.push_copy(&frame);
        }
    }

    /// Appends a frame held elsewhere: as [`Fill::push`] does, taking a reference only
    /// when it keeps the frame by reference.
    pub(crate) fn push_shared(&mut self, frame: &Bytes) {
        if frame.len() > COPY_AT_MOST || (!self.loose && self.run_is_empty()) {
            self.push(frame.clone());
        } else {
            self.push_copy(frame);
        }
    }

    fn run_is_empty(&self) -> bool {
        self.batch.copied.len() == self.run_start
    }

    /// Appends a frame by copying it.
    pub(crate) fn push_copy(&mut self, frame: &[u8]) {
        if self.batch.copied.len() - self.run_start + frame.len() > COPIED_AT_MOST {
            self.seal();
        }
        let room = std::mem::take(&mut self.room);
        if room > 0 {
            self.batch.copied.reserve(room.max(frame.len()));
        }
        if self.loose {
            self.loose = false;
            if let Some(Piece::Shared(first)) = self.batch.bufs.pop() {
                self.batch.copied.extend_from_slice(&first);
            }
        }
        self.batch.copied.extend_from_slice(frame);
    }

    /// The run of copies becomes one buffer of the batch.
    fn seal(&mut self) {
        self.loose = false;
        let end = self.batch.copied.len();
        if end > self.run_start {
            let start = std::mem::replace(&mut self.run_start, end);
            self.batch.bufs.push(Piece::Copied { start, end });
        }
    }
}

impl Drop for Fill<'_> {
    fn drop(&mut self) {
        self.seal();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(byte: u8, len: usize) -> Bytes {
        Bytes::from(vec![byte; len])
    }

    fn filled(frames: &[Bytes]) -> Batch {
        let mut batch = Batch::new();
        let room = frames.iter().map(Bytes::len).sum();
        let mut fill = batch.fill(room);
        for f in frames {
            fill.push(f.clone());
        }
        drop(fill);
        batch
    }

    #[test]
    fn small_frames_are_copied_into_one_buffer_and_a_lone_one_goes_by_reference() {
        let small = [frame(1, 66), frame(2, 66), frame(3, 10)];
        let batch = filled(&small);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.iter().next(), Some(&small.concat()[..]));

        let lone = frame(4, 66);
        let batch = filled(std::slice::from_ref(&lone));
        assert_eq!(
            batch.iter().next().map(<[u8]>::as_ptr),
            Some(lone.as_ptr()),
            "not copied"
        );
    }

    #[test]
    fn a_large_frame_goes_by_reference_between_copied_runs() {
        let large = frame(9, COPY_AT_MOST + 1);
        let frames = [frame(1, 5), frame(2, 5), large.clone(), frame(3, 5)];
        let batch = filled(&frames);
        let lens: Vec<usize> = batch.iter().map(<[u8]>::len).collect();
        assert_eq!(lens, vec![10, COPY_AT_MOST + 1, 5]);
        assert_eq!(
            batch.iter().nth(1).map(<[u8]>::as_ptr),
            Some(large.as_ptr())
        );
        assert_eq!(batch.iter().collect::<Vec<_>>().concat(), frames.concat());
    }

    #[test]
    fn a_copied_buffer_holds_at_most_its_bound() {
        let frames: Vec<Bytes> = (0..200).map(|i| frame(i as u8, COPY_AT_MOST)).collect();
        let batch = filled(&frames);
        assert!(batch.iter().all(|b| b.len() <= COPIED_AT_MOST));
        assert_eq!(batch.len(), 200 * COPY_AT_MOST / COPIED_AT_MOST + 1);
        assert_eq!(batch.iter().collect::<Vec<_>>().concat(), frames.concat());
    }

    #[test]
    fn a_small_copy_buffer_is_reused_once_written_and_a_large_one_freed() {
        let small = [frame(1, 66), frame(2, 66)];
        let mut batch = filled(&small);
        let first = batch.iter().next().map(<[u8]>::as_ptr);
        assert_eq!(batch.consume(usize::MAX), 132);
        let mut fill = batch.fill(132);
        fill.push_copy(&small[1]);
        fill.push_copy(&small[0]);
        drop(fill);
        assert_eq!(
            batch.iter().next().map(<[u8]>::as_ptr),
            first,
            "same memory"
        );
        assert_eq!(
            batch.iter().next(),
            Some(&[small[1].clone(), small[0].clone()].concat()[..])
        );

        let many: Vec<Bytes> = (0..40).map(|i| frame(i as u8, 100)).collect();
        let mut batch = filled(&many);
        assert!(batch.copied.capacity() > COPY_ROOM_KEPT);
        batch.consume(usize::MAX);
        assert_eq!(batch.copied.capacity(), 0, "freed once written");
    }

    #[test]
    fn the_copy_buffer_is_made_the_size_of_the_fill_at_once() {
        let many: Vec<Bytes> = (0..40).map(|i| frame(i as u8, 100)).collect();
        let batch = filled(&many);
        // Grown copy by copy from the old 4 KiB start, it would have doubled to 8 KiB.
        let capacity = batch.copied.capacity();
        assert!((4000..8000).contains(&capacity), "{capacity}: not grown");
    }

    #[test]
    fn a_copy_written_in_part_keeps_its_rest_while_more_is_appended() {
        let mut batch = filled(&[frame(1, 5), frame(2, 5)]);
        assert_eq!(batch.consume(3), 3);
        let mut fill = batch.fill(8);
        fill.push_copy(&frame(3, 4));
        fill.push_copy(&frame(4, 4));
        drop(fill);
        let pieces: Vec<Vec<u8>> = batch.iter().map(<[u8]>::to_vec).collect();
        let expected = vec![
            [vec![1; 2], vec![2; 5]].concat(),
            [vec![3; 4], vec![4; 4]].concat(),
        ];
        assert_eq!(pieces, expected);
        assert_eq!(batch.consume(usize::MAX), 15);
        assert!(batch.is_empty());
    }

    #[test]
    fn consuming_crosses_buffers_and_keeps_the_unwritten_rest() {
        let large = frame(9, COPY_AT_MOST + 1);
        let mut batch = filled(&[frame(1, 5), frame(2, 5), large, frame(3, 5)]);
        let total = batch.unwritten_bytes();
        assert_eq!(batch.consume(12), 12);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.unwritten_bytes(), total - 12);
        assert_eq!(batch.consume(usize::MAX), total - 12, "only what waits");
        assert!(batch.is_empty());
        assert_eq!(batch.consume(1), 0);
    }
}
