//! What `on_error` handlers receive.

use melody_core::SessionError;

/// An error reported to `on_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session failed (bad input, timeout, transport error…); see [`SessionError`].
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A handler panicked; the session was closed with 1011.
    #[error("a handler panicked: {0}")]
    HandlerPanicked(String),
}
