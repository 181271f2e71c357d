//! State shared by a `Melody`, its sessions, its connection tasks and its clock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use melody_core::history::HistoryRules;
use melody_core::{Config, ConfigError, Hub};

use crate::clock::{ClockSignal, Timed};
use crate::handlers::Handlers;
use crate::history::SharedHistory;
use crate::link::Attached;
use crate::runtime::Runtime;
use crate::shard::Shard;
use crate::slot::Slot;
use crate::unparker::Unparker;
use crate::wait::Lifecycle;

/// A connection's copy of the handlers and the version it was taken at (see
/// [`Shared::take_handlers`]).
pub(crate) struct HandlersCache<R: Runtime>(Option<(u64, Arc<Handlers<R>>)>);

impl<R: Runtime> Default for HandlersCache<R> {
    fn default() -> Self {
        HandlersCache(None)
    }
}

impl<R: Runtime> HandlersCache<R> {
    /// Keeps `handlers`, taken at `version`, for the next event.
    pub(crate) fn keep(&mut self, version: u64, handlers: Arc<Handlers<R>>) {
        self.0 = Some((version, handlers));
    }
}

pub(crate) struct Shared<R: Runtime> {
    pub(crate) rt: R,
    pub(crate) config: Config,
    pub(crate) shards: Box<[Shard]>,
    next_shard: AtomicUsize,
    handlers: RwLock<Arc<Handlers<R>>>,
    /// Bumped whenever the handlers change: a connection keeps the ones it last took
    /// (see [`HandlersCache`]).
    handlers_version: AtomicU64,
    /// Open sessions across shards (the session cap applies to it).
    pub(crate) open: Arc<AtomicUsize>,
    pub(crate) clock: ClockSignal,
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Request hooks that panicked (each request was refused with 500).
    pub(crate) hook_panics: AtomicU64,
    /// Set once by `attach_backplane`: broadcasts and publishes are also forwarded there.
    pub(crate) backplane: OnceLock<Attached>,
    /// Topic histories, one store for every shard (see `history.rs`).
    pub(crate) history: SharedHistory,
    /// Brings parked (quiet, taskless) connections back to a task (see `dormant.rs`).
    pub(crate) unparker: Arc<Unparker>,
    /// Watches parked connections' sockets that left their runtime's reactor.
    #[cfg(unix)]
    pub(crate) idle_watch: crate::idle_watch::IdleWatch,
}

impl<R: Runtime> Shared<R> {
    pub(crate) fn new(rt: R, config: Config, shards: usize) -> Result<Self, ConfigError> {
        config.validate()?;
        let now = rt.now();
        let open = Arc::new(AtomicUsize::new(0));
        // The shards keep no history of their own: positions come from the one store
        // they share, so that a topic has one sequence across shards.
        let shard_config = config.clone().history(HistoryRules::new());
        // One memory budget for the instance, whichever shard holds the bytes.
        let memory_held = Arc::new(AtomicUsize::new(0));
        let shards = (0..shards.max(1))
            .map(|_| {
                let mut hub: Hub<Slot> = Hub::new(shard_config.clone(), now)?;
                hub.share_session_count(open.clone());
                hub.share_memory_budget(memory_held.clone());
                // `Sent` events only while a handler wants them (see `update_handlers`).
                hub.set_sent_events(false);
                Ok(Shard::new(hub))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?
            .into_boxed_slice();
        Ok(Shared {
            history: SharedHistory::new(config.history.clone()),
            clock: ClockSignal::new(now),
            rt,
            config,
            shards,
            next_shard: AtomicUsize::new(0),
            handlers: RwLock::new(Arc::new(Handlers::default())),
            handlers_version: AtomicU64::new(0),
            open,
            lifecycle: Arc::default(),
            backplane: OnceLock::new(),
            hook_panics: AtomicU64::new(0),
            unparker: Arc::default(),
            #[cfg(unix)]
            idle_watch: Default::default(),
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

    /// The handlers, moved out of `cache` while they have not changed since it took
    /// them: no lock and no reference count per event (four atomic operations, each a
    /// locked instruction, where an echo's turn has few others). Give them back with
    /// [`HandlersCache::keep`].
    pub(crate) fn take_handlers(&self, cache: &mut HandlersCache<R>) -> (u64, Arc<Handlers<R>>) {
        // The version first: handlers changed after it are taken again next time.
        let version = self.handlers_version.load(Ordering::Acquire);
        match cache.0.take() {
            Some((seen, handlers)) if seen == version => (seen, handlers),
            _ => (version, self.handlers()),
        }
    }

    /// Changes the handlers; `Sent` events are produced exactly while an `on_sent`
    /// handler is registered, and requests wait for a verdict exactly while a request
    /// hook is.
    pub(crate) fn update_handlers(&self, update: impl FnOnce(&mut Handlers<R>)) {
        let mut guard = match self.handlers.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = (**guard).clone();
        update(&mut next);
        let wants_sent = next.wants_sent();
        let wants_verdicts = next.wants_verdicts();
        *guard = Arc::new(next);
        self.handlers_version.fetch_add(1, Ordering::Release);
        drop(guard);
        for shard in self.shards.iter() {
            shard.with(&self.clock, |hub| {
                hub.set_sent_events(wants_sent);
                hub.set_request_verdicts(wants_verdicts);
            });
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }
}

impl<R: Runtime> Timed for Shared<R> {
    type Rt = R;

    fn runtime(&self) -> &R {
        &self.rt
    }

    fn clock(&self) -> &ClockSignal {
        &self.clock
    }

    fn fire(&self, now: Instant) {
        for shard in self.shards.iter() {
            shard.with(&self.clock, |hub| hub.handle_timeout(now));
        }
        self.history.evict_expired(now);
    }

    fn wound_down(&self) -> bool {
        self.lifecycle.is_closed() && self.lifecycle.connections() == 0
    }
}
