//! Scenario 5: the operator's resident memory with many pods in the cluster,
//! most of them named by no ReservedIP (it should watch only what it needs).

use std::time::Duration;

use serde_json::json;

use super::{Bench, mib};
use crate::error::Result;
use crate::report::Row;
use crate::workload::PodSpec;

/// Target of issue 7.
const TARGET_MIB: f64 = 64.0;

pub async fn run(b: &mut Bench) -> Result<()> {
    let (first, total) = (b.s.idle_ips, b.s.pods);
    let before = b.sample()?;
    // Drift checks may run meanwhile: they are counted, not waited out.
    let calls_before = b.emulator.calls().await?;
    let pods = (first..total)
        .map(|i| PodSpec {
            name: format!("filler-{i}"),
            role: "filler".into(),
            node: b.topology.filler_node(i - first),
        })
        .collect();
    let took = b.create_and_wait("filler", pods, total - first).await?;
    // Let the watch events drain before reading memory.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = b.sample()?;
    let calls = b.emulator.calls().await?.since(&calls_before);
    let ips = b.s.idle_ips;
    let scenario = format!("5 memory ({total} pods, {ips} ReservedIPs)");
    let rss = mib(after.rss_kib);
    b.rows.push(
        Row::new(&scenario, "operator RSS", "MiB", rss)
            .target("< 64 MiB", rss < TARGET_MIB)
            .note(format!("peak (VmHWM) so far {:.1} MiB", mib(after.hwm_kib))),
    );
    b.rows.push(
        Row::new(
            &scenario,
            &format!("RSS growth while {} pods arrived", total - first),
            "MiB",
            mib(after.rss_kib) - mib(before.rss_kib),
        )
        .note("pods are watched as metadata, not cached"),
    );
    b.rows.push(
        Row::new(
            &scenario,
            &format!("operator CPU while {} pods arrived", total - first),
            "s",
            after.cpu_seconds - before.cpu_seconds,
        )
        .note(format!(
            "{:.0} s for the pods to run; OCI calls meanwhile: {}",
            took.as_secs_f64(),
            calls.total()
        )),
    );
    b.detail(
        "memory",
        json!({
            "pods": total, "reservedips": ips,
            "rss_kib": after.rss_kib, "hwm_kib": after.hwm_kib,
            "rss_kib_before_pods": before.rss_kib,
            "cpu_seconds_during_pods": after.cpu_seconds - before.cpu_seconds,
            "pods_running_after_seconds": took.as_secs_f64(),
            "oci_calls_during_pods": calls,
        }),
    );
    Ok(())
}
