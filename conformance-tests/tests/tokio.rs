//! The conformance suite on melody-tokio: `serve` for plain upgrades, and the axum
//! integration (`handle_request_with_keys`) for upgrades with keys.

use std::future::Future;
use std::io;
use std::time::Duration;

use conformance_tests::{conformance_suite, Backend, Upgrade};
use melody_tokio::axum::ConnectionAddrs;
use melody_tokio::{Config, Melody, TokioRuntime};

/// A melody-tokio server on its own multi-threaded runtime.
pub struct TokioBackend {
    runtime: Option<tokio::runtime::Runtime>,
    melody: Melody,
}

impl Backend for TokioBackend {
    type Runtime = TokioRuntime;
    const SERVE_LEAVES_REACTOR: bool = cfg!(unix);

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
        match upgrade {
            Upgrade::Serve => {
                runtime.spawn(async move {
                    let _ = melody_tokio::serve(&m, listener).await;
                });
            }
            Upgrade::WithKeys(keys) => {
                let handler = move |request: axum::extract::Request| {
                    let (m, keys) = (m.clone(), keys.clone());
                    async move {
                        let mut head = melody_core::Request::new(());
                        *head.uri_mut() = request.uri().clone();
                        *head.headers_mut() = request.headers().clone();
                        let keys = keys(&head);
                        melody_tokio::axum::handle_request_with_keys(&m, request, keys).await
                    }
                };
                let app = axum::Router::new().fallback(handler);
                let closed = melody.closed();
                runtime.spawn(async move {
                    // Not axum's `SocketAddr`: that is the peer's address only, and the
                    // sessions must know their local address too.
                    let service = app.into_make_service_with_connect_info::<ConnectionAddrs>();
                    let _ = axum::serve(listener, service)
                        .with_graceful_shutdown(closed)
                        .await;
                });
            }
        }
        Ok(TokioBackend {
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

conformance_suite!(TokioBackend);
