//! How the `server` example ends: gracefully on Ctrl-C, with an exit code.

use std::error::Error;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::process::ExitCode;
use std::task::Poll;
use std::time::Duration;

use melody_driver::{Melody, Runtime};

/// Runs `serve` until `interrupt` resolves (Ctrl-C), then shuts `melody` down
/// gracefully and prints what shutdown did. Returns early if `serve` fails. The
/// interrupt is the caller's: catching a signal is each runtime's own.
pub async fn serve_until_interrupted<R: Runtime>(
    melody: &Melody<R>,
    serve: impl Future<Output = io::Result<()>>,
    interrupt: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut serve = pin!(serve);
    let mut interrupt = pin!(interrupt);
    let interrupted = std::future::poll_fn(|cx| {
        if let Poll::Ready(result) = serve.as_mut().poll(cx) {
            return Poll::Ready(result.map(|()| false));
        }
        interrupt.as_mut().poll(cx).map(|()| Ok(true))
    })
    .await?;
    if interrupted {
        let report = melody.shutdown(Duration::from_secs(5)).await;
        println!("server: shut down: {report:?}");
    }
    Ok(())
}

/// The process's exit code for what `main` returned.
pub fn exit_code(result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e}");
            ExitCode::FAILURE
        }
    }
}
