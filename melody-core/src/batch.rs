//! The bytes a driver is writing for one session: filled by `Hub::poll_transmit`,
//! consumed by `Hub::handle_transmitted`. The driver only reads it; how far the
//! transport got is kept here, once, as the unwritten rest of the first buffer.

use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Buffers handed to a driver to write, in order: frames of one session, shared by
/// reference count with every other recipient of a broadcast.
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

    pub(crate) fn push(&mut self, buf: Bytes) {
        if self.is_empty() {
            self.bufs.clear();
            self.head = 0;
        }
        self.bufs.push(buf);
    }

    /// The unwritten length of the first waiting buffer.
    pub(crate) fn front_len(&self) -> Option<usize> {
        self.bufs.get(self.head).map(Bytes::len)
    }

    /// Takes `n` bytes off the first waiting buffer; `n` is at most its length.
    pub(crate) fn advance_front(&mut self, n: usize) {
        if let Some(front) = self.bufs.get_mut(self.head) {
            front.advance(n.min(front.len()));
        }
    }

    /// The first waiting buffer is fully written.
    pub(crate) fn pop_front(&mut self) {
        if self.head < self.bufs.len() {
            // Release the reference now: the last recipient frees the frame.
            self.bufs[self.head] = Bytes::new();
            self.head += 1;
        }
        if self.is_empty() {
            self.bufs.clear();
            self.head = 0;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.bufs.clear();
        self.head = 0;
    }
}
