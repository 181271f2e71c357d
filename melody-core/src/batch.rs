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
const COPY_AT_MOST: usize = 1024;

/// Most bytes copied into one buffer.
const COPIED_AT_MOST: usize = 64 * 1024;

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
    bufs: Vec<Bytes>,
    /// Buffers before this index are written; the rest wait.
    head: usize,
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
        self.pending().iter().map(Bytes::len).sum()
    }

    /// The waiting buffers, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.pending().iter().map(|b| &b[..])
    }

    /// Fills `slices` with the waiting buffers, in order, for one vectored write;
    /// returns how many it filled (at most `slices.len()`).
    pub fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        for (slot, buf) in slices.iter_mut().zip(self.pending()) {
            *slot = IoSlice::new(buf);
            count += 1;
        }
        count
    }

    fn pending(&self) -> &[Bytes] {
        &self.bufs[self.head..]
    }

    /// Starts appending frames; the fill ends when it is dropped.
    pub(crate) fn fill(&mut self) -> Fill<'_> {
        if self.is_empty() {
            self.bufs.clear();
            self.head = 0;
        }
        Fill {
            batch: self,
            copied: Vec::new(),
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
            if n < front.len() {
                front.advance(n);
                taken += n;
                break;
            }
            n -= front.len();
            taken += front.len();
            // Release the reference now: the last recipient frees the frame.
            self.bufs[self.head] = Bytes::new();
            self.head += 1;
        }
        if self.is_empty() {
            self.bufs.clear();
            self.head = 0;
        }
        taken
    }

    pub(crate) fn clear(&mut self) {
        self.bufs.clear();
        self.head = 0;
    }
}

/// Frames being appended to a [`Batch`]: small ones are copied together, the copy
/// becoming one buffer when a large frame comes, at the copy's bound, or at the end.
pub(crate) struct Fill<'a> {
    batch: &'a mut Batch,
    /// Small frames copied together, not in the batch yet.
    copied: Vec<u8>,
    /// The batch's last buffer is a small frame not copied: a lone one goes by
    /// reference.
    loose: bool,
}

impl Fill<'_> {
    /// Appends a frame: by reference if large or alone, else copied.
    pub(crate) fn push(&mut self, frame: Bytes) {
        if frame.len() > COPY_AT_MOST {
            self.seal();
            self.batch.bufs.push(frame);
        } else if !self.loose && self.copied.is_empty() {
            self.loose = true;
            self.batch.bufs.push(frame);
        } else {
            self.push_copy(&frame);
        }
    }

    /// Appends a frame by copying it.
    pub(crate) fn push_copy(&mut self, frame: &[u8]) {
        if self.copied.len() + frame.len() > COPIED_AT_MOST {
            self.seal();
        }
        if self.copied.is_empty() {
            self.copied.reserve(COPY_AT_MOST * 4);
        }
        if self.loose {
            self.loose = false;
            if let Some(first) = self.batch.bufs.pop() {
                self.copied.extend_from_slice(&first);
            }
        }
        self.copied.extend_from_slice(frame);
    }

    /// What was copied together becomes one buffer: a new one per fill, freed once
    /// written, so a busy session keeps no spare capacity between writes.
    fn seal(&mut self) {
        self.loose = false;
        if !self.copied.is_empty() {
            let copied = std::mem::take(&mut self.copied);
            self.batch.bufs.push(Bytes::from(copied));
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
        let mut fill = batch.fill();
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
        let first = batch.pending()[0].clone();
        assert_eq!(first.as_ptr(), lone.as_ptr(), "not copied");
    }

    #[test]
    fn a_large_frame_goes_by_reference_between_copied_runs() {
        let large = frame(9, COPY_AT_MOST + 1);
        let frames = [frame(1, 5), frame(2, 5), large.clone(), frame(3, 5)];
        let batch = filled(&frames);
        let lens: Vec<usize> = batch.iter().map(<[u8]>::len).collect();
        assert_eq!(lens, vec![10, COPY_AT_MOST + 1, 5]);
        assert_eq!(batch.pending()[1].as_ptr(), large.as_ptr());
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
