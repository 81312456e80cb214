//! What Prometheus scrapes from the operator process: every documented
//! family from the start (docs/metrics.md and `/metrics` list the same
//! ones), and the series moving as a ReservedIP goes to `assigned` through
//! OCI failures and throttling.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result};
use integration_tests::probes::{answers, families, free_port, sample, scrape};
use integration_tests::{OperatorProcess, OperatorSandbox, repo_root, rip_yaml};
use k8s_oci_operator::api::crd::State;
use oci_emulator::{FaultConfig, FaultRule, RateLimit};
use test_support::wait_until;

const GRACE_PERIOD: Duration = Duration::from_secs(30);

/// The metric names of docs/metrics.md's reference table, but those "per
/// policy", which have no series (and so are not served) before a policy is
/// loaded.
fn documented() -> Result<BTreeSet<String>> {
    let doc = std::fs::read_to_string(repo_root().join("docs/metrics.md"))?;
    Ok(doc
        .lines()
        .filter(|line| !line.contains("| Per policy"))
        .filter_map(|line| {
            let name = line.strip_prefix("| `")?.split('`').next()?;
            Some(name.to_string())
        })
        .collect())
}

/// A scrape's families under the names PromQL uses: a counter `x` is
/// queried as `x_total`.
fn served(scrape: &str) -> BTreeSet<String> {
    families(scrape)
        .into_iter()
        .map(|(name, kind)| match kind.as_str() {
            "counter" => format!("{name}_total"),
            _ => name,
        })
        .collect()
}

