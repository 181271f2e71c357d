//! Small futures: wait for the instance to close, or for its last connection to end.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::runtime::BoxFuture;
use crate::shared::Shared;
use crate::Runtime;

/// Resolves once `close` or `shutdown` has been called on the instance.
pub struct Closed<R: Runtime> {
    pub(crate) shared: Arc<Shared<R>>,
}

impl<R: Runtime> Future for Closed<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.shared.waiters.register(cx.waker());
        if self.shared.is_closed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Resolves when no connection task is left, or when `deadline` fires: `true` if idle.
pub(crate) struct IdleOrDeadline<R: Runtime> {
    pub(crate) shared: Arc<Shared<R>>,
    pub(crate) deadline: BoxFuture,
}

impl<R: Runtime> Future for IdleOrDeadline<R> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        self.shared.waiters.register(cx.waker());
        if self.shared.connections.load(Ordering::Acquire) == 0 {
            return Poll::Ready(true);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.shared.connections.load(Ordering::Acquire) == 0),
            Poll::Pending => Poll::Pending,
        }
    }
}
