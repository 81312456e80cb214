//! Scenario 1: one ReservedIP applied to `assigned`, then deleted to released;
//! first on a node whose VNICs the operator has not seen (cold), then on the
//! same node again (warm, the case the targets are about).

use std::time::{Duration, Instant};

use serde_json::json;

use super::Bench;
use crate::calls::Calls;
use crate::error::{Error, Result};
use crate::floor::Floor;
use crate::report::Row;
use crate::workload::{self, PodSpec};

struct One {
    apply: Duration,
    apply_calls: Calls,
    delete: Duration,
    delete_calls: Calls,
}

pub async fn run(b: &mut Bench) -> Result<()> {
    let pods = ["single-cold", "single-warm"]
        .into_iter()
        .map(|n| PodSpec {
            name: n.into(),
            role: "single".into(),
            node: b.topology.target_node(0),
        })
        .collect();
    b.create_and_wait("single", pods, 2).await?;
    // Floors read the settings while rows are pushed into the bench.
    let settings = b.s.clone();
    let f = Floor::new(&settings);
    for (label, name, calls_floor, time_floor) in [
        (
            "cold",
            "single-cold",
            f.cold_apply_calls(),
            f.cold_apply_seconds(),
        ),
        ("warm", "single-warm", f.apply_calls(), f.apply_seconds()),
    ] {
        let one = measure(b, name).await?;
        let scenario = format!("1 single ({label})");
        let calls = one.apply_calls.total();
        let secs = one.apply.as_secs_f64();
        let warm = label == "warm";
        let mut time_row = Row::new(&scenario, "apply → assigned", "s", secs).floor(time_floor);
        let mut calls_row = Row::new(&scenario, "apply: OCI calls", "", calls as f64)
            .floor(calls_floor as f64)
            .note(one.apply_calls.summary());
        if warm {
            time_row = time_row.target("≤ 1.2x floor", secs <= 1.2 * time_floor);
            calls_row = calls_row.target("≤ floor + 1", calls <= calls_floor + 1);
        }
        b.rows.push(time_row);
        b.rows.push(calls_row);
        b.rows.push(
            Row::new(
                &scenario,
                "delete → released",
                "s",
                one.delete.as_secs_f64(),
            )
            .floor(f.delete_seconds()),
        );
        b.rows.push(
            Row::new(
                &scenario,
                "delete: OCI calls",
                "",
                one.delete_calls.total() as f64,
            )
            .floor(f.delete_calls() as f64)
            .note(one.delete_calls.summary()),
        );
        b.detail(
            &format!("single_{label}"),
            json!({
                "apply_seconds": secs,
                "apply_calls": one.apply_calls,
                "delete_seconds": one.delete.as_secs_f64(),
                "delete_calls": one.delete_calls,
            }),
        );
    }
    Ok(())
}

async fn measure(b: &Bench, name: &str) -> Result<One> {
    let settle = |quiet| {
        b.emulator
            .settle(Duration::from_secs(quiet), Duration::from_secs(60))
    };
    let (before, _) = settle(1).await?;
    let start = Instant::now();
    workload::create_reservedips(&b.client, vec![(name.into(), name.into())], 1).await?;
    b.tracker
        .wait(
            &format!("{name} to be assigned"),
            Duration::from_secs(60),
            |st| st.assigned_at(name).is_some(),
        )
        .await?;
    let assigned = b
        .tracker
        .read(|st| st.assigned_at(name))
        .ok_or_else(|| Error::Process(format!("{name}: no assigned time")))?;
    // Calls that trail the assignment (a last poll) belong to it too.
    let (after_apply, _) = settle(3).await?;
    let delete_start = Instant::now();
    workload::delete_reservedip(&b.client, name).await?;
    b.tracker
        .wait(
            &format!("{name} to be deleted"),
            Duration::from_secs(60),
            |st| st.deleted_at(name).is_some(),
        )
        .await?;
    let deleted = b
        .tracker
        .read(|st| st.deleted_at(name))
        .ok_or_else(|| Error::Process(format!("{name}: no deletion time")))?;
    let (after_delete, _) = settle(3).await?;
    Ok(One {
        apply: assigned.saturating_duration_since(start),
        apply_calls: after_apply.since(&before),
        delete: deleted.saturating_duration_since(delete_start),
        delete_calls: after_delete.since(&after_apply),
    })
}
