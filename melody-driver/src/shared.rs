//! State shared by a `Melody`, its sessions, its connection tasks and its clock.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use crate::backplane::Attached;
use crate::handlers::Handlers;
use crate::shard::{ClockSignal, Shard, Slot, Waiters};
use crate::Runtime;
use melody_core::{Config, ConfigError, Hub};

pub(crate) struct Shared<R: Runtime> {
    pub(crate) rt: R,
    pub(crate) config: Config,
    pub(crate) shards: Box<[Shard]>,
    next_shard: AtomicUsize,
    handlers: RwLock<Arc<Handlers<R>>>,
    /// Open sessions across shards (the session cap applies to it).
    pub(crate) open: Arc<AtomicUsize>,
    /// Connection tasks still running.
    pub(crate) connections: AtomicUsize,
    pub(crate) clock: ClockSignal,
    pub(crate) clock_started: AtomicBool,
    /// Set by `close`/`shutdown`: no new connection is served.
    pub(crate) closed: AtomicBool,
    /// Woken when `closed` is set, and when the last connection ends.
    pub(crate) waiters: Waiters,
    /// Set once by `attach_backplane`: broadcasts and publishes are also forwarded there.
    pub(crate) backplane: OnceLock<Attached>,
}

impl<R: Runtime> Shared<R> {
    pub(crate) fn new(rt: R, config: Config, shards: usize) -> Result<Self, ConfigError> {
        config.validate()?;
        let now = rt.now();
        let open = Arc::new(AtomicUsize::new(0));
        let shards = (0..shards.max(1))
            .map(|_| {
                let mut hub: Hub<Slot> = Hub::new(config.clone(), now)?;
                hub.share_session_count(open.clone());
                Ok(Shard::new(hub))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?
            .into_boxed_slice();
        Ok(Shared {
            clock: ClockSignal::new(now),
            rt,
            config,
            shards,
            next_shard: AtomicUsize::new(0),
            handlers: RwLock::new(Arc::new(Handlers::default())),
            open,
            connections: AtomicUsize::new(0),
            clock_started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waiters: Waiters::default(),
            backplane: OnceLock::new(),
        })
    }

    /// Spreads connections over the shards in turn.
    pub(crate) fn pick_shard(&self) -> usize {
        self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len()
    }

    pub(crate) fn handlers(&self) -> Arc<Handlers<R>> {
        match self.handlers.read() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn update_handlers(&self, update: impl FnOnce(&mut Handlers<R>)) {
        let mut guard = match self.handlers.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = (**guard).clone();
        update(&mut next);
        let wants_sent = next.wants_sent();
        *guard = Arc::new(next);
        drop(guard);
        for shard in self.shards.iter() {
            shard.with(&self.clock, |hub| hub.set_sent_events(wants_sent));
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A connection task ended.
    pub(crate) fn connection_done(&self) {
        if self.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.waiters.wake_all();
        }
    }
}
