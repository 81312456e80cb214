//! Why a pass stops with an error (retried by the controller's error policy).

/// Errors that stop a pass. OCI errors are not among them: they are
/// recorded in status and retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Marker(#[from] MarkerError),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("{0} has no namespace or UID")]
    Incomplete(String),
    /// Cleanup waits for OCI to finish a change; not a failure.
    #[error("release in progress: {0}")]
    CleanupPending(String),
    /// An OCI call failed during cleanup; retried with backoff.
    #[error("{0}")]
    Oci(String),
}

impl Error {
    /// The reason the metrics give a pass that ended with this error
    /// (`crate::metrics::ERROR_REASONS`); `None` for a release still under
    /// way, which is waiting, not failing.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::Kube(_) => Some("KubernetesAPI"),
            Self::Marker(_) => Some("AllocationMarker"),
            Self::Incomplete(_) => Some("Incomplete"),
            Self::CleanupPending(_) => None,
            Self::Oci(_) => Some("OCI"),
            Self::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.reason(),
                // Adding or removing the finalizer, or an object without a name.
                _ => Some("KubernetesAPI"),
            },
        }
    }
}

/// The allocation marker could not be recorded, so the create was not made.
#[derive(Debug, thiserror::Error)]
#[error("recording the allocation marker before creating the public IP: {0}")]
pub struct MarkerError(#[source] pub kube::Error);
