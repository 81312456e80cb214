//! Prints the tenancy table from the JSON lines the tenancy tests appended
//! to a report file (see `integration_tests::tenancy_report`).
//! Usage: `tenancy-table <report.jsonl>`. Exits non-zero if any attack was
//! not refused or changed OCI state it should not have.

use anyhow::{Context, Result, bail};
use integration_tests::report::read_rows;
use integration_tests::tenancy_report::{TenancyRow, table};

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: tenancy-table <report.jsonl>")?;
    let rows: Vec<TenancyRow> = read_rows(&path)?;
    print!("{}", table(&rows));
    if rows.iter().any(|r| !r.held()) {
        bail!("an attack was not refused, or changed OCI state");
    }
    Ok(())
}
