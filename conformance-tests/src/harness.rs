//! What every case uses: a started server, a recorder of handler calls, bounded waits.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use melody_core::{Config, Keys};
use melody_driver::{Error, Melody, Session};

use crate::backend::{Backend, Upgrade};

/// A running server for one case; stopped when dropped.
pub(crate) struct Server<B: Backend> {
    backend: Option<B>,
    pub(crate) addr: SocketAddr,
}

impl<B: Backend> Server<B> {
    /// Binds `127.0.0.1:0` and starts `B` on it with `config`, `upgrade` and `setup`.
    pub(crate) fn start(
        config: Config,
        upgrade: Upgrade,
        setup: impl FnOnce(&Melody<B::Runtime>),
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let backend = B::start(config, listener, upgrade, setup)
            .unwrap_or_else(|e| panic!("the backend failed to start: {e}"));
        Server {
            backend: Some(backend),
            addr,
        }
    }

    /// Starts with plain [`Upgrade::Serve`].
    pub(crate) fn serve(config: Config, setup: impl FnOnce(&Melody<B::Runtime>)) -> Self {
        Self::start(config, Upgrade::Serve, setup)
    }

    pub(crate) fn melody(&self) -> &Melody<B::Runtime> {
        self.backend().melody()
    }

    fn backend(&self) -> &B {
        match &self.backend {
            Some(b) => b,
            None => unreachable!("the backend is only taken on drop"),
        }
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.backend().block_on(future)
    }

    /// The session whose peer is `remote`, waiting for it to appear.
    pub(crate) fn session(&self, remote: SocketAddr) -> Session<B::Runtime> {
        let mut found = None;
        wait_until(Duration::from_secs(5), "the session to be listed", || {
            found = self
                .melody()
                .sessions()
                .into_iter()
                .find(|s| s.remote_addr() == Some(remote));
            found.is_some()
        });
        found.unwrap_or_else(|| unreachable!())
    }

    /// Waits until `len()` is `n`.
    pub(crate) fn wait_len(&self, n: usize) {
        let melody = self.melody();
        wait_until(Duration::from_secs(5), &format!("len() == {n}"), || {
            melody.len() == n
        });
    }
}

impl<B: Backend> Drop for Server<B> {
    fn drop(&mut self) {
        if let Some(backend) = self.backend.take() {
            backend.stop();
        }
    }
}

/// Polls `cond` every few milliseconds until it holds; panics after `timeout`.
pub(crate) fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A default config with fast timers where cases need them.
pub(crate) fn config() -> Config {
    Config::default().timer_granularity(Duration::from_millis(10))
}

/// Both upgrade modes; the keys mode tags each session with `"via": "keys"`.
pub(crate) fn modes() -> [Upgrade; 2] {
    [
        Upgrade::Serve,
        Upgrade::WithKeys(Arc::new(|_request| {
            let mut keys = Keys::new();
            keys.set("via", String::from("keys"));
            keys
        })),
    ]
}

// ---- recording handler calls ----------------------------------------------------------

/// One handler call, as a case checks it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Call {
    Connect,
    Text(String),
    Binary(Vec<u8>),
    Pong,
    Close(u16, String),
    Sent(String),
    SentBinary(Vec<u8>),
    Error(Error),
    Dropped(u64),
    Disconnect,
}

/// Handler calls per peer address, in the order they were made.
#[derive(Default)]
pub(crate) struct Recorder {
    calls: Mutex<Vec<(Option<SocketAddr>, Call)>>,
    changed: Condvar,
}

impl Recorder {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Recorder::default())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Option<SocketAddr>, Call)>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn record<R: melody_driver::Runtime>(&self, s: &Session<R>, call: Call) {
        self.lock().push((s.remote_addr(), call));
        self.changed.notify_all();
    }

    /// The calls made for the session of peer `remote`.
    pub(crate) fn of(&self, remote: SocketAddr) -> Vec<Call> {
        self.lock()
            .iter()
            .filter(|(a, _)| *a == Some(remote))
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Every call.
    pub(crate) fn all(&self) -> Vec<(Option<SocketAddr>, Call)> {
        self.lock().clone()
    }

    /// Waits until `cond` holds over all calls; panics after `timeout`.
    pub(crate) fn wait(
        &self,
        timeout: Duration,
        what: &str,
        mut cond: impl FnMut(&[(Option<SocketAddr>, Call)]) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        let mut calls = self.lock();
        loop {
            if cond(&calls) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("timed out after {timeout:?} waiting for {what}; calls: {calls:?}");
            }
            calls = self
                .changed
                .wait_timeout(calls, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until the session of `remote` has had its `on_disconnect`.
    pub(crate) fn wait_disconnect(&self, remote: SocketAddr) {
        self.wait(
            Duration::from_secs(5),
            &format!("on_disconnect of {remote}"),
            |calls| {
                calls
                    .iter()
                    .any(|(a, c)| *a == Some(remote) && *c == Call::Disconnect)
            },
        );
    }

    /// Installs recording `on_connect`, `on_disconnect`, `on_pong`, `on_error`,
    /// `on_dropped` and `on_close` handlers.
    pub(crate) fn lifecycle<R: melody_driver::Runtime>(self: &Arc<Self>, m: &Melody<R>) {
        let r = self.clone();
        m.on_connect(move |s| r.record(s, Call::Connect));
        let r = self.clone();
        m.on_disconnect(move |s| r.record(s, Call::Disconnect));
        let r = self.clone();
        m.on_pong(move |s| r.record(s, Call::Pong));
        let r = self.clone();
        m.on_error(move |s, e| r.record(s, Call::Error(e.clone())));
        let r = self.clone();
        m.on_dropped(move |s, count| r.record(s, Call::Dropped(count)));
        let r = self.clone();
        m.on_close(move |s, code, reason| r.record(s, Call::Close(code, reason.to_owned())));
    }
}

/// Installs echo handlers: text back as text, binary back as binary.
pub(crate) fn echo<R: melody_driver::Runtime>(m: &Melody<R>) {
    m.on_message(|s, text| {
        let _ = s.write(text);
    });
    m.on_message_binary(|s, data| {
        let _ = s.write_binary(data);
    });
}

/// Raises the soft open-file limit to at least `want` (bounded by the hard limit);
/// returns the limit in force.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // `rlim_t` is not `u64` everywhere
pub(crate) fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let current = lim.rlim_cur as u64;
    if current >= want {
        return current;
    }
    let target = want.min(lim.rlim_max as u64);
    let new = libc::rlimit {
        rlim_cur: target as libc::rlim_t,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: `new` is a valid rlimit read by the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
        target
    } else {
        current
    }
}

/// Elsewhere the limit is left as it is.
#[cfg(not(unix))]
pub(crate) fn raise_fd_limit(want: u64) -> u64 {
    want
}

/// Runs `case` on its own thread and fails it if it has not finished within `limit`,
/// so that a hanging adapter fails the case instead of the whole run.
#[doc(hidden)]
pub fn run_case(name: &'static str, limit: Duration, case: fn()) {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _done = DoneOnDrop(done_tx);
            case();
        })
        .unwrap_or_else(|e| panic!("cannot spawn the thread of case {name}: {e}"));
    match done_rx.recv_timeout(limit) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("case {name} did not finish within {limit:?}: the adapter hangs")
        }
    }
}

struct DoneOnDrop(std::sync::mpsc::Sender<()>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}
