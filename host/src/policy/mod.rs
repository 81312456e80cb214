//! WebAssembly policies: platform teams' rules for tag defaults, pool
//! selection and assignment eligibility, as sandboxed modules loaded at run
//! time (see `policies/README.md` for authors, `sdk/ABI.md` for the ABI).
//!
//! One job per module:
//! - [`abi`]: the ABI types (shared with the SDK) and their JSON Schemas.
//! - `source`: a policy's configuration keys, parsed and validated.
//! - `selector`: namespace label selectors.
//! - `module`: decompress, compile once, check a module (imports, memory,
//!   ABI version, exports, settings).
//! - `artifacts`: compiled modules kept on disk across restarts.
//! - `instance`: one call in a fresh instance: deadline, memory cap,
//!   bounds-checked buffers, output size cap.
//! - `request`: what a decision asks (the ReservedIP, its namespace, the bodies).
//! - `validate`: checks of an answer (OCI tag limits, allowed pools).
//! - `compose`: how several policies' answers combine (documented there).
//! - `trust`: pinned digests and signatures.
//! - `metrics`: evaluations, denials, failures, latency, refusals per policy.
//! - `registry`: loaded policies, last good versions, load errors, order.
//! - [`configmap`], [`directory`]: the two watchers that feed the engine.
//!
//! Policies run in `order`, then by name, and only for namespaces their
//! selector matches.

pub mod abi;
mod artifacts;
mod compose;
pub mod configmap;
mod decisions;
pub mod directory;
mod engine;
mod error;
mod instance;
mod limits;
mod metrics;
mod module;
mod registry;
mod request;
mod selector;
mod source;
mod trust;
mod validate;

#[cfg(test)]
mod tests;

pub use compose::{
    Decision, Denial, EligibilityOutcome, PoolOutcome, TagOutcome, Verdict, VerdictOutcome,
};
pub use decisions::Decisions;
pub use engine::{EngineOptions, PolicyEngine};
pub use error::{EvalError, LoadError, PolicyError};
pub use limits::Limits;
pub use metrics::PolicyMetrics;
pub use registry::{LoadReport, LoadResult, PolicyStatus};
pub use request::ReservedIpInput;
pub use selector::NamespaceSelector;
pub use source::{FailureMode, Mode, PolicySource};
pub use trust::{Trust, TrustError};
pub use validate::AllowedPools;
