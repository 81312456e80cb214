//! The set of loaded policies: which version of each is active, which failed
//! to load (the last good version stays active), and the evaluation order.
//! No compilation or I/O here; the engine compiles and hands results in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use serde::Serialize;

use super::error::LoadError;
use super::module::CompiledModule;
use super::selector::NamespaceSelector;
use super::source::{FailureMode, Mode, PolicySource};

/// A policy ready to evaluate.
pub(crate) struct LoadedPolicy {
    pub(crate) name: String,
    pub(crate) order: i32,
    pub(crate) failure_mode: FailureMode,
    pub(crate) mode: Mode,
    pub(crate) selector: NamespaceSelector,
    /// Compact JSON.
    pub(crate) settings: String,
    pub(crate) module: Arc<CompiledModule>,
    /// Digest of the source it was loaded from.
    pub(crate) digest: [u8; 32],
}

impl LoadedPolicy {
    pub(crate) fn version(&self) -> &str {
        self.module.sha256.get(..12).unwrap_or(&self.module.sha256)
    }
}

/// What happened to one policy during a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    pub policy: String,
    pub source: String,
    pub result: LoadResult,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadResult {
    /// A new version is active.
    Loaded { version: String },
    /// The new version was refused; `kept_version` is still active (if any).
    Failed {
        error: LoadError,
        kept_version: Option<String>,
    },
    /// The policy was removed from its source.
    Removed,
}

/// A policy's load state, for logs, events, metrics and the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    pub name: String,
    pub source: String,
    /// Module version (SHA-256 prefix) in use, if any version loaded.
    pub version: Option<String>,
    pub order: Option<i32>,
    /// `enforce` or `audit`, of the version in use.
    pub mode: Option<Mode>,
    /// The last load error, while the latest configuration is refused.
    pub error: Option<String>,
    /// Refused loads since the operator started.
    pub load_failures: u64,
}

struct Entry {
    source: String,
    active: Option<Arc<LoadedPolicy>>,
    /// Digest and error of the newest refused configuration.
    failed: Option<([u8; 32], LoadError)>,
    load_failures: u64,
}

/// What a sync must do: sources to (re)load and names to remove.
pub(crate) struct SyncPlan {
    pub(crate) load: Vec<PolicySource>,
    pub(crate) remove: Vec<String>,
    pub(crate) duplicates: Vec<LoadReport>,
}

#[derive(Default)]
pub(crate) struct Registry {
    entries: BTreeMap<String, Entry>,
    /// Compiled modules by SHA-256, so identical modules compile once.
    modules: HashMap<String, Weak<CompiledModule>>,
}

impl Registry {
    /// Decides what changed in `source`'s set of policies. A configuration
    /// identical to the active one, or to the last refused one, is skipped:
    /// periodic rescans must not recompile or re-report.
    pub(crate) fn plan(&self, source: &str, policies: Vec<PolicySource>) -> SyncPlan {
        let mut plan = SyncPlan {
            load: Vec::new(),
            remove: Vec::new(),
            duplicates: Vec::new(),
        };
        let names: std::collections::BTreeSet<String> =
            policies.iter().map(|p| p.name.clone()).collect();
        for policy in policies {
            let digest = policy.digest();
            match self.entries.get(&policy.name) {
                Some(entry) if entry.source != source => plan.duplicates.push(LoadReport {
                    policy: policy.name.clone(),
                    source: source.to_string(),
                    result: LoadResult::Failed {
                        error: LoadError::DuplicateName {
                            name: policy.name.clone(),
                            other_source: entry.source.clone(),
                        },
                        kept_version: None,
                    },
                }),
                Some(entry)
                    if entry.active.as_ref().is_some_and(|a| a.digest == digest)
                        && entry.failed.is_none() => {}
                Some(entry) if entry.failed.as_ref().is_some_and(|(d, _)| *d == digest) => {}
                _ => plan.load.push(policy),
            }
        }
        plan.remove = self
            .entries
            .iter()
            .filter(|(name, e)| e.source == source && !names.contains(*name))
            .map(|(name, _)| name.clone())
            .collect();
        plan
    }

    pub(crate) fn cached_module(&self, sha256: &str) -> Option<Arc<CompiledModule>> {
        self.modules.get(sha256).and_then(Weak::upgrade)
    }

    /// Records a load attempt; a failure keeps the active version.
    pub(crate) fn record(
        &mut self,
        source: &str,
        name: &str,
        digest: [u8; 32],
        result: Result<LoadedPolicy, LoadError>,
    ) -> LoadReport {
        let entry = self
            .entries
            .entry(name.to_string())
            .or_insert_with(|| Entry {
                source: source.to_string(),
                active: None,
                failed: None,
                load_failures: 0,
            });
        let result = match result {
            Ok(policy) => {
                self.modules
                    .insert(policy.module.sha256.clone(), Arc::downgrade(&policy.module));
                let version = policy.version().to_string();
                entry.active = Some(Arc::new(policy));
                entry.failed = None;
                LoadResult::Loaded { version }
            }
            Err(error) => {
                entry.failed = Some((digest, error.clone()));
                entry.load_failures += 1;
                LoadResult::Failed {
                    error,
                    kept_version: entry.active.as_ref().map(|a| a.version().to_string()),
                }
            }
        };
        self.modules.retain(|_, m| m.strong_count() > 0);
        LoadReport {
            policy: name.to_string(),
            source: source.to_string(),
            result,
        }
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<LoadReport> {
        let entry = self.entries.remove(name)?;
        Some(LoadReport {
            policy: name.to_string(),
            source: entry.source,
            result: LoadResult::Removed,
        })
    }

    /// Active policies in evaluation order: `order`, then name.
    pub(crate) fn ordered(&self) -> Vec<Arc<LoadedPolicy>> {
        let mut active: Vec<_> = self
            .entries
            .values()
            .filter_map(|e| e.active.clone())
            .collect();
        active.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
        active
    }

    pub(crate) fn status(&self) -> Vec<PolicyStatus> {
        self.entries
            .iter()
            .map(|(name, e)| PolicyStatus {
                name: name.clone(),
                source: e.source.clone(),
                version: e.active.as_ref().map(|a| a.version().to_string()),
                order: e.active.as_ref().map(|a| a.order),
                mode: e.active.as_ref().map(|a| a.mode),
                error: e.failed.as_ref().map(|(_, err)| err.to_string()),
                load_failures: e.load_failures,
            })
            .collect()
    }
}
