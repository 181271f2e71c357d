//! A chat room over `wss://`, with a self-signed certificate made at startup.
//!
//! `cargo run --release -p melody-tokio --example tls`. It prints its address and the
//! path of the certificate (PEM) it wrote, for clients to trust: a WebSocket client
//! given that file as its CA (Python's `ssl.create_default_context(cafile=...)`,
//! say), or `openssl s_client -connect 127.0.0.1:5443 -CAfile PATH` to see the TLS
//! side alone. `--addr HOST:PORT` picks another address.
//!
//! TLS sits in front of melody: tokio-rustls does the TLS handshake, then the
//! decrypted stream goes to `melody_tokio::accept`, which speaks WebSocket over any
//! tokio stream. Every message goes to every session.

use std::sync::Arc;
use std::time::Duration;

use melody_tokio::{ConnectionInfo, Melody};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// A client that opens TCP and never finishes TLS must not hold a task forever.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    examples_support::init_tracing();
    let addr = std::env::args()
        .skip_while(|a| a != "--addr")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5443".to_owned());

    // A fresh certificate for `localhost` and `127.0.0.1`, valid for this run only.
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let generated = rcgen::generate_simple_self_signed(names)?;
    let cert_path = std::env::temp_dir().join("melody-tls-example.pem");
    std::fs::write(&cert_path, generated.cert.pem())?;
    let chain: Vec<CertificateDer<'static>> = vec![generated.cert.der().clone()];
    let key = PrivateKeyDer::from(generated.signing_key);
    let tls = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    let acceptor = TlsAcceptor::from(Arc::new(tls));

    let melody = Melody::new();
    let room = melody.clone();
    melody.on_message(move |_session, text| {
        room.broadcast(text);
    });

    let listener = TcpListener::bind(&addr).await?;
    println!("tls: listening on wss://{}/", listener.local_addr()?);
    println!("tls: certificate written to {}", cert_path.display());

    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                eprintln!("tls: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let melody = melody.clone();
        tokio::spawn(async move {
            let info = ConnectionInfo {
                remote_addr: Some(remote),
                local_addr: tcp.local_addr().ok(),
            };
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => melody_tokio::accept(&melody, stream, info),
                Ok(Err(e)) => eprintln!("tls: handshake with {remote}: {e}"),
                Err(_) => eprintln!("tls: handshake with {remote} timed out"),
            }
        });
    }
}
