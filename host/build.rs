//! Stamps the binary with what `--version` and the `build_info` metric show:
//! the git commit (`K8S_OCI_OPERATOR_COMMIT`, set by `make dist`; a plain
//! cargo build has none) and the target triple, which cargo tells only to
//! build scripts.
fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    let commit = std::env::var("K8S_OCI_OPERATOR_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=K8S_OCI_OPERATOR_TARGET={target}");
    println!("cargo:rustc-env=K8S_OCI_OPERATOR_COMMIT={commit}");
    println!("cargo:rustc-env=K8S_OCI_OPERATOR_LONG_VERSION={version} (commit {commit}, {target})");
    println!("cargo:rerun-if-env-changed=K8S_OCI_OPERATOR_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
}
