//! Async message handlers: the futures of one session's messages, polled by its
//! connection task (no spawn per message), in order or a few at a time, under a bound on
//! the messages in flight and the overflow policy past it.
//!
//! The connection task calls in three places: [`InFlight::must_wait`] before a message's
//! handlers run (the `Wait` policy holds the message and pauses reading, and the session's
//! `Disconnect` waits for the handlers in flight), [`InFlight::offer`] after its sync
//! handler ran (creates the future, or applies the `Drop`/`Close` policy), and
//! [`InFlight::poll`] each turn (polls the futures whose wakers fired). Nothing here is
//! allocated until a session receives its first message for an async handler.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use melody_core::{CloseCode, Event};

use crate::async_handling::{Counters, Overflow};
use crate::error::{panic_message, Error};
use crate::handlers::Handlers;
use crate::observe::Observer;
use crate::runtime::{BoxFuture, Runtime};
use crate::session::Session;

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The connection task's waker, refreshed at each poll; every slot's waker wakes it.
type TaskWaker = Arc<Mutex<Option<Waker>>>;

/// One slot's waker: marks the slot ready and wakes the connection task, so a wakeup
/// polls only the futures that asked for it.
struct SlotWake {
    woken: AtomicBool,
    task: TaskWaker,
}

impl Wake for SlotWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let waker = match self.task.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A running future and its slot's waker (made once per slot, reused).
struct Slot {
    future: Option<BoxFuture>,
    wake: Arc<SlotWake>,
    waker: Waker,
}

/// The async work of one session, allocated at its first async message.
struct Work {
    /// At most `concurrency` slots, made as needed and reused.
    slots: Vec<Slot>,
    running: usize,
    /// Accepted futures waiting for a slot, in message order.
    waiting: VecDeque<BoxFuture>,
    task: TaskWaker,
    counters: Arc<Counters>,
}

impl Drop for Work {
    fn drop(&mut self) {
        // Only a connection task dropped before its end gets here with work left.
        let left = (self.running + self.waiting.len()) as u64;
        if left > 0 {
            self.counters.abandoned.fetch_add(left, Ordering::Relaxed);
        }
    }
}

/// A session's async message handlers in flight. Empty (no allocation) until the first
/// message for an async handler.
#[derive(Default)]
pub(crate) struct InFlight {
    work: Option<Box<Work>>,
    /// A message waits for a slot ([`Overflow::Wait`]): the task does not read.
    holding: bool,
    /// This session was closed at its bound ([`Overflow::Close`]), counted once.
    closed_at_bound: bool,
}

