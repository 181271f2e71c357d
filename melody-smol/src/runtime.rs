//! The smol runtime seam: spawn on smol's global executor or on one of yours; timers
//! from async-io; the system clock.

use std::sync::Arc;
use std::time::Instant;

use melody_driver::{BoxFuture, Runtime};
use smol::{Executor, Timer};

/// The driver's [`Runtime`] on smol.
///
/// By default ([`SmolRuntime::new`], `Default`) tasks go to smol's global executor
/// (`smol::spawn`, run by `SMOL_THREADS` threads, one unless set). With
/// [`SmolRuntime::with_executor`] they go to an executor the application runs itself,
/// on as many threads as it likes.
#[derive(Debug, Clone, Default)]
pub struct SmolRuntime {
    executor: Option<Arc<Executor<'static>>>,
}

impl SmolRuntime {
    /// Spawns on smol's global executor.
    pub fn new() -> Self {
        SmolRuntime::default()
    }

    /// Spawns on `executor`. Sessions make progress only while the application runs it
    /// (`executor.run(..)` on one or more threads).
    pub fn with_executor(executor: Arc<Executor<'static>>) -> Self {
        SmolRuntime {
            executor: Some(executor),
        }
    }
}

impl Runtime for SmolRuntime {
    fn spawn(&self, task: BoxFuture) {
        match &self.executor {
            Some(executor) => executor.spawn(task).detach(),
            None => smol::spawn(task).detach(),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        let timer = Timer::at(deadline);
        Box::pin(async move {
            timer.await;
        })
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}
