//! The API server goes away mid-work (every connection of the operator cut,
//! new ones refused, for several seconds) and comes back: the operator
//! recovers by itself, without a restart, and catches up on what changed
//! while it was cut off.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use integration_tests::OperatorSandbox;
use integration_tests::outage::api_server_proxy;
use k8s_oci_operator::api::crd::State;

/// How long the operator may take to catch up once the API server is back.
/// Each watch retries at most 10 s apart (5 s and jitter) and no watch's
/// error holds the others back; the limit leaves room for that retry, the
/// re-list and one allocation on a loaded machine, not for a second backoff
/// period (each watch's stale error from the outage pausing all of them
/// again, as kube's controller does by default) nor for kube's default
/// backoff of up to a minute.
const CATCH_UP: Duration = Duration::from_secs(18);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_recovers_from_an_api_server_outage_without_restart() -> Result<()> {
    let mut sb = OperatorSandbox::start("outage").await?;
    let (config, outage) = api_server_proxy().await?;
    sb.operator_client = Some(kube::Client::try_from(config)?);
    sb.start_operator()?;

    let rip = |name: &str| {
        format!(
            "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: {name}\nspec:\n  tags:\n    owner: My team\n"
        )
    };
    sb.create(&rip("before")).await?;
    sb.wait_state("before", State::Allocated, true).await?;

    outage.down();
    let cut_at = Instant::now();
    // Changes while the operator cannot see the API server.
    sb.create(&rip("during")).await?;
    sb.running_pod("some-pod", None).await?;
    sb.apply(&format!(
        "{}  assignment:\n    podName: some-pod\n",
        rip("before")
    ))
    .await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        sb.ours().len() == 1,
        "nothing new was allocated during the outage"
    );
    let cut_for = cut_at.elapsed();
    outage.up();
    let back = Instant::now();

    sb.wait_state_within("during", State::Allocated, true, CATCH_UP)
        .await
        .context("missed a ReservedIP created during the outage")?;
    let caught_up = back.elapsed();
    sb.wait_state("before", State::Assigned, true)
        .await
        .context("missed a change made during the outage")?;
    sb.assert_no_leak().await?;
    println!(
        "API server cut for {:.1} s: the operator saw the ReservedIP created meanwhile {:.1} s after it came back, without a restart",
        cut_for.as_secs_f64(),
        caught_up.as_secs_f64()
    );
    sb.report(
        "API server unreachable for 6 s",
        2,
        1,
        "connections to the API server cut, changes made meanwhile",
    )
    .await?;
    sb.operator_client = None;
    sb.start_operator()?;
    sb.finish().await
}