async fn operator(sb: &OperatorSandbox, extra: &[(&str, &str)]) -> Result<(OperatorProcess, u16)> {
    let port = free_port()?;
    let health = format!("127.0.0.1:{port}");
    let mut env = vec![("HEALTH_ADDR", health.as_str())];
    env.extend_from_slice(extra);
    let op = OperatorProcess::start_with_env(sb, "metrics", false, &env).await?;
    answers(port, "/readyz", 200, Duration::from_secs(30)).await?;
    Ok((op, port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_family_is_served_at_zero_from_the_start() -> Result<()> {
    let mut sb = OperatorSandbox::start("metrics-start").await?;
    sb.stop_operator();
    let (mut op, port) = operator(&sb, &[]).await?;
    let text = scrape(port).await?;
    let (documented, served) = (documented()?, served(&text));
    assert!(documented.len() >= 20, "{documented:?}");
    assert_eq!(
        documented, served,
        "docs/metrics.md and /metrics list different families"
    );
    // Each family has its series before anything happened: every OCI
    // operation, pass result and state at zero.
    for series in [
        r#"k8s_oci_operator_oci_calls_total{operation="CreatePublicIp",outcome="ok"}"#,
        r#"k8s_oci_operator_oci_calls_total{operation="DeletePublicIp",outcome="ok"}"#,
        r#"k8s_oci_operator_oci_call_duration_seconds_count{operation="UpdatePublicIp"}"#,
        r#"k8s_oci_operator_oci_throttled_total{operation="CreatePublicIp"}"#,
        r#"k8s_oci_operator_oci_retries_total{operation="GetPublicIp"}"#,
        r#"k8s_oci_operator_oci_rate_limit_wait_seconds_count{kind="write"}"#,
        r#"k8s_oci_operator_reconcile_total{result="success"}"#,
        r#"k8s_oci_operator_reconcile_total{result="failed"}"#,
        r#"k8s_oci_operator_reconcile_total{result="error"}"#,
        r#"k8s_oci_operator_reconcile_errors_total{reason="KubernetesAPI"}"#,
        "k8s_oci_operator_reconcile_duration_seconds_count",
        "k8s_oci_operator_spec_to_ready_seconds_count",
        r#"k8s_oci_operator_orphan_sweeps_total{result="error"}"#,
        "k8s_oci_operator_orphans_released_total",
        r#"k8s_oci_operator_reservedips{state="assigned"}"#,
        r#"k8s_oci_operator_reservedips{state="failed"}"#,
    ] {
        assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
    }
    assert_eq!(sample(&text, "k8s_oci_operator_leader"), Some(1.0));
    let build = text
        .lines()
        .find(|l| l.starts_with("k8s_oci_operator_build_info{"))
        .context("no build_info")?;
    assert!(
        build.contains(&format!(r#"version="{}""#, env!("CARGO_PKG_VERSION")))
            && build.ends_with(" 1"),
        "{build}"
    );
    let rss = sample(&text, "process_resident_memory_bytes").context("no RSS")?;
    assert!(rss > 1e6, "resident memory {rss}");
    assert!(sample(&text, "process_open_fds").is_some_and(|n| n > 0.0));
    op.stop(GRACE_PERIOD).await?;
    sb.start_operator()?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_reservedip_through_failures_to_assigned() -> Result<()> {
    let mut sb = OperatorSandbox::start("metrics-flow").await?;
    sb.stop_operator();
    let (mut op, port) = operator(&sb, &[("ORPHAN_SWEEP_INTERVAL_SECONDS", "1")]).await?;
    let value = |text: &str, series: &str| sample(text, series).unwrap_or(-1.0);
    // OCI fails the creates (503), then throttles them (429), then lets them through.
    let mut faults = FaultConfig::default();
    faults.operations.insert(
        "CreatePublicIp".into(),
        FaultRule {
            error503_probability: 1.0,
            ..Default::default()
        },
    );
    sb.emulator.set_faults(faults);
    sb.running_pod("pod-0", None).await?;
    sb.create(&rip_yaml("rip-0", Some("pod-0"))).await?;
    const FAILED_CREATES: &str =
        r#"k8s_oci_operator_oci_calls_total{operation="CreatePublicIp",outcome="503"}"#;
    wait_until(Duration::from_secs(20), || async {
        Ok(value(&scrape(port).await?, FAILED_CREATES) >= 1.0)
    })
    .await
    .context("no failed create counted")?;
    let text = scrape(port).await?;
    assert!(
        value(
            &text,
            r#"k8s_oci_operator_reconcile_total{result="failed"}"#
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            r#"k8s_oci_operator_reconcile_errors_total{reason="OCIServiceUnavailable"}"#
        ) >= 1.0,
        "the failure's reason is not counted:\n{text}"
    );
    let mut faults = FaultConfig::default();
    faults.operations.insert(
        "CreatePublicIp".into(),
        FaultRule {
            rate_limit: Some(RateLimit {
                per_second: 0.001,
                burst: 0.0,
            }),
            ..Default::default()
        },
    );
    sb.emulator.set_faults(faults);
    const THROTTLED: &str = r#"k8s_oci_operator_oci_throttled_total{operation="CreatePublicIp"}"#;
    wait_until(Duration::from_secs(20), || async {
        Ok(value(&scrape(port).await?, THROTTLED) >= 1.0)
    })
    .await
    .context("no throttled create counted")?;
    sb.emulator.set_faults(FaultConfig::default());
    sb.wait_state("rip-0", State::Assigned, true).await?;
    // The gauge by state counts what the operator's cache holds: its watch
    // may bring the status the test just read a moment later.
    const ASSIGNED: &str = r#"k8s_oci_operator_reservedips{state="assigned"}"#;
    wait_until(Duration::from_secs(10), || async {
        Ok(value(&scrape(port).await?, ASSIGNED) == 1.0)
    })
    .await
    .context("the assigned ReservedIP is not counted by state")?;
    let text = scrape(port).await?;
    let creates = |outcome: &str| {
        value(
            &text,
            &format!(
                r#"k8s_oci_operator_oci_calls_total{{operation="CreatePublicIp",outcome="{outcome}"}}"#
            ),
        )
    };
    let (ok, unavailable, throttled) = (creates("ok"), creates("503"), creates("429"));
    assert_eq!(ok, 1.0, "{text}");
    // Every create after the first repeated a failed one (same retry token).
    let retries = value(
        &text,
        r#"k8s_oci_operator_oci_retries_total{operation="CreatePublicIp"}"#,
    );
    assert_eq!(retries, ok + unavailable + throttled - 1.0, "{text}");
    assert_eq!(
        value(
            &text,
            r#"k8s_oci_operator_oci_call_duration_seconds_count{operation="CreatePublicIp"}"#
        ),
        ok + unavailable + throttled
    );
    assert_eq!(value(&text, ASSIGNED), 1.0);
    assert_eq!(
        value(&text, "k8s_oci_operator_spec_to_ready_seconds_count"),
        1.0
    );
    assert!(
        value(
            &text,
            r#"k8s_oci_operator_reconcile_total{result="success"}"#
        ) >= 1.0
    );
    assert!(
        value(
            &text,
            r#"k8s_oci_operator_orphan_sweeps_total{result="success"}"#
        ) >= 1.0
    );
    // A spec change (a new pod) is timed to Ready again; the old state is gone.
    sb.running_pod("pod-1", None).await?;
    sb.apply(&rip_yaml("rip-0", Some("pod-1"))).await?;
    wait_until(Duration::from_secs(30), || async {
        let text = scrape(port).await?;
        Ok(
            value(&text, "k8s_oci_operator_spec_to_ready_seconds_count") == 2.0
                && value(&text, r#"k8s_oci_operator_reservedips{state="assigned"}"#) == 1.0,
        )
    })
    .await
    .context("the move to pod-1 was not timed")?;
    println!(
        "creates: {ok} ok, {unavailable} 503, {throttled} 429, {retries} retries; apply to Ready {:.2} s",
        value(&text, "k8s_oci_operator_spec_to_ready_seconds_sum")
    );
    op.stop(GRACE_PERIOD).await?;
    sb.start_operator()?;
    sb.finish().await
}
