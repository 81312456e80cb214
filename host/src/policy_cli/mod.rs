//! `k8s-oci-operator policy eval`: evaluates one policy module offline, with
//! the same engine and limits as the operator, for policy authors and CI.
//!
//! The input file is JSON:
//! `{"reservedIP": <ReservedIP manifest>, "namespaceLabels": {...},
//!   "target": {"kind": "pod", ...} (optional), "allowedPools": [...] (optional)}`.
//! The output is one JSON document with each decision's outcome and verdicts.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::crd::ReservedIP;
use crate::policy::abi::Target;
use crate::policy::{
    AllowedPools, Decision, EligibilityOutcome, Limits, LoadResult, PolicyEngine, PolicySource,
    PoolOutcome, ReservedIpInput, TagOutcome, Verdict,
};

#[derive(Debug, thiserror::Error)]
pub enum PolicyCliError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the input is not valid: {0}")]
    Input(String),
    #[error("the module was refused: {0}")]
    Refused(String),
    #[error("evaluation failed: {0}")]
    Failed(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EvalInput {
    #[serde(rename = "reservedIP")]
    reserved_ip: ReservedIP,
    #[serde(default)]
    namespace_labels: BTreeMap<String, String>,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    allowed_pools: Option<Vec<String>>,
}

fn read(path: &Path) -> Result<Vec<u8>, PolicyCliError> {
    std::fs::read(path).map_err(|e| PolicyCliError::Read(path.display().to_string(), e))
}

/// Loads `module` (with optional `settings`, JSON or YAML) and evaluates every
/// decision on `input`; returns the decisions as JSON.
pub async fn eval(
    module: &Path,
    input: &Path,
    settings: Option<&Path>,
) -> Result<Value, PolicyCliError> {
    let engine =
        PolicyEngine::new(Limits::default()).map_err(|e| PolicyCliError::Failed(e.to_string()))?;
    let key = if module.extension().is_some_and(|e| e == "gz") {
        "policy.wasm.gz"
    } else {
        "policy.wasm"
    };
    let mut files = BTreeMap::from([(key.to_string(), read(module)?)]);
    if let Some(s) = settings {
        files.insert("settings".to_string(), read(s)?);
    }
    let name = module
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("policy")
        .split('.')
        .next()
        .unwrap_or("policy");
    let reports = engine
        .sync(
            "cli",
            vec![PolicySource {
                name: name.to_string(),
                files,
            }],
        )
        .await;
    for report in reports {
        if let LoadResult::Failed { error, .. } = report.result {
            return Err(PolicyCliError::Refused(error.to_string()));
        }
    }
    let input: EvalInput =
        serde_json::from_slice(&read(input)?).map_err(|e| PolicyCliError::Input(e.to_string()))?;
    let mut rip = input.reserved_ip;
    if rip.metadata.namespace.is_none() {
        rip.metadata.namespace = Some("default".into());
    }
    let req = ReservedIpInput::new(&rip, input.namespace_labels)
        .map_err(|e| PolicyCliError::Input(e.to_string()))?;
    let failed = |e: crate::policy::PolicyError| PolicyCliError::Failed(e.to_string());

    let tags = engine.tag_defaults(&req).await.map_err(failed)?;
    let allowed = match input.allowed_pools {
        Some(p) => AllowedPools::Only(p),
        None => AllowedPools::Any,
    };
    let pool = engine.select_pool(&req, &allowed).await.map_err(failed)?;
    let mut out = json!({
        "tagDefaults": with_verdicts(&tags, match &tags.outcome {
            TagOutcome::Tags(t) => json!({ "tags": t }),
            TagOutcome::Deny(d) => json!({ "denied": d }),
        }),
        "pool": with_verdicts(&pool, match &pool.outcome {
            PoolOutcome::Keep => json!({ "keep": true }),
            PoolOutcome::Use(p) => json!({ "use": p }),
            PoolOutcome::Deny(d) => json!({ "denied": d }),
        }),
    });
    if let Some(target) = &input.target {
        let e = engine.eligibility(&req, target).await.map_err(failed)?;
        out["eligibility"] = with_verdicts(
            &e,
            match &e.outcome {
                EligibilityOutcome::Allow => json!({ "allowed": true }),
                EligibilityOutcome::Deny(d) => json!({ "denied": d }),
            },
        );
    }
    Ok(out)
}

fn with_verdicts<O>(d: &Decision<O>, outcome: Value) -> Value {
    let verdicts: Vec<Value> = d.verdicts.iter().map(verdict).collect();
    json!({ "outcome": outcome, "verdicts": verdicts })
}

fn verdict(v: &Verdict) -> Value {
    json!({ "policy": v.policy, "version": v.version, "outcome": v.outcome, "message": v.message })
}
