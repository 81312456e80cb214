//! Leader election: only the holder of the Lease `k8s-oci-operator`
//! reconciles (kube-lease-manager keeps it). The Lease is released when the
//! process stops, so a standby takes over at once instead of waiting for it
//! to expire.

use std::time::Duration;

use anyhow::Context as _;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// This replica's part in the election.
pub struct Lease {
    identity: String,
    leading: watch::Receiver<bool>,
    task: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

impl Lease {
    /// Joins the election for the Lease in `namespace`; `duration`: seconds
    /// a Lease stays valid without renewal.
    pub async fn join(
        client: kube::Client,
        namespace: &str,
        duration: u64,
    ) -> anyhow::Result<Self> {
        let identity = std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("k8s-oci-operator-{}", uuid::Uuid::new_v4().simple()));
        let manager = LeaseManagerBuilder::new(client, "k8s-oci-operator")
            .with_namespace(namespace)
            .with_identity(&identity)
            .with_duration(duration)
            .with_grace((duration / 3).max(1))
            .build()
            .await
            .context("setting up leader election")?;
        let (leading, task) = manager.watch().await;
        Ok(Self {
            identity,
            leading,
            task,
        })
    }

    /// Resolves once this replica holds the Lease.
    pub async fn lead(&self) -> anyhow::Result<()> {
        info!(identity = %self.identity, "waiting to become the leader");
        let mut leading = self.leading.clone();
        leading
            .wait_for(|l| *l)
            .await
            .context("leader election stopped")?;
        info!(identity = %self.identity, "became the leader");
        Ok(())
    }

    /// Resolves when this replica no longer holds the Lease.
    pub async fn lost(&self) {
        let mut leading = self.leading.clone();
        let _ = leading.wait_for(|l| !*l).await;
    }

    /// Gives the Lease up (if held), waiting at most `within` for the API
    /// server: an unreachable one leaves the Lease to expire.
    pub async fn release(self, within: Duration) {
        // The manager releases the Lease once every receiver is gone.
        drop(self.leading);
        match tokio::time::timeout(within, self.task).await {
            Ok(Ok(Ok(_))) => info!(identity = %self.identity, "released the Lease"),
            Ok(Ok(Err(e))) => {
                warn!(identity = %self.identity, error = %e, "could not release the Lease; it expires by itself")
            }
            Ok(Err(e)) => warn!(identity = %self.identity, error = %e, "the Lease task failed"),
            Err(_) => {
                warn!(identity = %self.identity, "the Lease was not released in {} s; it expires by itself", within.as_secs())
            }
        }
    }
}
