//! Waiting, runtime-agnostically, for a pause to end while the instance may close.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use melody_driver::{BackplaneLink, Outgoing, Runtime};

use crate::node::Node;
use crate::publisher;

/// Pauses for `pause` while no Redis connection is up: outgoing messages handed over
/// meanwhile are taken and counted failed, so none is sent late (a history topic's is
/// delivered here without a position). `false` when the instance closed.
pub(crate) async fn pause_discarding<R: Runtime>(
    link: &BackplaneLink<R>,
    pause: Duration,
    node: &Node,
    batch: &mut Vec<Outgoing>,
) -> bool {
    let rt = link.runtime();
    let mut sleep = rt.sleep_until(rt.now() + pause);
    poll_fn(|cx| {
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        match link.poll_outgoing(cx, batch, usize::MAX) {
            Poll::Ready(true) => {
                for outgoing in batch.drain(..) {
                    publisher::failed(node, link, &outgoing);
                }
                // Look again on the next poll rather than loop here while others publish.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(false) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Pauses for `pause`; `false` when the instance closed. New topics reported meanwhile
/// need no action: they are in the link's known topics, subscribed on reconnection.
pub(crate) async fn pause<R: Runtime>(link: &BackplaneLink<R>, pause: Duration) -> bool {
    let rt = link.runtime();
    let mut sleep = rt.sleep_until(rt.now() + pause);
    let mut fresh: Vec<Arc<str>> = Vec::new();
    poll_fn(|cx| {
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(true);
        }
        match link.poll_new_topics(cx, &mut fresh) {
            Poll::Ready(true) => {
                fresh.clear();
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(false) => Poll::Ready(false),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}
