//! The handle to one session that handlers and applications hold.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use melody_core::{
    CloseCode, Delivery, Hub, Keys, Prepared, Request, SessionId, SessionState, SessionStats,
};

use crate::runtime::Runtime;
use crate::shared::Shared;
use crate::slot::{Info, SessionKey, Slot};

/// A connected WebSocket session (olahol/melody's `*Session`). Cheap to clone; every
/// clone names the same session. Methods that change the session lock its shard
/// briefly; none blocks on the network.
pub struct Session<R: Runtime> {
    pub(crate) shared: Arc<Shared<R>>,
    pub(crate) info: Arc<Info>,
}

impl<R: Runtime> Clone for Session<R> {
    fn clone(&self) -> Self {
        Session {
            shared: self.shared.clone(),
            info: self.info.clone(),
        }
    }
}

impl<R: Runtime> PartialEq for Session<R> {
    fn eq(&self, other: &Self) -> bool {
        self.info.key == other.info.key && Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<R: Runtime> Eq for Session<R> {}

impl<R: Runtime> Hash for Session<R> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.info.key.hash(state);
    }
}

impl<R: Runtime> fmt::Debug for Session<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("key", &self.info.key)
            .field("uri", self.info.request.request().uri())
            .field("remote_addr", &self.info.remote_addr)
            .finish()
    }
}

impl<R: Runtime> Session<R> {
    fn with<T>(&self, op: impl FnOnce(&mut Hub<Slot>, SessionId) -> T) -> T {
        let shared = &self.shared;
        let id = self.info.key.id;
        shared.shards[self.info.key.shard as usize].with(&shared.clock, |hub| op(hub, id))
    }

    /// The session's identity.
    pub fn key(&self) -> SessionKey {
        self.info.key
    }

    /// Queues a text message (olahol/melody's `Write`). The [`Delivery`] says whether it
    /// was queued, dropped by a full outbox, or refused because the session is closing.
    pub fn write(&self, text: &str) -> Delivery {
        self.write_prepared(&Prepared::text(text))
    }

    /// Queues a binary message (olahol/melody's `WriteBinary`).
    pub fn write_binary(&self, data: &[u8]) -> Delivery {
        self.write_prepared(&Prepared::binary(data))
    }

    /// Queues an already encoded message.
    pub fn write_prepared(&self, msg: &Prepared) -> Delivery {
        let now = self.shared.rt.now();
        self.with(|hub, id| hub.send(id, now, msg))
    }

    /// Closes with 1000 (normal closure) after the queued messages.
    pub fn close(&self) -> bool {
        self.close_with(CloseCode::Normal, "")
    }

    /// Closes with `code` and `reason` after the queued messages (olahol/melody's
    /// `CloseWithMsg`). `false` if it was already closing or closed.
    pub fn close_with(&self, code: impl Into<CloseCode>, reason: &str) -> bool {
        let now = self.shared.rt.now();
        let code = code.into();
        self.with(|hub, id| hub.close(id, now, code, reason))
    }

    /// Whether the session is closing or closed.
    pub fn is_closed(&self) -> bool {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .read(|hub| !matches!(hub.state(id), Some(SessionState::Open)))
    }

    /// Stores `value` under `key` (olahol/melody's `Set`).
    pub fn set<T: Any + Send + Sync>(&self, key: impl Into<String>, value: T) {
        let key = key.into();
        self.with_keys(move |keys| keys.set(key, value));
    }

