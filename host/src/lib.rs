//! k8s-oci-operator: manages OCI reserved public IPs as `ReservedIP` resources.
//!
//! The lifecycle of one ReservedIP runs through these modules (see
//! `docs/architecture.md`):
//! - [`api`]: the `ReservedIP` resource (spec, status, admission validation)
//!   and its conditions.
//! - [`controller`]: kube-runtime's controller and one pass over a
//!   ReservedIP: observe, decide, act, record; cleanup; the orphan sweep.
//! - [`decide`]: every decision, as pure functions of what a pass observed.
//! - [`resolve`]: a pod or private IP address to its OCI private IP.
//! - [`cache`]: what spares calls between passes (our own status writes, a
//!   shared listing of the compartment's public IPs).
//! - [`oci`]: the narrow OCI networking interface the operator uses, and its
//!   implementation over HTTP, signed by the project's own signer.
//! - [`policy`]: the WebAssembly policy engine (tag defaults, pool selection,
//!   assignment eligibility); [`policy_cli`]: `k8s-oci-operator policy eval` and `policy test`.
//! - [`health`]: the probes (`/healthz`, `/readyz`) and `/metrics`;
//!   [`metrics`]: what `/metrics` serves;
//!   [`shutdown`]: SIGTERM; [`leader`]: the leader-election Lease.
//! - [`workloads`]: ReservedIPs the operator creates for labelled pods and
//!   StatefulSets, and the IP shown on their pods.
//! - [`cidr`]: IPv4 CIDR blocks.
//! - [`config`]: the operator's settings (flags and environment);
//!   [`check`]: `k8s-oci-operator check`, the installation checklist.
//! - [`crash_point`]: aborts at a chosen point, for the crash tests only.

pub mod api;
pub mod build_info;
pub mod cache;
pub mod check;
pub mod cidr;
pub mod config;
pub mod controller;
pub mod crash_point;
pub mod decide;
pub mod events;
pub mod health;
pub mod heap;
pub mod leader;
pub mod metrics;
pub mod oci;
pub mod policy;
pub mod policy_cli;
pub mod resolve;
pub mod shutdown;
pub mod workloads;

/// This crate's directory in the checkout being tested. Cargo sets
/// `CARGO_MANIFEST_DIR` when it runs tests; the compile-time value is stale
/// when one target dir serves several checkouts (cargo reuses the build).
#[cfg(test)]
pub(crate) fn checkout_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
