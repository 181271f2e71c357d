//! The conformance suite on melody-smol: `serve` for plain upgrades, and the suite's
//! runtime-agnostic `upgrade_with_keys` over `FuturesIoTransport` for upgrades with
//! keys (smol has no HTTP integration of its own).
//!
//! Servers run on smol's global executor, as `SmolRuntime::new()` applications do, so
//! `stop` cannot drop their tasks the way a tokio runtime's shutdown does: it closes
//! the instance (1001 to every session, whose tasks then end by themselves) and cancels
//! the accept loop, which frees the listener.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::Duration;

use conformance_tests::{conformance_suite, upgrade_with_keys, Backend, KeysFn, Upgrade};
use melody_smol::{Config, ConnectionInfo, FuturesIoTransport, Melody, SmolRuntime};
use smol::net::TcpListener;
use smol::{future, Task, Timer};

/// A melody-smol server on smol's global executor.
pub struct SmolBackend {
    accepting: Option<Task<()>>,
    melody: Melody,
}

impl Backend for SmolBackend {
    type Runtime = SmolRuntime;
    const SERVE_LEAVES_REACTOR: bool = cfg!(unix);

    fn start(
        config: Config,
        listener: std::net::TcpListener,
        upgrade: Upgrade,
        setup: impl FnOnce(&Melody),
    ) -> io::Result<Self> {
        let melody = Melody::with_runtime(SmolRuntime::new(), config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        setup(&melody);
        // `Async::new` inside makes the listener non-blocking.
        let listener = TcpListener::try_from(listener)?;
        let m = melody.clone();
        let accepting = match upgrade {
            Upgrade::Serve => smol::spawn(async move {
                let _ = melody_smol::serve(&m, listener).await;
            }),
            Upgrade::WithKeys(keys) => smol::spawn(accept_with_keys(m, listener, keys)),
        };
        Ok(SmolBackend {
            accepting: Some(accepting),
            melody,
        })
    }

    fn melody(&self) -> &Melody {
        &self.melody
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        smol::block_on(future)
    }

    fn stop(mut self) {
        self.melody.close();
        if let Some(task) = self.accepting.take() {
            smol::block_on(task.cancel());
        }
    }
}

/// The accept loop of `Upgrade::WithKeys`: each connection's upgrade is answered by
/// `upgrade_with_keys`, on a task of its own.
async fn accept_with_keys(melody: Melody, listener: TcpListener, keys: KeysFn) {
    let mut closed = pin!(melody.closed());
    loop {
        let closing = async {
            closed.as_mut().await;
            None
        };
        let next = async { Some(listener.accept().await) };
        match future::or(closing, next).await {
            None => return,
            Some(Ok((stream, remote))) => {
                let _ = stream.set_nodelay(true);
                let info = ConnectionInfo {
                    remote_addr: Some(remote),
                    local_addr: stream.local_addr().ok(),
                };
                let transport = FuturesIoTransport::new(stream);
                smol::spawn(upgrade_with_keys(
                    melody.clone(),
                    transport,
                    info,
                    keys.clone(),
                ))
                .detach();
            }
            Some(Err(_)) => {
                Timer::after(Duration::from_millis(10)).await;
            }
        }
    }
}

conformance_suite!(SmolBackend);
