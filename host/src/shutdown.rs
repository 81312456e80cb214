//! Shutting down on SIGTERM (or SIGINT): the first asks for a graceful stop
//! (no new pass begins, passes under way may finish, the Lease is released);
//! a second ends the process at once. The caller bounds the graceful part
//! with a deadline ([`Stop::past`]), so the process ends within the pod's
//! grace period whatever state it is in: the API server unreachable, OCI
//! slow, mid-pass (an abandoned pass is what the crash-safety machinery
//! covers: allocation marker, retry token, tags).

use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

/// Whether (and since when) a stop was asked for. Cheap to clone.
#[derive(Clone)]
pub struct Stop {
    asked: watch::Receiver<Option<Instant>>,
}

impl Stop {
    /// Listens for SIGTERM and SIGINT from now on.
    pub fn on_signals() -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, asked) = watch::channel(None);
        tokio::spawn(async move {
            let mut signals = 0;
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                signals += 1;
                if signals == 1 {
                    info!(
                        signal = name,
                        "stopping: no new passes; those under way may finish"
                    );
                    let _ = tx.send(Some(Instant::now()));
                } else {
                    warn!(signal = name, "second signal: exiting at once");
                    std::process::exit(130);
                }
            }
        });
        Ok(Self { asked })
    }

    /// Resolves once a stop was asked for.
    pub async fn asked(&self) {
        let mut asked = self.asked.clone();
        if asked.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves `after` a stop was asked for.
    pub async fn past(&self, after: Duration) {
        self.asked().await;
        let since = (*self.asked.borrow()).unwrap_or_else(Instant::now);
        tokio::time::sleep_until((since + after).into()).await;
    }
}
