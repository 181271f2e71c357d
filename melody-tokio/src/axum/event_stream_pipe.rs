//! The pipe between an event-stream session and the HTTP response body that carries
//! it: the session writes into one end (a driver [`Transport`]), hyper pulls chunks
//! out of the other (a [`hyper::body::Body`]).
//!
//! The pipe holds at most [`PIPE_CAPACITY`] bytes. When it is full, writes wait: the
//! session's outbox then fills and its bound, drop policy and write watchdog
//! (`Config::write_wait`) apply to a slow client, as on a socket. Hyper drops the body
//! when the client is gone; the transport's read then ends (`Ok(0)`), which ends the
//! session.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use hyper::body::{Body, Frame};
use melody_core::Bytes;
use melody_driver::Transport;

/// Bytes written but not yet taken by hyper, at most. Hyper buffers what it takes
/// until the socket accepts it, so this only needs to keep the body fed.
const PIPE_CAPACITY: usize = 16 * 1024;

/// A new pipe: the session's end and the body's end.
pub(crate) fn event_stream_pipe() -> (PipeTransport, PipeBody) {
    let shared = Arc::new(Mutex::new(Pipe::default()));
    (
        PipeTransport {
            pipe: shared.clone(),
        },
        PipeBody { pipe: shared },
    )
}

#[derive(Default)]
struct Pipe {
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    buffered: usize,
    /// The session closed its end: the body ends once `chunks` is empty.
    ended: bool,
    /// Hyper dropped the body: the client is gone.
    body_gone: bool,
    /// The session's task, waiting for room or for the client to leave.
    session_waker: Option<Waker>,
    /// Hyper, waiting for a chunk.
    body_waker: Option<Waker>,
}

/// Locks the pipe. Nothing panics while holding the lock, but a poisoned pipe is still
/// consistent (every update is a single step), so poison is ignored rather than
/// turned into a panic on a path peer input reaches.
fn lock(pipe: &Mutex<Pipe>) -> MutexGuard<'_, Pipe> {
    pipe.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// The session's end: writes become body chunks; reads wait for the client to leave.
pub(crate) struct PipeTransport {
    pipe: Arc<Mutex<Pipe>>,
}

impl Transport for PipeTransport {
    fn poll_read(&mut self, cx: &mut Context<'_>, _buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.pipe);
        if pipe.body_gone {
            return Poll::Ready(Ok(0));
        }
        pipe.session_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut pipe = lock(&self.pipe);
        if pipe.body_gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let wanted: usize = bufs.iter().map(|b| b.len()).sum();
        if wanted == 0 {
            return Poll::Ready(Ok(0));
        }
        let room = PIPE_CAPACITY.saturating_sub(pipe.buffered);
        if room == 0 {
            pipe.session_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        // The slices borrow the session's batch: one copy into a chunk of our own.
        let taken = wanted.min(room);
        let mut chunk = Vec::with_capacity(taken);
        for buf in bufs {
            let rest = taken - chunk.len();
            if rest == 0 {
                break;
            }
            chunk.extend_from_slice(&buf[..buf.len().min(rest)]);
        }
        pipe.buffered += taken;
        pipe.chunks.push_back(Bytes::from(chunk));
        let body_waker = pipe.body_waker.take();
        drop(pipe);
        wake(body_waker);
        Poll::Ready(Ok(taken))
    }

    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        end(&self.pipe);
        Poll::Ready(Ok(()))
    }
}

impl Drop for PipeTransport {
    fn drop(&mut self) {
        // A session task dropped without closing (runtime shutdown) still ends the body.
        end(&self.pipe);
    }
}

fn end(pipe: &Mutex<Pipe>) {
    let mut pipe = lock(pipe);
    pipe.ended = true;
    let body_waker = pipe.body_waker.take();
    drop(pipe);
    wake(body_waker);
}

/// The body's end: the response body of the event stream.
pub(crate) struct PipeBody {
    pipe: Arc<Mutex<Pipe>>,
}

impl Body for PipeBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let mut pipe = lock(&self.pipe);
        if let Some(chunk) = pipe.chunks.pop_front() {
            pipe.buffered -= chunk.len();
            let session_waker = pipe.session_waker.take();
            drop(pipe);
            wake(session_waker);
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if pipe.ended {
            return Poll::Ready(None);
        }
        pipe.body_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let pipe = lock(&self.pipe);
        pipe.ended && pipe.chunks.is_empty()
    }
}

impl Drop for PipeBody {
    fn drop(&mut self) {
        let mut pipe = lock(&self.pipe);
        pipe.body_gone = true;
        pipe.chunks.clear();
        pipe.buffered = 0;
        let session_waker = pipe.session_waker.take();
        drop(pipe);
        wake(session_waker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    fn next_chunk(body: &mut PipeBody) -> Poll<Option<Bytes>> {
        Pin::new(body)
            .poll_frame(&mut cx())
            .map(|frame| frame.and_then(|f| f.ok()).and_then(|f| f.into_data().ok()))
    }

    #[test]
    fn writes_come_out_of_the_body_in_order() {
        let (mut transport, mut body) = event_stream_pipe();
        let written = transport.poll_write_vectored(
            &mut cx(),
            &[IoSlice::new(b"data: a\n\n"), IoSlice::new(b"data: b\n\n")],
        );
        assert!(matches!(written, Poll::Ready(Ok(18))));
        assert_eq!(
            next_chunk(&mut body),
            Poll::Ready(Some(Bytes::from_static(b"data: a\n\ndata: b\n\n")))
        );
        assert_eq!(next_chunk(&mut body), Poll::Pending);
    }

    #[test]
    fn a_full_pipe_makes_writes_wait_until_the_body_takes_a_chunk() {
        let (mut transport, mut body) = event_stream_pipe();
        let big = vec![b'x'; PIPE_CAPACITY + 10];
        let first = transport.poll_write_vectored(&mut cx(), &[IoSlice::new(&big)]);
        assert!(matches!(first, Poll::Ready(Ok(n)) if n == PIPE_CAPACITY));
        let second = transport.poll_write_vectored(&mut cx(), &[IoSlice::new(&big[..10])]);
        assert!(second.is_pending());
        assert!(matches!(next_chunk(&mut body), Poll::Ready(Some(_))));
        let third = transport.poll_write_vectored(&mut cx(), &[IoSlice::new(&big[..10])]);
        assert!(matches!(third, Poll::Ready(Ok(10))));
    }

    #[test]
    fn reads_wait_until_the_body_is_dropped_then_end() {
        let (mut transport, body) = event_stream_pipe();
        let mut buf = [0u8; 8];
        assert!(transport.poll_read(&mut cx(), &mut buf).is_pending());
        drop(body);
        assert!(matches!(
            transport.poll_read(&mut cx(), &mut buf),
            Poll::Ready(Ok(0))
        ));
        let write = transport.poll_write_vectored(&mut cx(), &[IoSlice::new(b"x")]);
        assert!(matches!(write, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe));
    }

    #[test]
    fn closing_ends_the_body_after_what_was_written() {
        let (mut transport, mut body) = event_stream_pipe();
        let _ = transport.poll_write_vectored(&mut cx(), &[IoSlice::new(b": bye\n\n")]);
        assert!(transport.poll_close(&mut cx()).is_ready());
        assert!(!body.is_end_stream());
        assert!(matches!(next_chunk(&mut body), Poll::Ready(Some(_))));
        assert!(body.is_end_stream());
        assert_eq!(next_chunk(&mut body), Poll::Ready(None));
    }
}
