//! The user's handlers, shared by every session of a `Melody`.

use std::sync::Arc;

use crate::error::Error;
use crate::request::RequestHook;
use crate::runtime::Runtime;
use crate::session::Session;

type Handler<R> = Option<Arc<dyn Fn(&Session<R>) + Send + Sync>>;
type TextHandler<R> = Option<Arc<dyn Fn(&Session<R>, &str) + Send + Sync>>;
type BinaryHandler<R> = Option<Arc<dyn Fn(&Session<R>, &[u8]) + Send + Sync>>;
type ErrorHandler<R> = Option<Arc<dyn Fn(&Session<R>, &Error) + Send + Sync>>;
type CloseHandler<R> = Option<Arc<dyn Fn(&Session<R>, u16, &str) + Send + Sync>>;
type CountHandler<R> = Option<Arc<dyn Fn(&Session<R>, u64) + Send + Sync>>;

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
}
