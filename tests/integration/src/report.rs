//! The reliability suite's table (issue 6): every scenario test records one
//! row (lifecycles run, kills or faults injected, and what an audit of the
//! emulator found), appended as a JSON line to `$RELIABILITY_REPORT` when set.
//! `reliability-table <file>` prints the rows as a table; `make reliability`
//! and `make test` print it after the tests.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context as _, Result};
use k8s_oci_operator::decide::ownership::{TAG_CLUSTER, TAG_UID};
use kube::ResourceExt;
use kube::api::ListParams;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use oci_emulator::model::PublicIpState;

use crate::OperatorSandbox;

/// What [`OperatorSandbox::audit`] counts. The target is zero in each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// Live public IPs with this sandbox's cluster tag whose ReservedIP (by
    /// UID) no longer exists.
    pub leaked: u64,
    /// ReservedIPs (by UID) for which more than one public IP was ever
    /// created.
    pub double_allocated: u64,
    /// Existing ReservedIPs that no longer hold the first public IP created
    /// for them (it was released or replaced behind their back).
    pub lost: u64,
}

impl Audit {
    pub fn is_clean(&self) -> bool {
        *self == Audit::default()
    }
}

/// One row of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub scenario: String,
    pub lifecycles: u64,
    /// Kills (SIGKILL, abort at a crash point, leader kill) or injected faults.
    pub injected: u64,
    pub converged: bool,
    #[serde(flatten)]
    pub audit: Audit,
    /// What was injected, in a few words.
    pub note: String,
}

/// Prints the row and appends it to `$RELIABILITY_REPORT` (if set).
pub fn record(row: &Row) -> Result<()> {
    append("reliability", "RELIABILITY_REPORT", row)
}

/// Prints a table's row as `<label>: <json>` and appends it as a JSON line
/// to the file named by the environment variable `report` (if set), where a
/// table binary reads the rows of every test (`read_rows`).
pub fn append(label: &str, report: &str, row: &impl Serialize) -> Result<()> {
    let line = serde_json::to_string(row)?;
    println!("{label}: {line}");
    let Some(path) = std::env::var_os(report) else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.to_string_lossy()))?;
    writeln!(file, "{line}")?;
    Ok(())
}

/// The rows appended to the report file at `path` (see [`append`]); an
/// error when there are none (the tests that write them did not run).
pub fn read_rows<T: DeserializeOwned>(path: &str) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let rows: Vec<T> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {path}"))?;
    anyhow::ensure!(!rows.is_empty(), "{path} has no rows: did its tests run?");
    Ok(rows)
}

/// The rows as a fixed-width table, with a totals line.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<44} {:>10} {:>8} {:>9} {:>6} {:>16} {:>5}  {}\n",
        "scenario",
        "lifecycles",
        "injected",
        "converged",
        "leaked",
        "double-allocated",
        "lost",
        "injected what"
    );
    for r in rows {
        out += &format!(
            "{:<44} {:>10} {:>8} {:>9} {:>6} {:>16} {:>5}  {}\n",
            r.scenario,
            r.lifecycles,
            r.injected,
            if r.converged { "yes" } else { "NO" },
            r.audit.leaked,
            r.audit.double_allocated,
            r.audit.lost,
            r.note
        );
    }
    let sum = |f: fn(&Row) -> u64| rows.iter().map(f).sum::<u64>();
    out += &format!(
        "{:<44} {:>10} {:>8} {:>9} {:>6} {:>16} {:>5}\n",
        format!("total ({} scenarios)", rows.len()),
        sum(|r| r.lifecycles),
        sum(|r| r.injected),
        format!(
            "{}/{}",
            rows.iter().filter(|r| r.converged).count(),
            rows.len()
        ),
        sum(|r| r.audit.leaked),
        sum(|r| r.audit.double_allocated),
        sum(|r| r.audit.lost),
    );
    out
}

impl OperatorSandbox {
    /// Audits the sandbox and records a converged scenario's row (the caller
    /// has checked convergence); fails if the audit found anything.
    pub async fn report(
        &self,
        scenario: &str,
        lifecycles: u64,
        injected: u64,
        note: impl Into<String>,
    ) -> Result<()> {
        let audit = self.audit().await?;
        record(&Row {
            scenario: scenario.to_string(),
            lifecycles,
            injected,
            converged: true,
            audit,
            note: note.into(),
        })?;
        anyhow::ensure!(audit.is_clean(), "{scenario}: {audit:?}");
        Ok(())
    }

    /// Counts leaked, double-allocated and lost public IPs, from the
    /// emulator's world (including its record of every creation) and the
    /// ReservedIPs that exist now.
    pub async fn audit(&self) -> Result<Audit> {
        let rips = self.rips().list(&ListParams::default()).await?.items;
        let existing: BTreeMap<String, Option<String>> = rips
            .iter()
            .filter_map(|r| {
                let id = r.status.as_ref().and_then(|s| s.public_ip_id.clone());
                r.uid().map(|uid| (uid, id))
            })
            .collect();
        let cluster = self.cluster_id.clone();
        let (live_uids, creations) = self.emulator.with_world(|w| {
            let live: Vec<Option<String>> = w
                .public_ips
                .values()
                .filter(|ip| ip.freeform_tags.get(TAG_CLUSTER) == Some(&cluster))
                .filter(|ip| {
                    !matches!(
                        ip.lifecycle_state,
                        PublicIpState::Terminating | PublicIpState::Terminated
                    )
                })
                .map(|ip| ip.freeform_tags.get(TAG_UID).cloned())
                .collect();
            let created: Vec<(String, String)> = w
                .creations
                .iter()
                .filter(|ip| ip.freeform_tags.get(TAG_CLUSTER) == Some(&cluster))
                .filter_map(|ip| Some((ip.freeform_tags.get(TAG_UID)?.clone(), ip.id.clone())))
                .collect();
            (live, created)
        });
        let leaked = live_uids
            .iter()
            .filter(|uid| uid.as_ref().is_none_or(|u| !existing.contains_key(u)))
            .count() as u64;
        let mut per_uid: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (uid, id) in &creations {
            per_uid.entry(uid).or_default().push(id);
        }
        let double_allocated = per_uid.values().filter(|ids| ids.len() > 1).count() as u64;
        let lost = existing
            .iter()
            .filter(|(uid, held)| {
                per_uid
                    .get(uid.as_str())
                    .and_then(|ids| ids.first())
                    .is_some_and(|first| held.as_deref() != Some(*first))
            })
            .count() as u64;
        Ok(Audit {
            leaked,
            double_allocated,
            lost,
        })
    }
}
