//! A read-only look at one session, for filters and inspection.

use std::net::SocketAddr;

use crate::handshake::{Request, RequestHead};
use crate::session::{SessionId, SessionKind, SessionMachine, SessionState, SessionStats};

/// A read-only view of a session: what broadcast filters see, and what
/// [`Hub::session`](crate::Hub::session) returns.
///
/// ```
/// # use std::time::Instant;
/// # use melody_core::*;
/// # let t0 = Instant::now();
/// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
/// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
/// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
/// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
/// # hub.handle_input(id, t0, UPGRADE)?;
/// hub.subscribe(id, "news");
/// let view = hub.session(id).expect("a live session");
/// assert_eq!(view.id(), id);
/// assert_eq!(view.kind(), SessionKind::WebSocket);
/// assert_eq!(view.topics().collect::<Vec<_>>(), ["news"]);
/// // Filters see the same view.
/// let subscribed = |s: &SessionView<'_, Keys>| s.topics().count() > 0;
/// assert_eq!(hub.broadcast(t0, &Prepared::text("hi"), Target::Filter(&subscribed)).queued, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SessionView<'a, U> {
    id: SessionId,
    session: &'a SessionMachine<U>,
}

impl<'a, U> SessionView<'a, U> {
    pub(crate) fn new(id: SessionId, session: &'a SessionMachine<U>) -> Self {
        SessionView { id, session }
    }

    /// The session's id.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.session(id).map(|view| view.id()), Some(id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The user data (by default, the melody-style [`Keys`](crate::Keys)).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.user_mut(id).unwrap().set("admin", true);
    /// let admins = |s: &SessionView<'_, Keys>| s.user().get::<bool>("admin") == Some(&true);
    /// assert_eq!(hub.broadcast(t0, &Prepared::text("for admins"), Target::Filter(&admins)).queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn user(&self) -> &'a U {
        &self.session.user
    }

    /// The upgrade request (URI, headers; once the session is open, without the fields
    /// its handshake consumed: see [`RequestHead`](crate::RequestHead)); `None` until
    /// the handshake completes, and
    /// once [`Hub::take_request`](crate::Hub::take_request) or
    /// [`Hub::take_origin`](crate::Hub::take_origin) has moved it out.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// let view = hub.session(id).unwrap();
    /// assert_eq!(view.request().map(|r| r.uri().path()), Some("/chat"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn request(&self) -> Option<&'a Request> {
        self.session
            .origin
            .as_ref()?
            .request
            .as_ref()
            .map(RequestHead::request)
    }

    /// The subprotocol agreed in the handshake (`None` once
    /// [`Hub::take_origin`](crate::Hub::take_origin) has moved it out).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// // The client offered no subprotocol (see `Config::subprotocols`).
    /// assert_eq!(hub.session(id).unwrap().protocol(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn protocol(&self) -> Option<&'a str> {
        self.session.origin.as_ref()?.protocol.as_deref()
    }

    /// The peer's address, as the transport reported it (`None` once
    /// [`Hub::take_origin`](crate::Hub::take_origin) has moved it out).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// let peer = "192.0.2.7:50000".parse()?;
    /// let info = ConnectionInfo { remote_addr: Some(peer), local_addr: None };
    /// let id = hub.open(t0, info, Keys::new());
    /// assert_eq!(hub.session(id).unwrap().remote_addr(), Some(peer));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.session.origin.as_ref()?.connection.remote_addr
    }

    /// Our address, as the transport reported it (`None` once
    /// [`Hub::take_origin`](crate::Hub::take_origin) has moved it out).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// let ours = "127.0.0.1:8080".parse()?;
    /// let info = ConnectionInfo { remote_addr: None, local_addr: Some(ours) };
    /// let id = hub.open(t0, info, Keys::new());
    /// assert_eq!(hub.session(id).unwrap().local_addr(), Some(ours));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.session.origin.as_ref()?.connection.local_addr
    }

    /// The topics the session is subscribed to.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.subscribe(id, "sport");
    /// assert_eq!(hub.session(id).unwrap().topics().collect::<Vec<_>>(), ["sport"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topics(&self) -> impl Iterator<Item = &'a str> {
        self.session.topics.iter().map(|(t, _)| &**t)
    }

    /// WebSocket or event stream.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.session(id).unwrap().kind(), SessionKind::WebSocket);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kind(&self) -> SessionKind {
        self.session.kind
    }

    /// The lifecycle stage.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// assert_eq!(hub.session(id).unwrap().state(), SessionState::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state(&self) -> SessionState {
        self.session.state()
    }

    /// Whether the session is closing or over.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.close(id, t0, CloseCode::Normal, "bye");
    /// assert!(hub.session(id).unwrap().is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self.state(), SessionState::Closing | SessionState::Finished)
    }

    /// The session's counters.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default(), t0)?;
    /// # const UPGRADE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    /// #     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// # hub.handle_input(id, t0, UPGRADE)?;
    /// hub.send(id, t0, &Prepared::text("hi"));
    /// assert_eq!(hub.session(id).unwrap().stats().queued, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> SessionStats {
        self.session.stats()
    }

    /// How the session compresses the messages it sends: the configured
    /// [`Compression`](crate::Compression) when the client agreed to permessage-deflate,
    /// [`Compression::Off`](crate::Compression::Off) otherwise (and for event streams).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default().compression(Compression::Shared), t0)?;
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// hub.handle_input(id, t0, b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    ///     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")?;
    /// let view = hub.session(id).unwrap();
    /// assert_eq!(view.compression(), Compression::Shared);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compression(&self) -> crate::Compression {
        self.session.compression
    }

    /// The permessage-deflate parameters the session agreed to, if any.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use melody_core::*;
    /// # let t0 = Instant::now();
    /// # let mut hub: Hub = Hub::new(Config::default().compression(Compression::Shared), t0)?;
    /// # let id = hub.open(t0, ConnectionInfo::default(), Keys::new());
    /// hub.handle_input(id, t0, b"GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
    ///     Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")?;
    /// let params = hub.session(id).unwrap().deflate().expect("agreed");
    /// assert!(params.server_no_context_takeover, "shared copies carry no context");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deflate(&self) -> Option<crate::DeflateParams> {
        self.session.deflate
    }
}
