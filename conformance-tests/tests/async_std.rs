//! The conformance suite on melody-async-std: `serve` for plain upgrades, and the
//! suite's runtime-agnostic `upgrade_with_keys` over `FuturesIoTransport` for upgrades
//! with keys (async-std has no HTTP integration of its own).
//!
//! Servers run on async-std's global executor, the only one it has, so `stop` cannot
//! drop their tasks the way a tokio runtime's shutdown does: it closes the instance
//! (1001 to every session, whose tasks then end by themselves) and cancels the accept
//! loop, which frees the listener.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use async_std::net::TcpListener;
use async_std::task::{self, JoinHandle};
use conformance_tests::{conformance_suite, upgrade_with_keys, Backend, KeysFn, Upgrade};
use melody_async_std::{AsyncStdRuntime, Config, ConnectionInfo, FuturesIoTransport, Melody};

/// A melody-async-std server on async-std's global executor.
pub struct AsyncStdBackend {
    accepting: Option<JoinHandle<()>>,
    melody: Melody,
}

impl Backend for AsyncStdBackend {
    type Runtime = AsyncStdRuntime;
    const SERVE_LEAVES_REACTOR: bool = cfg!(unix);

    fn start(
        config: Config,
        listener: std::net::TcpListener,
        upgrade: Upgrade,
        setup: impl FnOnce(&Melody),
    ) -> io::Result<Self> {
        let melody = Melody::with_runtime(AsyncStdRuntime, config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        setup(&melody);
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from(listener);
        let m = melody.clone();
        let accepting = task::spawn(async move {
            match upgrade {
                Upgrade::Serve => {
                    let _ = melody_async_std::serve(&m, listener).await;
                }
                Upgrade::WithKeys(keys) => accept_with_keys(&m, &listener, &keys).await,
            }
        });
        Ok(AsyncStdBackend {
            accepting: Some(accepting),
            melody,
        })
    }

    fn melody(&self) -> &Melody {
        &self.melody
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        task::block_on(future)
    }

    fn stop(mut self) {
        self.melody.close();
        if let Some(accepting) = self.accepting.take() {
            task::block_on(accepting.cancel());
        }
    }
}

/// The accept loop of `Upgrade::WithKeys`, until the instance closes: each accepted
/// connection's upgrade is answered by `upgrade_with_keys` on a task of its own.
async fn accept_with_keys(melody: &Melody, listener: &TcpListener, keys: &KeysFn) {
    let mut closed = pin!(melody.closed());
    loop {
        let mut accept = pin!(listener.accept());
        let accepted = poll_fn(|cx| match closed.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => accept.as_mut().poll(cx).map(Some),
        })
        .await;
        let Some(accepted) = accepted else { return };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let local_addr = stream.local_addr().ok();
                let info = ConnectionInfo {
                    local_addr,
                    remote_addr: Some(peer),
                };
                let transport = FuturesIoTransport::new(stream);
                let upgrade = upgrade_with_keys(melody.clone(), transport, info, keys.clone());
                drop(task::spawn(upgrade));
            }
            // One connection's failure, or out of descriptors: pause, then go on.
            Err(_) => task::sleep(Duration::from_millis(10)).await,
        }
    }
}

conformance_suite!(AsyncStdBackend);
