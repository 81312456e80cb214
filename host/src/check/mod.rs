//! `k8s-oci-operator check`: verifies, with the operator's own configuration,
//! what it needs from OCI and from Kubernetes, and prints a checklist that
//! says what to fix.
//!
//! - [`oci`]: credentials, the region endpoint, authentication, the
//!   compartment, the configured subnets, VNICs, and what can be learnt about
//!   write permissions without changing anything.
//! - [`kubernetes`]: the API server, the ReservedIP CRD (installed and
//!   current), and RBAC (SelfSubjectAccessReviews for every permission the
//!   operator uses, the same list as `deploy/10-rbac.yaml`).
//!
//! Each side is split in two: the calls (async, thin) and the pure
//! functions that turn their results into [`CheckLine`]s with fixes, which
//! is what the unit tests cover. A failed prerequisite marks the checks that
//! depend on it [`Status::NotChecked`] with the reason, so one cause is
//! reported once.
//!
//! Exit codes: 0 nothing failed, 1 a check failed (a line not checked does
//! not fail), 2 unusable configuration (clap's own code for a missing or
//! invalid setting is 2 as well).

pub mod kubernetes;
pub mod oci;

use std::fmt::Write as _;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::config::RunConfig;

/// Exit code when no check failed.
pub const EXIT_OK: i32 = 0;
/// Exit code when at least one check failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code when the configuration cannot be used at all.
pub const EXIT_UNUSABLE_CONFIG: i32 = 2;

/// Settings of `k8s-oci-operator check`: the operator's own (`run`'s), plus
/// how to report.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: RunConfig,

    /// How to print the checklist: `text` for people, `json` for scripts
    /// (an array of {name, status, detail, fix}).
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,

    /// Skip the UpdatePublicIp probe (see docs/check.md): write permissions
    /// are then reported as not checked.
    #[arg(long, env = "CHECK_SKIP_WRITE_PROBE", default_value_t = false)]
    pub skip_write_probe: bool,
}

/// Output format of the checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// One line per check, a fix under each failure.
    Text,
    /// A JSON array of {name, status, detail, fix}.
    Json,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Checked and right.
    Ok,
    /// Checked and wrong: the line says what to fix.
    Fail,
    /// Not checked (a prerequisite failed, or it cannot be checked); does
    /// not fail the run.
    NotChecked,
}

impl Status {
    /// The mark printed in front of a text line.
    pub fn mark(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fail => "FAIL",
            Self::NotChecked => "not checked",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    /// What was checked (stable, e.g. `oci authentication`, `kubernetes rbac pods`).
    pub name: String,
    pub status: Status,
    /// What was seen: the call made and its answer, or why it was not checked.
    pub detail: String,
    /// For a failure: what to change (setting, IAM statement, kubectl command).
    pub fix: Option<String>,
}

impl CheckLine {
    /// A check that passed.
    pub fn ok(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A check that failed, and what to fix.
    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A check not made, and why.
    pub fn not_checked(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::NotChecked,
            detail: reason.into(),
            fix: None,
        }
    }

    /// A check not made that still needs something done (what cannot be
    /// checked, and the IAM statements it needs).
    pub fn not_checked_with(
        name: impl Into<String>,
        reason: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            fix: Some(fix.into()),
            ..Self::not_checked(name, reason)
        }
    }
}

/// The whole checklist, in the order the checks ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<CheckLine>,
}

impl Report {
    /// [`EXIT_FAILED`] if any line failed, else [`EXIT_OK`].
    pub fn exit_code(&self) -> i32 {
        if self.lines.iter().any(|l| l.status == Status::Fail) {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }

    /// How many lines have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.lines.iter().filter(|l| l.status == status).count()
    }

    /// The checklist for people: a mark, the check and what was seen; the
    /// fix indented under it; a summary last.
    pub fn to_text(&self) -> String {
        let width = [Status::Ok, Status::Fail, Status::NotChecked]
            .iter()
            .map(|s| s.mark().len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for line in &self.lines {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "{:<width$}  {}: {}",
                line.status.mark(),
                line.name,
                line.detail
            );
            if let Some(fix) = &line.fix {
                // A line not checked can still need something (what cannot
                // be checked and its IAM statements): not a fix of a failure.
                let label = match line.status {
                    Status::NotChecked => "needs",
                    _ => "fix",
                };
                let _ = writeln!(out, "{:<width$}  {label}: {fix}", "");
            }
        }
        let _ = writeln!(
            out,
            "{} ok, {} failed, {} not checked",
            self.count(Status::Ok),
            self.count(Status::Fail),
            self.count(Status::NotChecked)
        );
        out
    }

