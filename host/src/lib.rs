//! k8s-oci-operator: manages OCI reserved public IPs as `ReservedIP` resources.
//!
//! Modules, one job each:
//! - [`crd`]: the `ReservedIP` resource (spec, status, admission validation).
//! - [`reconcile`]: the controller: observe, decide, act, record.
//! - [`plan`]: the pure decision of the next step, unit-tested without I/O.
//! - [`pod_ip`]: resolving a pod or private IP address to its OCI private IP.
//! - [`ownership`]: the tags that say which public IP belongs to whom.
//! - [`own_writes`]: telling the watch echo of our own status writes from real changes.
//! - [`ip_listing`]: a recent listing of the compartment's public IPs, shared
//!   so a wave of reconciles costs one list instead of a GET each.
//! - [`orphans`]: releasing tagged public IPs whose ReservedIP is gone.
//! - [`conditions`]: status conditions per the Kubernetes API conventions.
//! - [`config`]: the operator's settings (flags and environment).
//! - [`crash_point`]: aborts at a chosen point, for the crash tests only.
//! - [`policy`]: the WebAssembly policy engine (tag defaults, pool selection,
//!   assignment eligibility); [`policy_gate`] applies it in a reconcile.
//! - [`oci`]: the narrow OCI networking interface the operator uses, and its
//!   implementation over HTTP with oci-rust-sdk's request signing.

pub mod conditions;
pub mod config;
pub mod crash_point;
pub mod crd;
pub mod ip_listing;
pub mod oci;
pub mod orphans;
pub mod own_writes;
pub mod ownership;
pub mod plan;
pub mod pod_ip;
pub mod policy;
pub mod policy_eval;
pub mod policy_gate;
pub mod reconcile;

/// This crate's directory in the checkout being tested. Cargo sets
/// `CARGO_MANIFEST_DIR` when it runs tests; the compile-time value is stale
/// when one target dir serves several checkouts (cargo reuses the build).
#[cfg(test)]
pub(crate) fn checkout_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