    /// A clone of the value under `key`, if there is one of type `T` (olahol/melody's
    /// `Get`, typed).
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        self.with_keys(|keys| keys.get::<T>(key).cloned())
    }

    /// A clone of the value under `key` (olahol/melody's `MustGet`).
    ///
    /// # Panics
    ///
    /// If there is no value of type `T` under `key`; the message names the key and the
    /// type. Use [`Session::get`] where the value may be missing.
    pub fn must_get<T: Any + Clone>(&self, key: &str) -> T {
        match self.get::<T>(key) {
            Some(value) => value,
            None => missing_key::<T>(key),
        }
    }

    /// Removes the value under `key` (olahol/melody's `UnSet`); whether there was one.
    pub fn unset(&self, key: &str) -> bool {
        self.with_keys(|keys| keys.unset(key).is_some())
    }

    /// Stores `value` as the session's state of type `T`, one value per type (like
    /// `http::Extensions`), returning the one it replaces. Typed state cannot be
    /// misread: the type is the key.
    ///
    /// ```
    /// # fn demo(session: &melody_driver::Session<impl melody_driver::Runtime>) {
    /// #[derive(Clone)]
    /// struct User { name: String }
    /// session.insert_state(User { name: "ada".into() });
    /// assert_eq!(session.state::<User>().map(|u| u.name), Some("ada".into()));
    /// assert_eq!(session.with_state(|u: Option<&User>| u.map(|u| u.name.len())), Some(3));
    /// # }
    /// ```
    pub fn insert_state<T: Clone + Send + Sync + 'static>(&self, value: T) -> Option<T> {
        self.with_slot(|slot| slot.state.insert(value)).flatten()
    }

    /// A clone of the session's state of type `T`, if it has one.
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.with_slot(|slot| slot.state.get::<T>().cloned())
            .flatten()
    }

    /// Runs `op` on a borrow of the session's state of type `T` (no clone), under its
    /// shard's lock: keep it short, and do not call other melody methods from inside it.
    pub fn with_state<T: Send + Sync + 'static, X>(&self, op: impl FnOnce(Option<&T>) -> X) -> X {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .read(|hub| op(hub.user(id).and_then(|slot| slot.state.get::<T>())))
    }

    /// Removes the session's state of type `T`, returning it.
    pub fn remove_state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.with_slot(|slot| slot.state.remove::<T>()).flatten()
    }

    /// Runs `op` on the session's slot under its shard's lock; `None` once released.
    fn with_slot<X>(&self, op: impl FnOnce(&mut Slot) -> X) -> Option<X> {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .with(&self.shared.clock, |hub| hub.user_mut(id).map(op))
    }

    /// Runs `op` on the session's keys, under its shard's lock: keep it short, and do
    /// not call other melody methods from inside it.
    pub fn with_keys<T>(&self, op: impl FnOnce(&mut Keys) -> T) -> T {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize].with(&self.shared.clock, |hub| {
            match hub.user_mut(id) {
                Some(slot) => op(&mut slot.keys),
                // Released: a scratch map keeps the call total.
                None => op(&mut Keys::new()),
            }
        })
    }

    /// The upgrade request: URI, headers (olahol/melody's `Request`).
    pub fn request(&self) -> &Request {
        self.info.request.request()
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.info.remote_addr
    }

    /// Our address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.info.local_addr
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.info.protocol.as_deref()
    }

    /// Subscribes to a topic; `false` if already subscribed or closed.
    pub fn subscribe(&self, topic: &str) -> bool {
        let added = self.with(|hub, id| hub.subscribe(id, topic));
        if added {
            if let Some(backplane) = self.shared.backplane.get() {
                backplane.note_subscribed(topic);
            }
        }
        added
    }

    /// Unsubscribes from a topic; `false` if not subscribed.
    pub fn unsubscribe(&self, topic: &str) -> bool {
        self.with(|hub, id| hub.unsubscribe(id, topic))
    }

    /// The topics the session is subscribed to.
    pub fn topics(&self) -> Vec<String> {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .read(|hub| hub.topics(id).map(str::to_owned).collect())
    }

    /// The session's counters (messages received, sent, dropped, queued). Once the
    /// session is over, its last counters.
    pub fn stats(&self) -> SessionStats {
        let id = self.info.key.id;
        self.shared.shards[self.info.key.shard as usize]
            .read(|hub| hub.session_stats(id))
            .or_else(|| self.info.last_stats.get().copied())
            .unwrap_or_default()
    }
}

#[cold]
#[track_caller]
fn missing_key<T>(key: &str) -> ! {
    panic!(
        "Session::must_get: no value of type {} under key {key:?}",
        std::any::type_name::<T>()
    )
}
