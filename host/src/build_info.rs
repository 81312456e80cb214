//! What this binary is: version, the git commit it was built from and the
//! target it was built for (stamped by build.rs). Shown by `--version` and
//! the `build_info` metric.

/// The crate version (the release's version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit of a release build (`make dist`), or `unknown`.
pub const COMMIT: &str = env!("K8S_OCI_OPERATOR_COMMIT");

/// The target triple, e.g. `aarch64-unknown-linux-musl`.
pub const TARGET: &str = env!("K8S_OCI_OPERATOR_TARGET");

/// `--version`'s text after the program name:
/// `0.1.0 (commit 1a2b3c4, x86_64-unknown-linux-musl)`.
pub const LONG_VERSION: &str = env!("K8S_OCI_OPERATOR_LONG_VERSION");
