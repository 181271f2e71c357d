//! The clock reading of the connection turn whose handlers are running on this thread.
//!
//! A handler that answers a message writes at once: its write can use the reading its
//! connection's turn took a moment before, rather than read the clock again (a clock
//! read is one of the dearer steps of an echo's round trip). Only writes made on the
//! thread running the handlers, to the same instance, use it; any other write reads
//! the clock. A handler that runs long before it writes gets a deadline that much
//! earlier, never later.

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    /// The instance (its shared state's address) and the turn's reading.
    static TURN: Cell<Option<(usize, Instant)>> = const { Cell::new(None) };
}

/// Makes `now` the reading for writes to `instance` until the guard goes (a handler
/// that panics drops it too).
pub(crate) fn enter(instance: usize, now: Instant) -> Entered {
    Entered(TURN.with(|turn| turn.replace(Some((instance, now)))))
}

/// Puts back the reading that was current before [`enter`].
pub(crate) struct Entered(Option<(usize, Instant)>);

impl Drop for Entered {
    fn drop(&mut self) {
        TURN.with(|turn| turn.set(self.0));
    }
}

/// The reading of the turn running handlers for `instance` on this thread, if any.
pub(crate) fn current(instance: usize) -> Option<Instant> {
    TURN.with(|turn| match turn.get() {
        Some((running, now)) if running == instance => Some(now),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_turns_reading_serves_its_own_instance_until_the_guard_goes() {
        let t0 = Instant::now();
        assert_eq!(current(1), None);
        {
            let _outer = enter(1, t0);
            assert_eq!(current(1), Some(t0));
            assert_eq!(current(2), None, "another instance reads its own clock");
            {
                let _inner = enter(2, t0 + Duration::from_secs(1));
                assert_eq!(current(2), Some(t0 + Duration::from_secs(1)));
                assert_eq!(current(1), None);
            }
            assert_eq!(current(1), Some(t0), "the outer turn's reading is back");
        }
        assert_eq!(current(1), None);
    }

    #[test]
    fn a_panicking_handler_leaves_no_reading_behind() {
        let caught = std::panic::catch_unwind(|| {
            let _turn = enter(7, Instant::now());
            panic!("handler failed");
        });
        assert!(caught.is_err());
        assert_eq!(current(7), None);
    }
}
