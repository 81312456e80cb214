//! Runs a built policy module through the operator's own policy engine, in
//! a policy's tests: the same wasmtime sandbox, limits (deadline, memory,
//! input and output caps), module checks, settings validation and answer
//! checks as in the cluster. The SDK's `testing` helpers call the policy's
//! Rust code natively; this runs the `.wasm` you ship.
//!
//! Why a crate of its own, used as a dev-dependency: the engine is the
//! operator's (`k8s_oci_operator::policy::PolicyEngine`, with wasmtime), large
//! and native-only. A `[dev-dependencies]` entry is built for `cargo test`
//! only, never into the policy's wasm build, and keeps the SDK itself small.
//! The operator crate is not published, so take this one from git:
//!
//! ```toml
//! [dev-dependencies]
//! k8s-oci-operator-policy-harness = { git = "https://github.com/logmein/k8s-oci-operator" }
//! ```
//!
//! A test in `tests/` (an integration test, so `CARGO_TARGET_TMPDIR` is set)
//! builds the crate's module and asks it a decision:
//!
//! ```no_run
//! use k8s_oci_operator_policy_harness::{PolicyModule, PoolOutcome};
//! use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, SelectPoolRequest};
//!
//! # fn main() -> Result<(), k8s_oci_operator_policy_harness::HarnessError> {
//! # let build = k8s_oci_operator_policy_harness::WasmBuild::new(".", "target/tmp/policy-wasm");
//! // In a test of your crate: let build = k8s_oci_operator_policy_harness::wasm_build!();
//! let policy = PolicyModule::from_file(build.run()?)?;
//! let req = SelectPoolRequest {
//!     settings: serde_json::json!({"teamLabel": "team", "pools": {"payments": "ocid1.publicippool.oc1..a"}}),
//!     reserved_ip: ReservedIp::new("web", "shop"),
//!     namespace: Namespace::new("shop").with_label("team", "payments"),
//!     allowed_pools: None,
//! };
//! assert_eq!(policy.select_pool(&req)?, PoolOutcome::Use("ocid1.publicippool.oc1..a".into()));
//! # Ok(())
//! # }
//! ```
//!
//! Requests are the SDK's request types (anything that serialises to the
//! same JSON), with the settings inside as in `testing`: the module is
//! loaded with a request's settings, and loaded again when they change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use k8s_oci_operator::policy::{
    Decision, LoadResult, PolicyEngine, PolicyError, PolicySource, ReservedIpInput, TagOutcome,
};
use k8s_oci_operator_policy_sdk::{EligibilityRequest, SelectPoolRequest, TagDefaultsRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use k8s_oci_operator_policy_sdk::DecisionKind;

pub use k8s_oci_operator::policy::{
    AllowedPools, Denial, EligibilityOutcome, Limits, LoadError, PoolOutcome, Verdict,
    VerdictOutcome,
};

/// Why a build, a load or a decision gave no answer.
///
/// ```
/// use k8s_oci_operator_policy_harness::{DecisionKind, HarnessError};
/// let err = HarnessError::NotAnswered(DecisionKind::Eligibility);
/// assert!(err.to_string().contains("does not answer"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// `cargo build` of the module failed (its output is included).
    #[error("building the policy module failed: {0}")]
    Build(String),
    /// The module file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The engine could not be set up or could not evaluate (not the
    /// policy's fault).
    #[error("the policy engine failed: {0}")]
    Engine(String),
    /// The request is not a document of the decision asked.
    #[error("not a {decision:?} request: {message}")]
    Request {
        /// The decision asked.
        decision: DecisionKind,
        /// What does not deserialise.
        message: String,
    },
    /// The operator refused to load the module with these settings (no
    /// exports, wrong ABI version, imports, settings the policy rejects...).
    #[error("the operator refused the module: {0}")]
    Refused(LoadError),
    /// The module does not answer this decision, so the operator never asks
    /// it (and a test expecting an answer would pass vacuously).
    #[error("the module does not answer {0:?}, so the operator never asks it")]
    NotAnswered(DecisionKind),
    /// The policy failed this decision: trap, timeout, memory cap, malformed
    /// or invalid answer, or an error it reported. The message is the
    /// operator's, as a user would read it in the ReservedIP's status.
    #[error("{0}")]
    Failed(String),
}

