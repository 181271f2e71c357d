//! The seam an adapter implements to run the suite: start a melody instance on its
//! runtime, accepting on a listener; hand out the `Melody`; run a future; stop.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use melody_core::{Config, Keys, Request};
use melody_driver::{Melody, Runtime};

/// Computes a session's first keys from its upgrade request (olahol/melody's
/// `HandleRequestWithKeys`).
pub type KeysFn = Arc<dyn Fn(&Request) -> Keys + Send + Sync>;

/// How a backend turns accepted TCP connections into sessions.
#[derive(Clone)]
pub enum Upgrade {
    /// The adapter's plain entry point (`serve(listener)`, or its accept loop calling
    /// [`Melody::spawn_connection`]): every connection's first bytes are the HTTP
    /// upgrade request, which melody-core parses and answers.
    Serve,
    /// The adapter's `HandleRequestWithKeys`: the upgrade request is answered outside
    /// melody-core (by an HTTP integration such as axum), and the session starts with
    /// the keys this function computes from the request, visible from `on_connect` on.
    ///
    /// An adapter without an HTTP integration implements it with
    /// [`upgrade_with_keys`](crate::upgrade_with_keys), a runtime-agnostic upgrade over
    /// any [`Transport`](melody_driver::Transport) that ends in
    /// [`Melody::upgraded_connection`].
    WithKeys(KeysFn),
}

impl fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upgrade::Serve => f.write_str("Serve"),
            Upgrade::WithKeys(_) => f.write_str("WithKeys(..)"),
        }
    }
}

/// An adapter under test: a running melody server on the adapter's runtime.
///
/// The implementing type is the handle of one running server. For each case the suite
/// binds a fresh `127.0.0.1:0` listener, calls [`Backend::start`], talks to the server
/// with blocking clients on plain threads, uses [`Backend::melody`] for server-side
/// actions (broadcast, close, shutdown), and ends with [`Backend::stop`]. Cases run in
/// parallel, so `start` must give each server its own state (a runtime per server is
/// the simplest way).
///
/// See the [crate documentation](crate) for a complete implementation on tokio.
pub trait Backend: Sized + Send + 'static {
    /// The adapter's runtime seam.
    type Runtime: Runtime;

    /// Whether the connections [`Upgrade::Serve`] accepts leave the runtime's reactor
    /// while they are parked ([`Melody::parked_outside_reactor`]): if so, the parking
    /// cases check that they do. By default, not checked.
    const SERVE_LEAVES_REACTOR: bool = false;

    /// Starts serving on `listener` in the background and returns at once.
    ///
    /// Build the instance from `config` (usually [`Melody::with_runtime`]; an invalid
    /// config is an [`io::ErrorKind::InvalidInput`] error), call `setup` on it to install
    /// the case's handlers *before* accepting the first connection, then accept on
    /// `listener` the way `upgrade` says. `listener` is a blocking std listener; convert
    /// it as the runtime needs (e.g. `set_nonblocking(true)` and `from_std`). Accepting
    /// stops when the instance is closed ([`Melody::closed`]) or the server is stopped.
    fn start(
        config: Config,
        listener: TcpListener,
        upgrade: Upgrade,
        setup: impl FnOnce(&Melody<Self::Runtime>),
    ) -> io::Result<Self>;

    /// The running instance, for server-side actions from the test thread. Its methods
    /// (broadcast, write, close…) must work when called from a thread outside the
    /// runtime.
    fn melody(&self) -> &Melody<Self::Runtime>;

    /// Runs `future` to completion on the server's runtime, blocking the calling
    /// thread (a plain test thread); used for [`Melody::shutdown`].
    fn block_on<F: Future>(&self, future: F) -> F::Output;

    /// Stops the server: ends accepting and every task of the instance, and frees the
    /// listener. Must return promptly (within a second or two) even if clients still
    /// hold connections open.
    fn stop(self);
}
