//! Scenario 2: N ReservedIPs, each naming a running pod, created at once (a
//! StatefulSet-sized wave): time until all are `assigned` against the write
//! rate's bound, the share of calls answered 429 and the calls per
//! ReservedIP. Smaller bursts (`--bursts`, 50 and 200) first, then the large
//! one. Then the fill: more of the same until the idle scenarios' size is in
//! place (reported, no target).

use std::time::Duration;

use serde_json::json;

use super::Bench;
use crate::error::Result;
use crate::floor::Floor;
use crate::report::Row;

/// Issue 19's bound on a burst's time: 1.05x the write rate's.
const TIME_TARGET: f64 = 1.05;
/// Issue 19's bound on a burst's calls: the create and a fifth of a read.
const CALLS_TARGET: f64 = 1.2;

pub async fn run(b: &mut Bench) -> Result<()> {
    let mut from = 0;
    let sizes: Vec<usize> = b.s.bursts.iter().copied().chain([b.s.burst]).collect();
    for n in sizes {
        wave(b, from, n).await?;
        from += n;
    }
    b.mark("2 burst");
    // Fill up to the idle size: the same wave again, smaller or larger.
    let (n, m) = (from, b.s.idle_ips);
    if m > n {
        b.create_target_pods("fill", n, m).await?;
        let floor = Floor::new(&b.s).burst_seconds(m - n);
        let max = Duration::from_secs_f64(floor * 5.0 + 300.0);
        let took = b.assign_wave(n, m, max).await?.as_secs_f64();
        b.rows.push(
            Row::new(&format!("2 fill (+{})", m - n), "all assigned", "s", took)
                .floor(floor)
                .note(format!("{n} ReservedIPs already in place")),
        );
        b.detail(
            "fill",
            json!({"n": m - n, "seconds": took, "floor_seconds": floor}),
        );
    }
    Ok(())
}

/// One burst of `n` ReservedIPs, those numbered from `from`.
async fn wave(b: &mut Bench, from: usize, n: usize) -> Result<()> {
    let pods_took = b
        .create_target_pods(&format!("burst-{n}"), from, from + n)
        .await?;
    let (before, _) = b
        .emulator
        .settle(Duration::from_secs(1), Duration::from_secs(60))
        .await?;
    let cpu_before = b.sample()?;
    let floor = Floor::new(&b.s).burst_seconds(n);
    let max = Duration::from_secs_f64(floor * 5.0 + 300.0);
    let wave = b.assign_wave_timed(from, from + n, max).await?;
    let took = wave.took.as_secs_f64();
    let (after, _) = b
        .emulator
        .settle(Duration::from_secs(3), Duration::from_secs(120))
        .await?;
    let cpu_after = b.sample()?;
    let calls = after.since(&before);
    let share = calls.throttled() as f64 / calls.total().max(1) as f64 * 100.0;
    let per_ip = calls.total() as f64 / n as f64;
    let scenario = format!("2 burst (N={n})");
    b.rows.push(
        Row::new(&scenario, "all assigned", "s", took)
            .floor(floor)
            .target(
                &format!("≤ {TIME_TARGET}x floor"),
                took <= TIME_TARGET * floor,
            )
            .note(format!(
                "floor = (N − {0}) / {0} writes/s + the last create, ASSIGNING and one read",
                b.s.write_rate
            )),
    );
    b.rows.push(
        Row::new(&scenario, "calls answered 429", "%", share)
            .target("< 2%", share < 2.0)
            .note(format!("{} of {}", calls.throttled(), calls.total())),
    );
    b.rows.push(
        Row::new(&scenario, "OCI calls per ReservedIP", "", per_ip)
            .floor(Floor::new(&b.s).burst_calls())
            .target(&format!("≤ {CALLS_TARGET}"), per_ip <= CALLS_TARGET)
            .note(calls.summary()),
    );
    b.rows.push(Row::new(
        &scenario,
        "operator CPU during the wave",
        "s",
        cpu_after.cpu_seconds - cpu_before.cpu_seconds,
    ));
    b.detail(
        &format!("burst_{n}"),
        json!({
            "n": n, "seconds": took, "floor_seconds": floor, "pods_running_after_seconds": pods_took.as_secs_f64(),
            "calls": calls, "throttled_percent": share,
            "cpu_seconds": cpu_after.cpu_seconds - cpu_before.cpu_seconds,
            "rss_kib_after": cpu_after.rss_kib,
            "started_unix_ms": wave.started_unix_ms,
            "creates_seconds": wave.created.as_secs_f64(),
            "assigned_seconds": {
                "first": wave.quantile(0.0), "p10": wave.quantile(0.1), "p50": wave.quantile(0.5),
                "p90": wave.quantile(0.9), "last": wave.quantile(1.0),
            },
        }),
    );
    Ok(())
}
