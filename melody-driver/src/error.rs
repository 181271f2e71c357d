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

/// The message of a handler's panic, for [`Error::HandlerPanicked`].
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
