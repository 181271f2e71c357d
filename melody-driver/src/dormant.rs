//! Quiet connections without a task of their own.
//!
//! Most connections of a large server are quiet: no data either way since their last
//! ping (`Hub::is_quiet`), woken only by a ping, its pong or a rare message. A task per
//! connection (its header, its future, the runtime's bookkeeping) is most of what such a
//! connection costs. So a connection spawned by the driver that finds itself quiet and
//! with nothing to do gives its task up: what it needs to come back (transport, session
//! handle, observer) waits in a [`Dormant`], the one small allocation that its
//! transport and its hub slot hold as their waker. The first wakeup hands it to the
//! instance's `Unparker` (`unparker.rs`), which spawns a connection task for it again.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::task::Wake;

use crate::observe::Observer;
use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::session::Session;
use crate::sync::lock;

/// What a connection needs to come back after it gave up its task (its shard and
/// session id are in the handle's key).
pub(crate) struct Parked<R: Runtime, T: Transport> {
    pub(crate) session: Session<R>,
    pub(crate) transport: T,
    pub(crate) observer: Observer,
    /// The socket, while the instance watches it in place of the runtime's reactor.
    #[cfg(unix)]
    pub(crate) watched: Option<crate::idle_watch::Watched>,
}

enum State<R: Runtime, T: Transport> {
    /// The connection is handing its wakers over and has not settled yet.
    Parking,
    Parked(Parked<R, T>),
    /// A wakeup came: the parts went back to a task (or never left it).
    Woken,
}

/// Makes a connection task of parked parts again: implemented by the connection, a
/// type parameter of [`Dormant`] rather than a field, so a parked connection carries no
/// pointer for it (and this file need not import the connection's).
pub(crate) trait Resume<R: Runtime, T: Transport>: Sized {
    /// The connection's task, from its parked parts, keeping `dormant` for its next
    /// park (`None` when the parts are only being released).
    fn resume(parked: Parked<R, T>, dormant: Option<Arc<Dormant<R, T, Self>>>) -> BoxFuture;
}

/// A parked connection, and the waker its transport and hub slot hold meanwhile. A
/// parkable connection makes its one when it starts (among the first allocations for
/// it, next to its socket's) and reuses it at every park.
pub(crate) struct Dormant<R: Runtime, T: Transport, C: Resume<R, T>> {
    state: Mutex<State<R, T>>,
    resume: PhantomData<fn() -> C>,
}

impl<R: Runtime, T: Transport, C: Resume<R, T>> Dormant<R, T, C> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Dormant {
            state: Mutex::new(State::Parking),
            resume: PhantomData,
        })
    }

    /// Starts a park: wakeups from now on call it off (those of an earlier park's
    /// wakers too, which costs no more than a spurious wakeup).
    pub(crate) fn start_parking(&self) {
        let mut state = lock(&self.state);
        if matches!(*state, State::Woken) {
            *state = State::Parking;
        }
    }

    /// Leaves `parked` here until a wakeup, unless one came while the wakers were
    /// handed over: then `parked` comes back and the connection goes on as it was.
    pub(crate) fn settle(&self, parked: Parked<R, T>) -> Result<(), Parked<R, T>> {
        let mut state = lock(&self.state);
        match *state {
            State::Parking => {
                *state = State::Parked(parked);
                Ok(())
            }
            State::Parked(_) | State::Woken => Err(parked),
        }
    }

    fn take(&self) -> Option<Parked<R, T>> {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, State::Woken) {
            State::Parked(parked) => Some(parked),
            State::Parking | State::Woken => None,
        }
    }
}

impl<R: Runtime, T: Transport, C: Resume<R, T>> Wake for Dormant<R, T, C> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Only the first wakeup finds the parts; later ones (the other waker) are
        // stale, and the new task has registered wakers of its own by then or will
        // find the news at its first turn.
        if let Some(parked) = self.take() {
            let unparker = parked.session.shared.unparker.clone();
            unparker.resume(C::resume(parked, Some(self.clone())));
        }
    }
}

impl<R: Runtime, T: Transport, C: Resume<R, T>> Drop for Dormant<R, T, C> {
    fn drop(&mut self) {
        // Every waker gone without a wakeup (a transport that forgets its waker): the
        // connection ends here, releasing its session as a dropped task would.
        let state = std::mem::replace(
            self.state.get_mut().unwrap_or_else(|p| p.into_inner()),
            State::Woken,
        );
        if let State::Parked(parked) = state {
            drop(C::resume(parked, None));
        }
    }
}