    /// The checklist for scripts: a JSON array of {name, status, detail, fix}.
    pub fn to_json(&self) -> Result<String, CheckError> {
        serde_json::to_string_pretty(&self.lines).map_err(CheckError::Render)
    }
}

/// Why `check` could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A setting is present but cannot be used (e.g. an empty compartment id).
    #[error("unusable configuration: {0}")]
    UnusableConfig(String),
    /// The report could not be encoded.
    #[error("cannot encode the report: {0}")]
    Render(serde_json::Error),
}

/// Settings clap accepted but that no check could use: an empty required
/// value (e.g. `OCI_COMPARTMENT_ID=""`, which clap takes as given).
pub fn validate(config: &RunConfig) -> Result<(), CheckError> {
    if config.compartment_id.trim().is_empty() {
        return Err(CheckError::UnusableConfig(
            "OCI_COMPARTMENT_ID (--compartment-id) is empty".into(),
        ));
    }
    if config.cluster_id.trim().is_empty() {
        return Err(CheckError::UnusableConfig(
            "CLUSTER_ID (--cluster-id) is empty".into(),
        ));
    }
    Ok(())
}

/// Runs every check: OCI first, then Kubernetes (independent of each other,
/// so one side failing does not hide the other's problems).
pub async fn run(args: &CheckArgs) -> Report {
    let mut lines = oci::check(&args.config, !args.skip_write_probe).await;
    lines.extend(kubernetes::check(&args.config).await);
    Report { lines }
}

/// `k8s-oci-operator check`: runs, prints, and returns the exit code.
pub async fn main(args: CheckArgs) -> i32 {
    if let Err(e) = validate(&args.config) {
        eprintln!("k8s-oci-operator check: {e}");
        return EXIT_UNUSABLE_CONFIG;
    }
    let report = run(&args).await;
    match args.output {
        OutputFormat::Text => print!("{}", report.to_text()),
        OutputFormat::Json => match report.to_json() {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("k8s-oci-operator check: {e}");
                return EXIT_FAILED;
            }
        },
    }
    report.exit_code()
}

/// `check`'s settings as its command line parses them, with a compartment
/// and a cluster ID and the `extra` arguments (tests of both halves).
#[cfg(test)]
pub(crate) fn test_config(extra: &[&str]) -> RunConfig {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: RunConfig,
    }
    let mut args = vec!["check", "--compartment-id", "c", "--cluster-id", "k"];
    args.extend_from_slice(extra);
    match <Cli as clap::Parser>::try_parse_from(args) {
        Ok(cli) => cli.config,
        Err(e) => panic!("test arguments: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(statuses: &[Status]) -> Report {
        Report {
            lines: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| CheckLine {
                    name: format!("check {i}"),
                    status: *s,
                    detail: "seen".into(),
                    fix: (*s == Status::Fail).then(|| "do this".to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn check_exit_code_fails_only_on_a_failure() {
        assert_eq!(report(&[Status::Ok, Status::Ok]).exit_code(), EXIT_OK);
        assert_eq!(
            report(&[Status::Ok, Status::NotChecked]).exit_code(),
            EXIT_OK,
            "not checked does not fail"
        );
        assert_eq!(
            report(&[Status::Ok, Status::Fail, Status::NotChecked]).exit_code(),
            EXIT_FAILED
        );
    }

    #[test]
    fn check_text_has_a_mark_per_line_fixes_and_a_summary() {
        let text = report(&[Status::Ok, Status::Fail, Status::NotChecked]).to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ok "), "{text}");
        assert!(lines[1].starts_with("FAIL "), "{text}");
        assert!(lines[2].trim_start().starts_with("fix: do this"), "{text}");
        assert!(lines[3].starts_with("not checked "), "{text}");
        assert_eq!(lines[4], "1 ok, 1 failed, 1 not checked");
    }

    #[test]
    fn check_json_is_an_array_of_name_status_detail_fix() {
        let json = report(&[Status::Fail, Status::NotChecked])
            .to_json()
            .expect("encodes");
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(value[0]["status"], "fail");
        assert_eq!(value[0]["fix"], "do this");
        assert_eq!(value[1]["status"], "not_checked");
        assert!(value[1]["fix"].is_null());
        assert_eq!(value[1]["name"], "check 1");
        assert_eq!(value[1]["detail"], "seen");
    }
}
