//! What an SRE relies on: probes that say what they mean, and a SIGTERM that
//! stops the operator within the pod's grace period whatever it is doing,
//! releasing the Lease so the standby takes over at once. The operator runs
//! as a process (the real binary, its real signal handling), in front of the
//! real API server through a proxy that can cut it off.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use integration_tests::outage::in_front_of_the_api_server;
use integration_tests::probes::{answers, free_port, sample, scrape, status_of};
use integration_tests::{OperatorProcess, OperatorSandbox, lease_holder, rip_yaml};
use k8s_oci_operator::api::crd::State;
use oci_emulator::{FaultConfig, FaultRule};
use test_support::wait_until;

/// The deployment's terminationGracePeriodSeconds (Kubernetes' default).
const GRACE_PERIOD: Duration = Duration::from_secs(30);
/// SHUTDOWN_TIMEOUT_SECONDS for these tests: passes under way get this long.
const SHUTDOWN_TIMEOUT: &str = "5";

/// Faults that make every CreatePublicIp take `latency_ms`.
fn slow_creates(latency_ms: u64) -> FaultConfig {
    let slow = FaultRule {
        latency_ms,
        ..Default::default()
    };
    let mut faults = FaultConfig::default();
    faults.operations.insert("CreatePublicIp".into(), slow);
    faults
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_api_server_and_sigterm_stops_while_it_is_cut_off() -> Result<()> {
    let mut sb = OperatorSandbox::start("probes").await?;
    sb.stop_operator();
    let (outage, kubeconfig) = in_front_of_the_api_server().await?;
    let port = free_port()?;
    let health = format!("127.0.0.1:{port}");
    let kubeconfig = kubeconfig.display().to_string();
    let mut op = OperatorProcess::start_with_env(
        &sb,
        "probes",
        false,
        &[
            ("HEALTH_ADDR", &health),
            ("KUBECONFIG", &kubeconfig),
            ("SHUTDOWN_TIMEOUT_SECONDS", SHUTDOWN_TIMEOUT),
        ],
    )
    .await?;
    answers(port, "/readyz", 200, Duration::from_secs(30)).await?;
    assert_eq!(status_of(port, "/healthz").await, 200);
    assert_eq!(status_of(port, "/nothing-here").await, 404);
    assert_eq!(status_of(port, "/metrics").await, 200);

    outage.down();
    let not_ready = answers(port, "/readyz", 503, Duration::from_secs(15)).await?;
    assert_eq!(
        status_of(port, "/healthz").await,
        200,
        "an unreachable API server is not a reason to restart"
    );
    outage.up();
    let ready_again = answers(port, "/readyz", 200, Duration::from_secs(15)).await?;

    // A pass under way when the API server goes: OCI takes 4 s to create,
    // then the pass's status write finds the API server cut off.
    sb.emulator.set_faults(slow_creates(4_000));
    sb.running_pod("pod-0", None).await?;
    sb.create(&rip_yaml("rip-0", Some("pod-0"))).await?;
    // The allocation marker is written just before the create is sent.
    wait_until(Duration::from_secs(10), || async {
        let rip = sb.rips().get("rip-0").await?;
        Ok(rip.status.is_some_and(|s| s.allocation_token.is_some()))
    })
    .await
    .context("the create never began")?;
    outage.down();
    answers(port, "/readyz", 503, Duration::from_secs(15)).await?;
    let took = op.stop(GRACE_PERIOD).await?;
    println!(
        "readiness: 503 {:.1} s after the API server was cut, 200 {:.1} s after it came back; SIGTERM with the API server cut off right after a create (its status write failed, waiting to retry): exited in {:.1} s (shutdown timeout {SHUTDOWN_TIMEOUT} s, grace period {} s)",
        not_ready.as_secs_f64(),
        ready_again.as_secs_f64(),
        took.as_secs_f64(),
        GRACE_PERIOD.as_secs()
    );
    outage.up();
    sb.emulator.set_faults(FaultConfig::default());
    // The abandoned pass is finished by the next operator, nothing created twice.
    sb.start_operator()?;
    sb.wait_state("rip-0", State::Assigned, true).await?;
    assert_eq!(sb.ours().len(), 1, "{:?}", sb.ours());
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_idle_and_mid_pass_within_the_grace_period_and_nothing_is_lost() -> Result<()>
{
    let mut sb = OperatorSandbox::start("sigterm").await?;
    sb.stop_operator();
    let env = [("SHUTDOWN_TIMEOUT_SECONDS", SHUTDOWN_TIMEOUT)];

    // Idle: nothing under way.
    let mut op = OperatorProcess::start_with_env(&sb, "idle", false, &env).await?;
    sb.running_pod("pod-0", None).await?;
    sb.create(&rip_yaml("rip-0", Some("pod-0"))).await?;
    sb.wait_state("rip-0", State::Assigned, true).await?;
    let idle = op.stop(GRACE_PERIOD).await?;

    // Mid-pass, OCI slow: a create takes 20 s, longer than the shutdown
    // timeout; the pass is abandoned and the next process finishes it.
    sb.emulator.set_faults(slow_creates(20_000));
    let mut op = OperatorProcess::start_with_env(&sb, "busy", false, &env).await?;
    sb.running_pod("pod-1", None).await?;
    sb.create(&rip_yaml("rip-1", Some("pod-1"))).await?;
    // Long enough for the pass to be inside the create (it resolves the pod
    // and writes the allocation marker first).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let busy = op.stop(GRACE_PERIOD).await?;

    sb.emulator.set_faults(FaultConfig::default());
    let mut op = OperatorProcess::start(&sb, "after", false).await?;
    sb.wait_state("rip-1", State::Assigned, true).await?;
    sb.wait_state("rip-0", State::Assigned, true).await?;
    op.stop(GRACE_PERIOD).await?;
    sb.start_operator()?;
    sb.assert_no_leak().await?;
    println!(
        "SIGTERM: idle, exited in {:.2} s; mid-create with OCI taking 20 s, exited in {:.1} s (shutdown timeout {SHUTDOWN_TIMEOUT} s, grace period {} s); the next process finished the abandoned ReservedIP, nothing leaked",
        idle.as_secs_f64(),
        busy.as_secs_f64(),
        GRACE_PERIOD.as_secs()
    );
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_leader_hands_the_lease_over_at_once() -> Result<()> {
    let mut sb = OperatorSandbox::start("handover").await?;
    sb.stop_operator();
    // A long Lease: waiting for it to expire would take 30 s.
    let lease_seconds = "30";
    let (port_a, port_b) = (free_port()?, free_port()?);
    let (health_a, health_b) = (format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}"));
    let env = |health| {
        [
            ("HEALTH_ADDR", health),
            ("LEASE_DURATION_SECONDS", lease_seconds),
            ("SHUTDOWN_TIMEOUT_SECONDS", SHUTDOWN_TIMEOUT),
        ]
    };
    let mut a = OperatorProcess::start_with_env(&sb, "op-a", true, &env(&health_a)).await?;
    let holder = || lease_holder(&sb);
    wait_until(Duration::from_secs(30), || async {
        Ok(holder().await?.as_deref() == Some("op-a"))
    })
    .await
    .context("op-a never led")?;
    let mut b = OperatorProcess::start_with_env(&sb, "op-b", true, &env(&health_b)).await?;
    // The standby is ready (it can take over); both are live.
    answers(port_b, "/readyz", 200, Duration::from_secs(30)).await?;
    answers(port_a, "/readyz", 200, Duration::from_secs(30)).await?;
    assert_eq!(holder().await?.as_deref(), Some("op-a"));
    // Their metrics say which one leads.
    const LEADER: &str = "k8s_oci_operator_leader";
    assert_eq!(sample(&scrape(port_a).await?, LEADER), Some(1.0));
    assert_eq!(sample(&scrape(port_b).await?, LEADER), Some(0.0));

    let stopped = Instant::now();
    let exit = a.stop(GRACE_PERIOD).await?;
    wait_until(Duration::from_secs(20), || async {
        Ok(holder().await?.as_deref() == Some("op-b"))
    })
    .await
    .context("the standby did not take over within 20 s (the Lease lasts 30 s)")?;
    let handover = stopped.elapsed();
    wait_until(Duration::from_secs(5), || async {
        Ok(sample(&scrape(port_b).await?, LEADER) == Some(1.0))
    })
    .await
    .context("the new leader's metrics do not say it leads")?;
    // The new leader works.
    sb.running_pod("pod-0", None).await?;
    sb.create(&rip_yaml("rip-0", Some("pod-0"))).await?;
    sb.wait_state("rip-0", State::Assigned, true).await?;
    b.stop(GRACE_PERIOD).await?;
    sb.start_operator()?;
    println!(
        "leader stopped with SIGTERM: exited in {:.1} s, the standby held the Lease {:.1} s after the signal (Lease duration {lease_seconds} s)",
        exit.as_secs_f64(),
        handover.as_secs_f64()
    );
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_stuck_past_the_limit_fails_liveness_until_it_ends() -> Result<()> {
    let mut sb = OperatorSandbox::start("liveness").await?;
    sb.stop_operator();
    let port = free_port()?;
    let health = format!("127.0.0.1:{port}");
    let mut op = OperatorProcess::start_with_env(
        &sb,
        "liveness",
        false,
        &[("HEALTH_ADDR", &health), ("STUCK_PASS_SECONDS", "1")],
    )
    .await?;
    answers(port, "/readyz", 200, Duration::from_secs(30)).await?;
    assert_eq!(status_of(port, "/healthz").await, 200);
    // A create that takes 6 s holds its pass past the 1 s limit.
    sb.emulator.set_faults(slow_creates(6_000));
    sb.running_pod("pod-0", None).await?;
    sb.create(&rip_yaml("rip-0", Some("pod-0"))).await?;
    answers(port, "/healthz", 503, Duration::from_secs(10)).await?;
    sb.wait_state("rip-0", State::Assigned, true).await?;
    answers(port, "/healthz", 200, Duration::from_secs(10)).await?;
    sb.emulator.set_faults(FaultConfig::default());
    op.stop(GRACE_PERIOD).await?;
    sb.start_operator()?;
    sb.finish().await
}
