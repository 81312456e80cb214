//! The tenancy table: every attack of a hostile tenant, run as that tenant
//! on the control plane and the emulator, records one row (refused or not,
//! the reason, whether OCI stayed untouched), appended as a JSON line to
//! `$TENANCY_REPORT` when set. `tenancy-table <file>` prints them; `make
//! test` prints it after the tests and fails if any attack got through.

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// One attack and what came of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenancyRow {
    pub attack: String,
    pub refused: bool,
    /// The condition reason or admission message that refused it.
    pub reason: String,
    /// No public IP other than the tenant's own changed, and the tenant's own
    /// are assigned nowhere it may not go.
    pub oci_untouched: bool,
}

impl TenancyRow {
    pub fn held(&self) -> bool {
        self.refused && self.oci_untouched
    }
}

/// Prints the row and appends it to `$TENANCY_REPORT` (if set).
pub fn record(row: &TenancyRow) -> Result<()> {
    crate::report::append("tenancy", "TENANCY_REPORT", row)
}

/// The rows as a fixed-width table, sorted by attack, with a totals line.
pub fn table(rows: &[TenancyRow]) -> String {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.attack.cmp(&b.attack));
    let width = rows
        .iter()
        .map(|r| r.attack.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let yes = |b: bool| if b { "yes" } else { "NO" };
    let mut out = format!(
        "{:<width$}  {:<7}  {:<12}  {}\n",
        "attack", "refused", "OCI untouched", "reason"
    );
    for r in &rows {
        out += &format!(
            "{:<width$}  {:<7}  {:<13}  {}\n",
            r.attack,
            yes(r.refused),
            yes(r.oci_untouched),
            r.reason
        );
    }
    out += &format!(
        "{} attacks: {} refused with OCI untouched, {} got through\n",
        rows.len(),
        rows.iter().filter(|r| r.held()).count(),
        rows.iter().filter(|r| !r.held()).count()
    );
    out
}
