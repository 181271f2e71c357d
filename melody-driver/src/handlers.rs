//! The user's handlers, shared by every session of a `Melody`.

use std::sync::Arc;

use melody_core::{Bytes, Event};

use crate::async_handling::{AsyncHandling, Counters, Overflow};
use crate::error::Error;
use crate::request::RequestHook;
use crate::runtime::{BoxFuture, Runtime};
use crate::session::Session;

type Handler<R> = Option<Arc<dyn Fn(&Session<R>) + Send + Sync>>;
type TextHandler<R> = Option<Arc<dyn Fn(&Session<R>, &str) + Send + Sync>>;
type BinaryHandler<R> = Option<Arc<dyn Fn(&Session<R>, &[u8]) + Send + Sync>>;
type ErrorHandler<R> = Option<Arc<dyn Fn(&Session<R>, &Error) + Send + Sync>>;
type CloseHandler<R> = Option<Arc<dyn Fn(&Session<R>, u16, &str) + Send + Sync>>;
type CountHandler<R> = Option<Arc<dyn Fn(&Session<R>, u64) + Send + Sync>>;
type AsyncTextHandler<R> = Option<Arc<dyn Fn(Session<R>, String) -> BoxFuture + Send + Sync>>;
type AsyncBinaryHandler<R> = Option<Arc<dyn Fn(Session<R>, Bytes) -> BoxFuture + Send + Sync>>;
type GapHandler<R> =
    Option<Arc<dyn Fn(&Session<R>, &str, melody_core::history::GapReason) + Send + Sync>>;
type OverflowHandler<R> = Option<Arc<dyn Fn(&Session<R>, Overflow) + Send + Sync>>;

/// Every handler a `Melody` may call; unset ones cost nothing.
pub(crate) struct Handlers<R: Runtime> {
    pub(crate) connect: Handler<R>,
    pub(crate) disconnect: Handler<R>,
    pub(crate) message: TextHandler<R>,
    pub(crate) message_binary: BinaryHandler<R>,
    pub(crate) pong: Handler<R>,
    pub(crate) error: ErrorHandler<R>,
    pub(crate) dropped: CountHandler<R>,
    pub(crate) close: CloseHandler<R>,
    pub(crate) sent: TextHandler<R>,
    pub(crate) sent_binary: BinaryHandler<R>,
    /// The request hook: while set, every request waits for its verdict.
    pub(crate) request: Option<RequestHook>,
    /// Async message handlers (see `in_flight.rs`), run after the sync ones.
    pub(crate) message_async: AsyncTextHandler<R>,
    pub(crate) message_binary_async: AsyncBinaryHandler<R>,
    pub(crate) overflow: OverflowHandler<R>,
    /// A resume from a history position found a gap (see `history.rs`).
    pub(crate) history_gap: GapHandler<R>,
    pub(crate) async_handling: AsyncHandling,
    /// Shared by every version of the handlers, so updates keep the counts.
    pub(crate) async_counters: Arc<Counters>,
}

impl<R: Runtime> Default for Handlers<R> {
    fn default() -> Self {
        Handlers {
            connect: None,
            disconnect: None,
            message: None,
            message_binary: None,
            pong: None,
            error: None,
            dropped: None,
            close: None,
            sent: None,
            sent_binary: None,
            request: None,
            message_async: None,
            message_binary_async: None,
            overflow: None,
            history_gap: None,
            async_handling: AsyncHandling::default(),
            async_counters: Arc::default(),
        }
    }
}

impl<R: Runtime> Clone for Handlers<R> {
    fn clone(&self) -> Self {
        Handlers {
            connect: self.connect.clone(),
            disconnect: self.disconnect.clone(),
            message: self.message.clone(),
            message_binary: self.message_binary.clone(),
            pong: self.pong.clone(),
            error: self.error.clone(),
            dropped: self.dropped.clone(),
            close: self.close.clone(),
            sent: self.sent.clone(),
            sent_binary: self.sent_binary.clone(),
            request: self.request.clone(),
            message_async: self.message_async.clone(),
            message_binary_async: self.message_binary_async.clone(),
            overflow: self.overflow.clone(),
            history_gap: self.history_gap.clone(),
            async_handling: self.async_handling,
            async_counters: self.async_counters.clone(),
        }
    }
}

impl<R: Runtime> Handlers<R> {
    pub(crate) fn wants_sent(&self) -> bool {
        self.sent.is_some() || self.sent_binary.is_some()
    }

    pub(crate) fn wants_verdicts(&self) -> bool {
        self.request.is_some()
    }

    /// Whether an async message handler is registered.
    pub(crate) fn has_async(&self) -> bool {
        self.message_async.is_some() || self.message_binary_async.is_some()
    }

    /// Whether `event` is a message an async handler is registered for.
    pub(crate) fn wants_async(&self, event: &Event) -> bool {
        match event {
            Event::Text(_) => self.message_async.is_some(),
            Event::Binary(_) => self.message_binary_async.is_some(),
            _ => false,
        }
    }

    pub(crate) fn async_counters(&self) -> &Arc<Counters> {
        &self.async_counters
    }
}