/// A built policy module, loaded into an engine of its own with the
/// operator's default limits.
///
/// ```no_run
/// use k8s_oci_operator_policy_harness::PolicyModule;
/// let policy = PolicyModule::from_file("target/policies/team-pool.wasm.gz").unwrap();
/// policy.validate_settings(&serde_json::json!({"teamLabel": "team", "pools": {}})).unwrap();
/// ```
pub struct PolicyModule {
    name: String,
    key: &'static str,
    wasm: Vec<u8>,
    runtime: tokio::runtime::Runtime,
    engine: PolicyEngine,
    loaded: Mutex<Loaded>,
}

/// What the engine holds. A refused load keeps the previous version running
/// in the engine, so a request with the refused settings must never reach it.
enum Loaded {
    Nothing,
    With(Value),
    Refused(Value, LoadError),
}

/// The engine's name for where the harness's policy comes from.
const SOURCE: &str = "harness";

impl PolicyModule {
    /// Reads a module (`.wasm`, or gzipped `.wasm.gz` as in a ConfigMap).
    /// The policy is named after the file (`team-pool.wasm` → `team-pool`).
    ///
    /// ```
    /// use k8s_oci_operator_policy_harness::{HarnessError, PolicyModule};
    /// let missing = PolicyModule::from_file("no/such/policy.wasm");
    /// assert!(matches!(missing, Err(HarnessError::Read { .. })));
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, HarnessError> {
        let path = path.as_ref();
        let wasm = std::fs::read(path).map_err(|source| HarnessError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('.').next())
            .filter(|n| !n.is_empty())
            .unwrap_or("policy")
            .replace('_', "-");
        Self::from_bytes(&name, wasm)
    }

