//! One clock task per `Melody`: sleeps until the earliest deadline of any shard, fires
//! the due timers, and is woken early when a new deadline needs it. [`ClockSignal`] is
//! how the shards tell it; [`Timed`] is what it drives (the instance's shared state).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::runtime::{BoxFuture, Runtime};
use crate::sync::{lock, WakerSlot};

/// The clock task's next wakeup, moved earlier when a new deadline needs it.
pub(crate) struct ClockSignal {
    origin: Instant,
    /// Nanoseconds after `origin` the clock sleeps until; `u64::MAX` when idle.
    target: AtomicU64,
    waker: Mutex<WakerSlot>,
    /// A clock task is running for this instance.
    running: AtomicBool,
}

impl ClockSignal {
    pub(crate) fn new(origin: Instant) -> Self {
        ClockSignal {
            origin,
            target: AtomicU64::new(u64::MAX),
            waker: Mutex::new(WakerSlot::default()),
            running: AtomicBool::new(false),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// A hub's next deadline: wakes the clock if it sleeps past it.
    pub(crate) fn offer(&self, next: Option<Instant>) {
        let Some(at) = next else { return };
        let n = self.nanos(at);
        if n < self.target.fetch_min(n, Ordering::AcqRel) {
            if let Some(w) = lock(&self.waker).take() {
                w.wake();
            }
        }
    }

    /// Called by the clock before sleeping: the target it sleeps until.
    fn set_target(&self, at: Option<Instant>) {
        let n = at.map_or(u64::MAX, |at| self.nanos(at));
        self.target.store(n, Ordering::Release);
    }

    fn target(&self) -> Option<Instant> {
        match self.target.load(Ordering::Acquire) {
            u64::MAX => None,
            n => Some(self.origin + Duration::from_nanos(n)),
        }
    }

    fn register(&self, waker: &Waker) {
        lock(&self.waker).register(waker);
    }
}

/// What the clock task drives.
pub(crate) trait Timed: Send + Sync + 'static {
    /// The runtime to sleep on.
    type Rt: Runtime;
    fn runtime(&self) -> &Self::Rt;
    fn clock(&self) -> &ClockSignal;
    /// Fires the due timers of every shard; each offers its next deadline as it goes.
    fn fire(&self, now: Instant);
    /// Nothing is left to keep time for: closed, and no connection left.
    fn wound_down(&self) -> bool;
}

/// Starts the clock task of `owner` unless one is running.
pub(crate) fn ensure_started<T: Timed>(owner: &Arc<T>) {
    if !owner.clock().running.swap(true, Ordering::AcqRel) {
        let clock = Clock {
            owner: Arc::downgrade(owner),
            sleep: None,
            sleeping_until: None,
        };
        owner.runtime().spawn(Box::pin(clock));
    }
}

struct Clock<T: Timed> {
    /// Weak: the clock must not keep a dropped instance alive.
    owner: Weak<T>,
    sleep: Option<BoxFuture>,
    sleeping_until: Option<Instant>,
}

impl<T: Timed> Clock<T> {
    fn fire(&mut self, owner: &T) {
        let now = owner.runtime().now();
        // Forget the old target; each shard offers its next deadline as it is handled.
        owner.clock().set_target(None);
        owner.fire(now);
        self.sleep = None;
        self.sleeping_until = None;
    }
}

impl<T: Timed> Future for Clock<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            let Some(owner) = this.owner.upgrade() else {
                return Poll::Ready(());
            };
            let signal = owner.clock();
            if owner.wound_down() {
                signal.running.store(false, Ordering::Release);
                return Poll::Ready(());
            }
            signal.register(cx.waker());
            let target = signal.target();
            if target != this.sleeping_until || this.sleep.is_none() {
                this.sleeping_until = target;
                this.sleep = target.map(|at| owner.runtime().sleep_until(at));
            }
            let Some(sleep) = this.sleep.as_mut() else {
                return Poll::Pending;
            };
            match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => this.fire(&owner),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T: Timed> Unpin for Clock<T> {}
