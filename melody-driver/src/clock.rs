//! One clock task per `Melody`: sleeps until the earliest deadline of any shard, fires
//! the due timers, and is woken early when a new deadline needs it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use crate::runtime::BoxFuture;
use crate::shared::Shared;
use crate::Runtime;

pub(crate) fn ensure_started<R: Runtime>(shared: &Arc<Shared<R>>) {
    if !shared.clock_started.swap(true, Ordering::AcqRel) {
        let clock = Clock {
            shared: Arc::downgrade(shared),
            sleep: None,
            sleeping_until: None,
        };
        shared.rt.spawn(Box::pin(clock));
    }
}

struct Clock<R: Runtime> {
    /// Weak: the clock must not keep a dropped instance alive.
    shared: Weak<Shared<R>>,
    sleep: Option<BoxFuture>,
    sleeping_until: Option<Instant>,
}

impl<R: Runtime> Clock<R> {
    fn fire(&mut self, shared: &Shared<R>) {
        let now = shared.rt.now();
        // Forget the old target; each shard offers its next deadline as it is handled.
        shared.clock.set_target(None);
        for shard in shared.shards.iter() {
            shard.with(&shared.clock, |hub| hub.handle_timeout(now));
        }
        self.sleep = None;
        self.sleeping_until = None;
    }
}

impl<R: Runtime> Future for Clock<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let Some(shared) = this.shared.upgrade() else {
                return Poll::Ready(());
            };
            if shared.is_closed() && shared.connections.load(Ordering::Acquire) == 0 {
                shared.clock_started.store(false, Ordering::Release);
                return Poll::Ready(());
            }
            shared.clock.register(cx.waker());
            let target = shared.clock.target();
            if target != this.sleeping_until || this.sleep.is_none() {
                this.sleeping_until = target;
                this.sleep = target.map(|at| shared.rt.sleep_until(at));
            }
            let Some(sleep) = this.sleep.as_mut() else {
                return Poll::Pending;
            };
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => this.fire(&shared),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