    /// A module from memory (plain or gzipped), named `name`.
    ///
    /// ```
    /// use k8s_oci_operator_policy_harness::{HarnessError, LoadError, PolicyModule};
    /// let policy = PolicyModule::from_bytes("junk", b"not wasm".to_vec()).unwrap();
    /// assert!(matches!(
    ///     policy.validate_settings(&serde_json::json!({})),
    ///     Err(HarnessError::Refused(LoadError::NotWasm))
    /// ));
    /// ```
    pub fn from_bytes(name: &str, wasm: Vec<u8>) -> Result<Self, HarnessError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HarnessError::Engine(e.to_string()))?;
        let engine = {
            // The engine may start tasks of its own; give it the runtime.
            let _inside = runtime.enter();
            PolicyEngine::new(Limits::default()).map_err(|e| HarnessError::Engine(e.to_string()))?
        };
        let key = if wasm.starts_with(&[0x1f, 0x8b]) {
            "policy.wasm.gz"
        } else {
            "policy.wasm"
        };
        Ok(PolicyModule {
            name: name.to_string(),
            key,
            wasm,
            runtime,
            engine,
            loaded: Mutex::new(Loaded::Nothing),
        })
    }

    /// Loads the module with `settings` as the operator does: compiles and
    /// checks it, and asks the policy to validate the settings.
    ///
    /// ```no_run
    /// use k8s_oci_operator_policy_harness::{HarnessError, LoadError, PolicyModule};
    /// let policy = PolicyModule::from_file("target/policies/team-pool.wasm").unwrap();
    /// let refused = policy.validate_settings(&serde_json::json!({"pools": {}}));
    /// assert!(matches!(refused, Err(HarnessError::Refused(LoadError::Settings(_)))));
    /// ```
    pub fn validate_settings(&self, settings: &Value) -> Result<(), HarnessError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        match &*loaded {
            Loaded::With(current) if current == settings => return Ok(()),
            // The engine does not load the same refused configuration twice
            // (it reports nothing the second time): answer from memory.
            Loaded::Refused(refused, error) if refused == settings => {
                return Err(HarnessError::Refused(error.clone()));
            }
            _ => {}
        }
        let settings_json =
            serde_json::to_vec(settings).map_err(|e| HarnessError::Engine(e.to_string()))?;
        let source = PolicySource {
            name: self.name.clone(),
            files: BTreeMap::from([
                (self.key.to_string(), self.wasm.clone()),
                ("settings".to_string(), settings_json),
            ]),
        };
        let reports = self
            .runtime
            .block_on(self.engine.sync(SOURCE, vec![source]));
        for report in reports {
            if let LoadResult::Failed { error, .. } = report.result {
                *loaded = Loaded::Refused(settings.clone(), error.clone());
                return Err(HarnessError::Refused(error));
            }
        }
        *loaded = Loaded::With(settings.clone());
        Ok(())
    }

    /// Asks for tag defaults; the answer is the public IP's complete tag set
    /// as the operator composes it (the policy's defaults, the request's user
    /// tags over them, the policy's enforced tags over both).
    ///
    /// ```no_run
    /// use k8s_oci_operator_policy_harness::PolicyModule;
    /// use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, TagDefaultsRequest};
    /// let policy = PolicyModule::from_file("target/policies/tag-defaults.wasm").unwrap();
    /// let tags = policy.tag_defaults(&TagDefaultsRequest {
    ///     settings: serde_json::json!({"enforced": {"managed-by": "platform"}}),
    ///     reserved_ip: ReservedIp::new("web", "shop").with_tag("owner", "me"),
    ///     namespace: Namespace::new("shop"),
    /// }).unwrap();
    /// assert_eq!(tags["owner"], "me");
    /// ```
    pub fn tag_defaults<R: Serialize>(
        &self,
        req: &R,
    ) -> Result<BTreeMap<String, String>, HarnessError> {
        let kind = DecisionKind::TagDefaults;
        let req: TagDefaultsRequest = request(kind, req)?;
        self.validate_settings(&req.settings)?;
        let input = ReservedIpInput {
            reserved_ip: req.reserved_ip,
            namespace: req.namespace,
        };
        let decision = self.decide(kind, self.engine.tag_defaults(&input))?;
        match decision {
            TagOutcome::Tags(tags) => Ok(tags),
            // Only a failure denies tags, and `decide` reported it.
            TagOutcome::Deny(denial) => Err(HarnessError::Failed(denial.reason)),
        }
    }

    /// Asks which pool to allocate from; `allowed_pools` of the request are
    /// the operator's allowed pools.
    ///
    /// ```no_run
    /// use k8s_oci_operator_policy_harness::{PolicyModule, PoolOutcome};
    /// use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, SelectPoolRequest};
    /// let policy = PolicyModule::from_file("target/policies/team-pool.wasm").unwrap();
    /// let outcome = policy.select_pool(&SelectPoolRequest {
    ///     settings: serde_json::json!({"teamLabel": "team", "pools": {}}),
    ///     reserved_ip: ReservedIp::new("web", "shop"),
    ///     namespace: Namespace::new("shop"),
    ///     allowed_pools: None,
    /// }).unwrap();
    /// assert!(matches!(outcome, PoolOutcome::Deny(_)));
    /// ```
    pub fn select_pool<R: Serialize>(&self, req: &R) -> Result<PoolOutcome, HarnessError> {
        let kind = DecisionKind::SelectPool;
        let req: SelectPoolRequest = request(kind, req)?;
        self.validate_settings(&req.settings)?;
        let allowed = match req.allowed_pools {
            Some(pools) => AllowedPools::Only(pools),
            None => AllowedPools::Any,
        };
        let input = ReservedIpInput {
            reserved_ip: req.reserved_ip,
            namespace: req.namespace,
        };
        self.decide(kind, self.engine.select_pool(&input, &allowed))
    }

    /// Asks whether the ReservedIP may be assigned to the request's target.
    ///
    /// ```no_run
    /// use k8s_oci_operator_policy_harness::{EligibilityOutcome, PolicyModule};
    /// use k8s_oci_operator_policy_sdk::{EligibilityRequest, Namespace, ReservedIp, Target};
    /// let policy = PolicyModule::from_file("target/policies/pod-label-eligibility.wasm").unwrap();
    /// let outcome = policy.eligibility(&EligibilityRequest {
    ///     settings: serde_json::json!({"podLabel": "public-ip"}),
    ///     reserved_ip: ReservedIp::new("web", "shop"),
    ///     namespace: Namespace::new("shop"),
    ///     target: Target::pod("web-0").with_pod_label("public-ip", "true"),
    /// }).unwrap();
    /// assert_eq!(outcome, EligibilityOutcome::Allow);
    /// ```
    pub fn eligibility<R: Serialize>(&self, req: &R) -> Result<EligibilityOutcome, HarnessError> {
        let kind = DecisionKind::Eligibility;
        let req: EligibilityRequest = request(kind, req)?;
        self.validate_settings(&req.settings)?;
        let input = ReservedIpInput {
            reserved_ip: req.reserved_ip,
            namespace: req.namespace,
        };
        self.decide(kind, self.engine.eligibility(&input, &req.target))
    }

    /// Runs one decision; with only this policy loaded, its verdict is the
    /// decision's only one.
    fn decide<O>(
        &self,
        kind: DecisionKind,
        decision: impl Future<Output = Result<Decision<O>, PolicyError>>,
    ) -> Result<O, HarnessError> {
        let decision = self
            .runtime
            .block_on(decision)
            .map_err(|e| HarnessError::Engine(e.to_string()))?;
        match decision.verdicts.last() {
            None => Err(HarnessError::NotAnswered(kind)),
            Some(v)
                if matches!(
                    v.outcome,
                    VerdictOutcome::FailedClosed | VerdictOutcome::FailedOpen
                ) =>
            {
                Err(HarnessError::Failed(v.message.clone()))
            }
            Some(_) => Ok(decision.outcome),
        }
    }
}

