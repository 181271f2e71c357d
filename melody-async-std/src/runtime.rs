//! The async-std runtime seam: its global executor, async-io timers, the system clock.

use std::time::Instant;

use melody_driver::{BoxFuture, Runtime};

/// The driver's [`Runtime`] on async-std: tasks go to async-std's global executor
/// (`async_std::task::spawn`, `ASYNC_STD_THREAD_COUNT` threads, one per core unless
/// set), deadlines to async-io's timers (the ones async-std's own `sleep` uses).
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    fn spawn(&self, task: BoxFuture) {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(task));
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        let timer = async_io::Timer::at(deadline);
        Box::pin(async move {
            timer.await;
        })
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}
