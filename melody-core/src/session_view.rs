//! A read-only look at one session, for filters and inspection.

use std::net::SocketAddr;

use crate::handshake::{Request, RequestHead};
use crate::session::{SessionId, SessionMachine, SessionState, SessionStats};

/// A read-only view of a session: what broadcast filters see, and what
/// [`Hub::session`](crate::Hub::session) returns.
pub struct SessionView<'a, U> {
    id: SessionId,
    session: &'a SessionMachine<U>,
}

impl<'a, U> SessionView<'a, U> {
    pub(crate) fn new(id: SessionId, session: &'a SessionMachine<U>) -> Self {
        SessionView { id, session }
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The user data (by default, the melody-style [`Keys`](crate::Keys)).
    pub fn user(&self) -> &'a U {
        &self.session.user
    }

    /// The upgrade request (URI, headers); `None` until the handshake completes.
    pub fn request(&self) -> Option<&'a Request> {
        self.session.meta.request.as_ref().map(RequestHead::request)
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&'a str> {
        self.session.meta.protocol.as_deref()
    }

    /// The peer's address, as the transport reported it.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.session.meta.info.remote_addr
    }

    /// Our address, as the transport reported it.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.session.meta.info.local_addr
    }

    /// The topics the session is subscribed to.
    pub fn topics(&self) -> impl Iterator<Item = &'a str> {
        self.session.topics.iter().map(|(t, _)| &**t)
    }

    /// The lifecycle stage.
    pub fn state(&self) -> SessionState {
        self.session.state()
    }

    /// Whether the session is closing or over.
    pub fn is_closed(&self) -> bool {
        matches!(self.state(), SessionState::Closing | SessionState::Finished)
    }

    /// The session's counters.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            queued: self.session.outbox.data_len(),
            queued_bytes: self.session.outbox.data_bytes(),
            ..self.session.stats
        }
    }
}
