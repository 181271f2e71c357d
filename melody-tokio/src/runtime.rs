//! The tokio runtime seam: spawn, sleep, and tokio's clock (which tests may pause).

use std::time::Instant;

use melody_driver::{BoxFuture, Runtime};

/// The driver's [`Runtime`] on tokio. It spawns on the runtime it is called from.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture) {
        tokio::spawn(task);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    /// tokio's reactor wakes tasks on the thread that runs them: the extra poll after
    /// each message cost echo about 300 of its 5,750 instructions per round trip
    /// (BENCHMARKS.md).
    fn polls_again_after_input(&self) -> bool {
        false
    }
}
