//! k8s-oci-operator: manages OCI reserved public IPs as `ReservedIP` resources.
//!
//! Modules, one job each:
//! - [`crd`]: the `ReservedIP` resource (spec, status, admission validation).
//! - [`oci`]: the narrow OCI networking interface the operator uses, and its
//!   implementation over HTTP with oci-rust-sdk's request signing.

pub mod crd;
pub mod oci;
