//! Before a resume through the request hook: wait (bounded) for the backplane to read
//! a history topic's shared log into this instance's copy, so that a client resuming
//! on an instance that never listened to the topic recovers as on one that did.
//!
//! Nothing is locked while waiting; the resume itself then runs under the history
//! lock as always, so what the backplane delivers meanwhile lands in the copy either
//! before the resume (replayed) or after it (live): no duplicate, no gap.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use melody_core::http::HeaderMap;

use crate::runtime::Runtime;
use crate::shared::Shared;

/// Whether an admitted session resumes its history topics from a position: the
/// verdict said where, or an event stream sent `Last-Event-ID`.
pub(crate) fn resumes(resume_from: Option<&str>, event_stream: bool, headers: &HeaderMap) -> bool {
    resume_from.is_some() || (event_stream && headers.contains_key(crate::history::LAST_EVENT_ID))
}

/// Waits until the backplane read the shared log of every history topic in `topics`
/// not read back yet, one read-back failed, or `deadline` passed. Returns at once
/// without a backplane that keeps history. `true` if every such topic's copy holds
/// its log.
pub(crate) async fn await_read_back<R: Runtime>(
    shared: Arc<Shared<R>>,
    topics: Vec<String>,
    deadline: Instant,
) -> bool {
    let Some(attached) = shared.backplane.get().filter(|a| a.keeps_history) else {
        return true;
    };
    let mut pending: Vec<(String, u64)> = topics
        .into_iter()
        .filter(|topic| shared.history.keeps(topic))
        .filter_map(|topic| {
            let since = attached.state.request_read_back(&topic)?;
            Some((topic, since))
        })
        .collect();
    if pending.is_empty() {
        return true;
    }
    let mut all_read = true;
    let mut timeout = shared.rt.sleep_until(deadline);
    poll_fn(|cx| {
        pending.retain(|(topic, since)| {
            match attached.state.poll_read_back(topic, *since, cx.waker()) {
                Poll::Ready(read) => {
                    all_read &= read;
                    false
                }
                Poll::Pending => true,
            }
        });
        if pending.is_empty() {
            return Poll::Ready(all_read);
        }
        timeout.as_mut().poll(cx).map(|()| false)
    })
    .await
}
