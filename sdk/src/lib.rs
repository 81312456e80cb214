//! SDK for k8s-oci-operator policies (WebAssembly modules that decide tag
//! defaults, pool selection and assignment eligibility per namespace).
//!
//! The policy ABI is not defined yet; this crate only reserves the name and
//! the place in the workspace.
