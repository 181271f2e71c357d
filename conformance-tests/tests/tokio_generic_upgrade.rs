//! The conformance suite on melody-tokio the way an adapter without an HTTP integration
//! runs it: its own accept loop, `melody_tokio::accept` for plain upgrades, and the
//! suite's runtime-agnostic `upgrade_with_keys` for upgrades with keys. This checks
//! `upgrade_with_keys` itself, and `accept`.

use std::future::Future;
use std::io;
use std::time::Duration;

use conformance_tests::{conformance_suite, upgrade_with_keys, Backend, Upgrade};
use melody_tokio::{Config, ConnectionInfo, Melody, TokioRuntime, TokioTransport};

/// A melody-tokio server whose accept loop is written here.
pub struct GenericUpgradeBackend {
    runtime: Option<tokio::runtime::Runtime>,
    melody: Melody,
}

impl Backend for GenericUpgradeBackend {
    type Runtime = TokioRuntime;

    fn start(
        config: Config,
        listener: std::net::TcpListener,
        upgrade: Upgrade,
        setup: impl FnOnce(&Melody),
    ) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let melody = Melody::with_runtime(TokioRuntime, config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        setup(&melody);
        listener.set_nonblocking(true)?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let m = melody.clone();
        runtime.spawn(async move {
            let closed = m.closed();
            tokio::pin!(closed);
            loop {
                let (stream, remote) = tokio::select! {
                    biased;
                    () = &mut closed => return,
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let info = ConnectionInfo {
                    remote_addr: Some(remote),
                    local_addr: stream.local_addr().ok(),
                };
                match &upgrade {
                    Upgrade::Serve => melody_tokio::accept(&m, stream, info),
                    Upgrade::WithKeys(keys) => {
                        let task = upgrade_with_keys(
                            m.clone(),
                            TokioTransport(stream),
                            info,
                            keys.clone(),
                        );
                        tokio::spawn(task);
                    }
                }
            }
        });
        Ok(GenericUpgradeBackend {
            runtime: Some(runtime),
            melody,
        })
    }

    fn melody(&self) -> &Melody {
        &self.melody
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(rt) => rt.block_on(future),
            None => unreachable!("the runtime lives until stop"),
        }
    }

    fn stop(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

conformance_suite!(GenericUpgradeBackend);
