//! What a broadcast filter sees of each session.

use std::any::Any;
use std::net::SocketAddr;

use crate::runtime::Runtime;
use crate::session::Session;
use crate::slot::{SessionKey, Slot};
use melody_core::{Keys, Request, SessionView};

/// A read-only look at a session during a filtered broadcast. It reads the session
/// under its shard's lock, so it offers plain borrows instead of `Session`'s methods
/// (which lock).
pub struct SessionRef<'a> {
    pub(crate) view: &'a SessionView<'a, Slot>,
    pub(crate) shard: u32,
}

impl<'a> SessionRef<'a> {
    /// The session's identity.
    pub fn key(&self) -> SessionKey {
        SessionKey {
            shard: self.shard,
            id: self.view.id(),
        }
    }

    /// Whether this is `session`.
    pub fn is<R: Runtime>(&self, session: &Session<R>) -> bool {
        self.key() == session.key()
    }

    /// The value under `key`, if there is one of type `T`.
    pub fn get<T: Any>(&self, key: &str) -> Option<&'a T> {
        self.view.user().keys.get::<T>(key)
    }

    /// The session's state of type `T` (see [`Session::insert_state`]).
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&'a T> {
        self.view.user().state.get::<T>()
    }

    /// All of the session's keys.
    pub fn keys(&self) -> &'a Keys {
        &self.view.user().keys
    }

    /// The upgrade request.
    pub fn request(&self) -> Option<&'a Request> {
        self.view
            .user()
            .info
            .as_ref()
            .map(|info| info.request.request())
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.view.remote_addr()
    }

    /// The topics the session is subscribed to.
    pub fn topics(&self) -> impl Iterator<Item = &'a str> {
        self.view.topics()
    }
}