/// Reads a test's request as the decision's request document.
fn request<T: DeserializeOwned>(
    decision: DecisionKind,
    req: &impl Serialize,
) -> Result<T, HarnessError> {
    let bad = |e: serde_json::Error| HarnessError::Request {
        decision,
        message: e.to_string(),
    };
    serde_json::from_value(serde_json::to_value(req).map_err(bad)?).map_err(bad)
}

/// Builds a policy crate's WebAssembly module the way it ships: `cargo build
/// --release --target wasm32-unknown-unknown`, so with the crate's own
/// release profile (the template's is the one the operator's examples use).
///
/// The target directory should not be the one `cargo test` is using (the
/// nested build would wait on its lock); [`wasm_build!`] picks one under
/// the test's `CARGO_TARGET_TMPDIR`.
///
/// ```no_run
/// use k8s_oci_operator_policy_harness::{PolicyModule, WasmBuild};
/// let wasm = WasmBuild::new("policies/team-pool", "target/tmp/policy-wasm").run().unwrap();
/// let policy = PolicyModule::from_file(wasm).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct WasmBuild {
    manifest_dir: PathBuf,
    target_dir: PathBuf,
    features: Vec<String>,
}

impl WasmBuild {
    /// The crate in `manifest_dir`, built into `target_dir`.
    ///
    /// ```
    /// let build = k8s_oci_operator_policy_harness::WasmBuild::new("my-policy", "/tmp/policy-wasm");
    /// assert!(format!("{build:?}").contains("my-policy"));
    /// ```
    pub fn new(manifest_dir: impl Into<PathBuf>, target_dir: impl Into<PathBuf>) -> Self {
        WasmBuild {
            manifest_dir: manifest_dir.into(),
            target_dir: target_dir.into(),
            features: Vec::new(),
        }
    }

