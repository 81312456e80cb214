//! An emulator of the OCI Core Services networking API (public IPs, private
//! IPs, VNICs, subnets, public IP pools) for tests and the local sandbox, and
//! of the auth services that issue session tokens for it (instance metadata
//! v2, X.509 federation, OKE's proxymux).
//!
//! Start it in-process with [`Emulator::start`], point an OCI client at
//! [`EmulatorHandle::base_url`] (and credential providers at
//! [`EmulatorHandle::metadata_url`], [`EmulatorHandle::federation_url`],
//! [`EmulatorHandle::proxymux_url`]), and inspect or steer it through the
//! handle or the admin API under `/_emulator/`. See the crate README for the
//! seed format, the admin API, the auth services and the known differences
//! from OCI.
//!
//! Modules, one job each:
//! - [`model`]: resources in OCI's JSON form; [`world`]: the rules of every
//!   operation; [`lifecycle`]: state transitions over time; [`seed`]: the
//!   start-up document; [`net`]: IPv4 helpers; [`paging`]: list pagination;
//! - [`signature`]: request signature checks; [`faults`]: injected failures;
//!   [`calls`]: call counting;
//! - [`identity`]: the instance principal's certificates and the cluster CA;
//!   [`sessions`]: session tokens of both auth flows;
//! - `routes`, `api`, `admin`, `auth_services` (metadata, federation,
//!   proxymux), `proxymux` (its TLS), `server`: HTTP.

mod admin;
mod api;
mod auth_services;
pub mod calls;
pub mod error;
pub mod faults;
pub mod identity;
pub mod lifecycle;
pub mod model;
pub mod net;
pub mod paging;
mod proxymux;
mod routes;
pub mod seed;
mod server;
pub mod sessions;
pub mod signature;
pub mod world;

pub use calls::CallLog;
pub use error::ApiError;
pub use faults::{FaultConfig, FaultRule, RateLimit};
pub use identity::{IdentityConfig, IdentityError};
pub use lifecycle::Timing;
pub use seed::{Seed, SeedError};
pub use server::{Emulator, EmulatorConfig, EmulatorError, EmulatorHandle};
pub use sessions::PrincipalType;
pub use signature::{KeySpec, fingerprint_of_pem};

/// Directory of this crate (seeds/ and testdata/ live here).
///
/// Found from the checkout that is running when cargo says which (it sets
/// `CARGO_MANIFEST_DIR` for tests and `cargo run`): the compile-time path is
/// stale when one target dir serves several checkouts, because cargo reuses
/// the build. The compile-time path is the fallback.
pub fn crate_dir() -> std::path::PathBuf {
    if let Some(running) = std::env::var_os("CARGO_MANIFEST_DIR") {
        for dir in std::path::Path::new(&running).ancestors() {
            if dir.ends_with("oci-emulator") && dir.join("seeds").is_dir() {
                return dir.to_path_buf();
            }
            let nested = dir.join("tests").join("oci-emulator");
            if nested.join("seeds").is_dir() {
                return nested;
            }
        }
    }
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Seed {
    /// The sandbox topology shipped in `seeds/sandbox.yaml`.
    pub fn sandbox() -> Result<Self, SeedError> {
        Self::from_file(&crate_dir().join("seeds").join("sandbox.yaml"))
    }
}
