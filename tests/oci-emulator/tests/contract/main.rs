//! Contract tests: the emulator driven through k8s-oci-operator's
//! `HttpOciClient`, the way the operator talks to OCI. Every test starts its
//! own emulator (sandbox seed, fast lifecycle) on an ephemeral port, so tests
//! run in parallel.

mod admin;
mod denials;
mod faults;
mod lifecycle;
mod lookups;
mod rules;
mod signing;
mod support;