    /// Enables cargo features, e.g. the one that picks which of the crate's
    /// policies the module exports (see the SDK's `export_policy!`).
    ///
    /// ```
    /// let build = k8s_oci_operator_policy_harness::WasmBuild::new(".", "/tmp/w").features(["team-pool"]);
    /// assert!(format!("{build:?}").contains("team-pool"));
    /// ```
    pub fn features<I, S>(mut self, features: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.features.extend(features.into_iter().map(Into::into));
        self
    }

    /// Builds, and returns the path of the `.wasm` file.
    ///
    /// ```
    /// use k8s_oci_operator_policy_harness::{HarnessError, WasmBuild};
    /// let missing = WasmBuild::new("/no/such/crate", std::env::temp_dir().join("policy-wasm")).run();
    /// assert!(matches!(missing, Err(HarnessError::Build(_))));
    /// ```
    pub fn run(&self) -> Result<PathBuf, HarnessError> {
        let manifest = self.manifest_dir.join("Cargo.toml");
        // The cargo running the tests, so the same toolchain builds the module.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
            .args(["--message-format", "json-render-diagnostics"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&self.target_dir);
        if !self.features.is_empty() {
            command.arg("--features").arg(self.features.join(","));
        }
        let output = command
            .output()
            .map_err(|e| HarnessError::Build(format!("running cargo: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let hint = if stderr.contains("may not be installed") {
                "\n(install the target once: rustup target add wasm32-unknown-unknown)"
            } else {
                ""
            };
            return Err(HarnessError::Build(format!("{stderr}{hint}")));
        }
        wasm_artifact(&output.stdout, &manifest).ok_or_else(|| {
            HarnessError::Build(format!(
                "cargo built no .wasm for {}: is the crate-type cdylib?",
                manifest.display()
            ))
        })
    }
}

/// The `.wasm` file among cargo's JSON messages for the package at
/// `manifest`.
fn wasm_artifact(messages: &[u8], manifest: &Path) -> Option<PathBuf> {
    // Cargo reports absolute paths; ours may be relative or via symlinks.
    let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    let manifest = real(manifest);
    String::from_utf8_lossy(messages)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["manifest_path"]
                .as_str()
                .is_some_and(|p| real(Path::new(p)) == manifest)
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}

/// A [`WasmBuild`] of the crate whose integration test (a file in `tests/`)
/// calls it, into a target directory under the test's `CARGO_TARGET_TMPDIR`.
///
/// ```ignore
/// // tests/engine.rs of a policy crate:
/// let wasm = k8s_oci_operator_policy_harness::wasm_build!().run()?;
/// ```
#[macro_export]
macro_rules! wasm_build {
    () => {
        $crate::WasmBuild::new(
            env!("CARGO_MANIFEST_DIR"),
            concat!(env!("CARGO_TARGET_TMPDIR"), "/policy-wasm"),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasm_artifact_is_the_packages_own() {
        let manifest = Path::new("/policies/mine/Cargo.toml");
        let messages = [
            serde_json::json!({"reason": "compiler-artifact", "manifest_path": "/elsewhere/Cargo.toml",
                "filenames": ["/t/dep.wasm"]}),
            serde_json::json!({"reason": "compiler-artifact", "manifest_path": manifest,
                "filenames": ["/t/libmy_policy.rlib", "/t/my_policy.wasm"]}),
            serde_json::json!({"reason": "build-finished", "success": true}),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
        assert_eq!(
            wasm_artifact(messages.as_bytes(), manifest),
            Some(PathBuf::from("/t/my_policy.wasm"))
        );
        assert_eq!(wasm_artifact(b"not json\n", manifest), None);
    }
}
