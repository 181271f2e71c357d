//! What the examples report: `tracing` output on stderr, filtered by `RUST_LOG`, and,
//! with the `metrics` feature, melody's metrics for Prometheus.

/// Installs a `tracing` subscriber that prints to stderr what `RUST_LOG` lets through
/// (`RUST_LOG=melody=debug` shows every session's span and events; warnings only when
/// unset). Built with its adapter's `tracing` feature, melody reports there.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second call (several examples in one test process) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Serves melody's metrics in Prometheus text format at `http://ADDR/metrics` (any
/// path answers), from a thread of the exporter's own. Returns an error saying how to
/// get them when the example was built without its adapter's `metrics` feature.
pub fn serve_metrics(addr: &str) -> Result<std::net::SocketAddr, Box<dyn std::error::Error>> {
    let addr: std::net::SocketAddr = addr.parse()?;
    #[cfg(feature = "metrics")]
    {
        // Port 0 asks for a free port; the exporter does not say which it got, so bind
        // one first and hand it over.
        let listener = std::net::TcpListener::bind(addr)?;
        let bound = listener.local_addr()?;
        drop(listener);
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(bound)
            .install()?;
        Ok(bound)
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = addr;
        Err("--metrics-addr needs the adapter's `metrics` feature: \
             cargo run --release --features metrics --example server -- …"
            .into())
    }
}