impl InFlight {
    /// Messages running or waiting to start.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.work
            .as_ref()
            .map_or(0, |w| w.running + w.waiting.len())
    }

    /// Whether a message waits for a slot; the connection task does not read meanwhile.
    #[inline]
    pub(crate) fn pauses_reading(&self) -> bool {
        self.holding
    }

    /// Whether `event` must stay queued, unhandled, for now: a message for an async
    /// handler while the session is at its bound under [`Overflow::Wait`] (reading pauses
    /// until a slot frees), or the session's `Disconnect` while handlers are in flight
    /// (`on_disconnect` runs after they finish).
    pub(crate) fn must_wait<R: Runtime>(
        &mut self,
        handlers: &Handlers<R>,
        session: &Session<R>,
        observer: &mut Observer,
        event: &Event,
    ) -> bool {
        let wait = match event {
            Event::Text(_) | Event::Binary(_) if handlers.wants_async(event) => {
                let (_, bound) = handlers.async_handling.limits();
                handlers.async_handling.overflow == Overflow::Wait && self.len() >= bound
            }
            Event::Disconnect { .. } => self.len() > 0,
            _ => false,
        };
        if wait && !self.holding && !matches!(event, Event::Disconnect { .. }) {
            bump(&handlers.async_counters().waited);
            report_overflow(handlers, session, observer, Overflow::Wait);
        }
        self.holding = wait && !matches!(event, Event::Disconnect { .. });
        wait
    }

    /// After a message's sync handler ran: creates its async handler's future and starts
    /// it (or queues it behind the running ones), or, at the bound, drops the message or
    /// closes the session. Runs inside the caller's `catch_unwind`: a panicking handler
    /// or `on_overflow` is the caller's handler panic.
    pub(crate) fn offer<R: Runtime>(
        &mut self,
        handlers: &Handlers<R>,
        session: &Session<R>,
        event: &Event,
    ) {
        if !handlers.wants_async(event) {
            return;
        }
        let (concurrency, bound) = handlers.async_handling.limits();
        let counters = handlers.async_counters();
        if self.len() >= bound {
            // `Wait` held the message in `must_wait` until a slot freed: only `Drop` and
            // `Close` get here.
            bump(&counters.dropped);
            let policy = handlers.async_handling.overflow;
            if policy == Overflow::Close
                && !self.closed_at_bound
                && session.close_with(CloseCode::Again, "too many messages in flight")
            {
                self.closed_at_bound = true;
                bump(&counters.closed);
            }
            if let Some(on_overflow) = &handlers.overflow {
                on_overflow(session, policy);
            }
            return;
        }
        let made = catch_unwind(AssertUnwindSafe(|| match event {
            Event::Text(text) => handlers
                .message_async
                .as_ref()
                .map(|handler| handler(session.clone(), text.as_str().to_owned())),
            Event::Binary(data) => handlers
                .message_binary_async
                .as_ref()
                .map(|handler| handler(session.clone(), data.clone())),
            _ => None,
        }));
        let future = match made {
            Ok(Some(future)) => future,
            Ok(None) => return,
            Err(panic) => {
                // Counted here, reported by the caller like any handler panic.
                bump(&counters.started);
                bump(&counters.panicked);
                resume_unwind(panic)
            }
        };
        bump(&counters.started);
        let work = self.work.get_or_insert_with(|| {
            Box::new(Work {
                slots: Vec::new(),
                running: 0,
                waiting: VecDeque::new(),
                task: Arc::default(),
                counters: counters.clone(),
            })
        });
        if work.running < concurrency {
            work.start(future);
        } else {
            work.waiting.push_back(future);
        }
    }

    /// Polls the futures whose wakers fired since their last poll; a finished one's slot
    /// goes to the next waiting future. A panicking future is reported like a panicking
    /// sync handler (`on_error` with [`Error::HandlerPanicked`], close 1011). Returns
    /// whether any finished.
    pub(crate) fn poll<R: Runtime>(
        &mut self,
        cx: &Context<'_>,
        handlers: &Handlers<R>,
        session: Option<&Session<R>>,
        observer: &mut Observer,
    ) -> bool {
        let Some(work) = self.work.as_mut() else {
            return false;
        };
        if work.running == 0 {
            return false;
        }
        {
            let mut task = match work.task.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let _scope = observer.scope();
        let mut progress = false;
        for index in 0..work.slots.len() {
            let slot = &mut work.slots[index];
            if slot.future.is_none() || !slot.wake.woken.swap(false, Ordering::Acquire) {
                continue;
            }
            let Some(future) = slot.future.as_mut() else {
                continue;
            };
            let mut slot_cx = Context::from_waker(&slot.waker);
            let outcome = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut slot_cx)));
            match outcome {
                Ok(Poll::Pending) => continue,
                Ok(Poll::Ready(())) => bump(&work.counters.finished),
                Err(panic) => {
                    bump(&work.counters.panicked);
                    if let Some(session) = session {
                        report_panic(handlers, session, observer, &panic);
                    }
                }
            }
            progress = true;
            slot.future = None;
            work.running -= 1;
            if let Some(next) = work.waiting.pop_front() {
                work.start_in(index, next);
            }
        }
        // A slot freed (progress): the connection task dispatches again, and a message
        // held by `Wait` goes on; reading resumes once `must_wait` lets it.
        progress
    }
}

impl Work {
    /// Starts `future` in a free slot, making one if none is free.
    fn start(&mut self, future: BoxFuture) {
        match self.slots.iter().position(|s| s.future.is_none()) {
            Some(index) => self.start_in(index, future),
            None => {
                let wake = Arc::new(SlotWake {
                    woken: AtomicBool::new(false),
                    task: self.task.clone(),
                });
                self.slots.push(Slot {
                    future: None,
                    waker: Waker::from(wake.clone()),
                    wake,
                });
                self.start_in(self.slots.len() - 1, future);
            }
        }
    }

    /// Puts `future` in free slot `index`, marked woken so the next poll polls it.
    fn start_in(&mut self, index: usize, future: BoxFuture) {
        let slot = &mut self.slots[index];
        slot.future = Some(future);
        slot.wake.woken.store(true, Ordering::Release);
        self.running += 1;
    }
}

/// Tells `on_overflow` (if set); a panic there is a handler panic.
fn report_overflow<R: Runtime>(
    handlers: &Handlers<R>,
    session: &Session<R>,
    observer: &mut Observer,
    overflow: Overflow,
) {
    if let Some(on_overflow) = &handlers.overflow {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| on_overflow(session, overflow))) {
            report_panic(handlers, session, observer, &panic);
        }
    }
}

/// What the connection task does for a panicking sync handler: `on_error` with
/// [`Error::HandlerPanicked`], then close 1011.
fn report_panic<R: Runtime>(
    handlers: &Handlers<R>,
    session: &Session<R>,
    observer: &mut Observer,
    panic: &Box<dyn std::any::Any + Send>,
) {
    let message = panic_message(panic);
    observer.handler_panicked(&message);
    if let Some(on_error) = &handlers.error {
        let err = Error::HandlerPanicked(message);
        let _ = catch_unwind(AssertUnwindSafe(|| on_error(session, &err)));
    }
    session.close_with(CloseCode::Error, "internal error");
}
