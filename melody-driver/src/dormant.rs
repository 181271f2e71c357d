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

use std::sync::{Arc, Mutex};
use std::task::Wake;

use melody_core::SessionId;

use crate::observe::Observer;
use crate::runtime::{BoxFuture, Runtime, Transport};
use crate::session::Session;
use crate::sync::lock;

/// What a connection needs to come back after it gave up its task.
pub(crate) struct Parked<R: Runtime, T: Transport> {
    pub(crate) session: Session<R>,
    pub(crate) shard: usize,
    pub(crate) id: SessionId,
    pub(crate) transport: T,
    pub(crate) observer: Observer,
}

enum State<R: Runtime, T: Transport> {
    /// The connection is handing its wakers over and has not settled yet.
    Parking,
    Parked(Parked<R, T>),
    /// A wakeup came: the parts went back to a task (or never left it).
    Woken,
}

/// Makes a connection task of parked parts again (`Connection::resume`, boxed).
pub(crate) type Resume<R, T> = fn(Parked<R, T>) -> BoxFuture;

/// A parked connection, and the waker its transport and hub slot hold meanwhile.
pub(crate) struct Dormant<R: Runtime, T: Transport> {
    state: Mutex<State<R, T>>,
    resume: Resume<R, T>,
}

impl<R: Runtime, T: Transport> Dormant<R, T> {
    pub(crate) fn new(resume: Resume<R, T>) -> Arc<Self> {
        Arc::new(Dormant {
            state: Mutex::new(State::Parking),
            resume,
        })
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

impl<R: Runtime, T: Transport> Wake for Dormant<R, T> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Only the first wakeup finds the parts; later ones (the other waker) are
        // stale, and the new task has registered wakers of its own by then or will
        // find the news at its first turn.
        if let Some(parked) = self.take() {
            let unparker = parked.session.shared.unparker.clone();
            unparker.resume((self.resume)(parked));
        }
    }
}

impl<R: Runtime, T: Transport> Drop for Dormant<R, T> {
    fn drop(&mut self) {
        // Every waker gone without a wakeup (a transport that forgets its waker): the
        // connection ends here, releasing its session as a dropped task would.
        let state = std::mem::replace(
            self.state.get_mut().unwrap_or_else(|p| p.into_inner()),
            State::Woken,
        );
        if let State::Parked(parked) = state {
            drop((self.resume)(parked));
        }
    }
}
