//! `k8s-oci-operator policy eval` and `policy test`: the operator's policy
//! engine offline, for policy authors and the CI of policy repositories.
//!
//! Policies come as ConfigMap manifests (files or directories, see
//! [`sources`]) or as one module with `--module`; they are loaded by the
//! engine the operator runs, under the same limits and trust settings, and
//! every decision goes through the same selectors, order, failure modes,
//! audit mode and answer checks. `eval` prints the decisions of one input as
//! JSON; `test` runs a file of cases (input → expected decisions) and exits
//! non-zero when one fails.

pub mod cases;
pub mod sources;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::PolicyArgs;
use crate::policy::{LoadResult, PolicyEngine, PolicyMetrics, PolicySource};

#[derive(Debug, thiserror::Error)]
pub enum PolicyCliError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the input is not valid: {0}")]
    Input(String),
    #[error("policy {0} was refused: {1}")]
    Refused(String, String),
    #[error("evaluation failed: {0}")]
    Failed(String),
    #[error("{0}")]
    Setup(String),
}

fn read(path: &Path) -> Result<Vec<u8>, PolicyCliError> {
    std::fs::read(path).map_err(|e| PolicyCliError::Read(path.display().to_string(), e))
}

/// Where the policies come from.
#[derive(Clone, Debug, Default)]
pub struct PolicyPaths {
    /// ConfigMap manifests, directories of them, or a `--policy-dir` layout.
    pub paths: Vec<PathBuf>,
    /// A single module (`.wasm` or `.wasm.gz`) instead, with its settings.
    pub module: Option<PathBuf>,
    pub settings: Option<PathBuf>,
}

/// An engine set up as `args` say, with the policies of `from` loaded; any
/// refused policy is an error naming it (the cluster would keep running an
/// older version, or none, which is what a CI check must catch).
pub async fn load(
    args: &PolicyArgs,
    from: &PolicyPaths,
) -> Result<(PolicyEngine, Vec<String>), PolicyCliError> {
    let mut options = args
        .engine_options(PolicyMetrics::default())
        .map_err(|e| PolicyCliError::Setup(format!("{e:#}")))?;
    // Repeated runs (a CI job, an author's edit-eval loop) take compiled
    // modules from the user's cache instead of compiling again.
    if options.artifact_dir.is_none() {
        options.artifact_dir = default_cache_dir();
    }
    let max_module = options.limits.max_module_bytes;
    let engine =
        PolicyEngine::with_options(options).map_err(|e| PolicyCliError::Setup(e.to_string()))?;
    let mut found = sources::read(&from.paths, max_module)?;
    if let Some(module) = &from.module {
        found
            .policies
            .push(module_source(module, from.settings.as_deref())?);
    } else if from.settings.is_some() {
        return Err(PolicyCliError::Input(
            "--settings goes with --module".into(),
        ));
    }
    if found.policies.is_empty() {
        return Err(PolicyCliError::Input(format!(
            "no policy found (give ConfigMap manifests or --module){}",
            found
                .skipped
                .iter()
                .map(|s| format!("\n  {s}"))
                .collect::<String>()
        )));
    }
    for report in engine.sync("cli", found.policies).await {
        if let LoadResult::Failed { error, .. } = report.result {
            return Err(PolicyCliError::Refused(report.policy, error.to_string()));
        }
    }
    Ok((engine, found.skipped))
}

/// `$XDG_CACHE_HOME/k8s-oci-operator/policy-modules`, else under
/// `$HOME/.cache`; none without either.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("k8s-oci-operator").join("policy-modules"))
}

fn module_source(module: &Path, settings: Option<&Path>) -> Result<PolicySource, PolicyCliError> {
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
        .and_then(|n| n.split('.').next())
        .filter(|n| !n.is_empty())
        .unwrap_or("policy");
    Ok(PolicySource {
        name: name.to_string(),
        files,
    })
}

/// `policy eval`: the decisions for `input` (JSON or YAML), as JSON, with
/// the loaded policies and any manifest passed over.
pub async fn eval(
    args: &PolicyArgs,
    from: &PolicyPaths,
    input: &Path,
) -> Result<Value, PolicyCliError> {
    let (engine, skipped) = load(args, from).await?;
    let input: cases::Input =
        serde_yaml::from_slice(&read(input)?).map_err(|e| PolicyCliError::Input(e.to_string()))?;
    let decisions = cases::decide(&engine, &input).await?;
    let mut out = decisions.to_json();
    out["policies"] = json!(engine.status());
    if !skipped.is_empty() {
        out["skipped"] = json!(skipped);
    }
    Ok(out)
}

/// A file of test cases for `policy test`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestFile {
    /// Policy manifests or directories, relative to the test file; added to
    /// those given on the command line.
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    pub cases: Vec<TestCase>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestCase {
    pub name: String,
    pub input: cases::Input,
    pub expect: cases::Expect,
}

/// The outcome of `policy test`.
#[derive(Debug, Default)]
pub struct TestReport {
    pub lines: Vec<String>,
    pub passed: usize,
    pub failed: usize,
}

/// `policy test`: runs every case of `file` against the policies it names
/// (plus `from`); each case's line says PASS or FAIL and why.
pub async fn test(
    args: &PolicyArgs,
    from: &PolicyPaths,
    file: &Path,
) -> Result<TestReport, PolicyCliError> {
    let tests: TestFile = serde_yaml::from_slice(&read(file)?)
        .map_err(|e| PolicyCliError::Input(format!("{}: {e}", file.display())))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut from = from.clone();
    from.paths
        .extend(tests.policies.iter().map(|p| base.join(p)));
    let (engine, skipped) = load(args, &from).await?;
    let mut report = TestReport::default();
    report
        .lines
        .extend(skipped.iter().map(|s| format!("note  {s}")));
    for case in &tests.cases {
        let problems = match cases::decide(&engine, &case.input).await {
            Ok(decisions) => cases::mismatches(&case.expect, &decisions),
            Err(err) => vec![err.to_string()],
        };
        if problems.is_empty() {
            report.passed += 1;
            report.lines.push(format!("PASS  {}", case.name));
        } else {
            report.failed += 1;
            report.lines.push(format!("FAIL  {}", case.name));
            report
                .lines
                .extend(problems.iter().map(|p| format!("        {p}")));
        }
    }
    report.lines.push(format!(
        "{} cases: {} passed, {} failed",
        tests.cases.len(),
        report.passed,
        report.failed
    ));
    Ok(report)
}
