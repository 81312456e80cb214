//! Contract tests: the emulator driven through k8s-oci-operator's
//! `HttpOciClient`, the way the operator talks to OCI. Every test starts its
//! own emulator (sandbox seed, fast lifecycle) on an ephemeral port, so tests
//! run in parallel.

mod admin;
mod api_key_fields;
mod denials;
mod faults;
mod identity;
mod lifecycle;
mod lookups;
mod rules;
mod session_auth;
mod session_profile;
mod signing;
mod support;
