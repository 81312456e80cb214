//! OCI reads are eventually consistent (issue 6, item 12): a GetPublicIp
//! right after CreatePublicIp may answer 404. That must never make the
//! operator create a second IP for the same ReservedIP; only a 404 that lasts
//! the grace period (`PUBLIC_IP_MISSING_GRACE_SECONDS`, 3 s in these tests)
//! counts as "deleted outside the operator".

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::{OperatorSandbox, condition, rip_yaml};
use k8s_oci_operator::api::crd::State;
use test_support::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_right_after_create_never_causes_a_second_create() -> Result<()> {
    let sb = OperatorSandbox::start("readlag").await?;
    // New IPs stay unreadable (GET 404, absent from lists) for 1.5 s.
    sb.emulator
        .with_world(|w| w.read_lag = Duration::from_millis(1500));
    sb.running_pod("web", None).await?;
    sb.create(&rip_yaml("held", None)).await?;
    sb.create(&rip_yaml("assigned", Some("web"))).await?;
    sb.wait_state("held", State::Allocated, true).await?;
    sb.wait_state("assigned", State::Assigned, true).await?;

    let lagged = sb.emulator.calls().count("GetPublicIp", "404");
    ensure!(lagged > 0, "no read hit the lag: the test proves nothing");
    ensure!(
        sb.calls("CreatePublicIp") == 2,
        "{} creates for 2 ReservedIPs",
        sb.calls("CreatePublicIp")
    );
    ensure!(sb.ours().len() == 2, "{:?}", sb.ours());
    println!("GetPublicIp answered 404 {lagged} times; 2 creates for 2 ReservedIPs");
    sb.report(
        "404 right after create (1.5 s read lag)",
        2,
        lagged,
        "GetPublicIp answered 404 for a new IP",
    )
    .await?;
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_ip_deleted_outside_is_replaced_only_after_the_grace_period() -> Result<()> {
    let sb = OperatorSandbox::start("vanished").await?;
    sb.create(&rip_yaml("held", None)).await?;
    let rip = sb.wait_state("held", State::Allocated, true).await?;
    let id = rip
        .status
        .and_then(|s| s.public_ip_id)
        .context("no public IP id")?;

    // Gone from OCI without a trace (no TERMINATED record): every read is 404.
    sb.emulator.with_world(|w| w.public_ips.remove(&id));
    wait_until(Duration::from_secs(10), || async {
        let r = sb.rips().get("held").await?;
        Ok(condition(&r, "Ready").is_ok_and(|c| c.reason == "PublicIPNotFound"))
    })
    .await
    .context("the 404 was not reported")?;
    // Within the grace period nothing is created.
    tokio::time::sleep(Duration::from_secs(1)).await;
    ensure!(
        sb.calls("CreatePublicIp") == 1,
        "a new IP was created within the grace period"
    );

    // After it, the loss is reported and a new IP allocated, once.
    wait_until(Duration::from_secs(20), || async {
        let r = sb.rips().get("held").await?;
        Ok(r.status
            .as_ref()
            .and_then(|s| s.public_ip_id.as_deref())
            .is_some_and(|new| new != id)
            && integration_tests::state(&r) == Some(State::Allocated))
    })
    .await
    .context("no new IP after the grace period")?;
    ensure!(sb.calls("CreatePublicIp") == 2);
    ensure!(sb.ours().len() == 1, "{:?}", sb.ours());
    sb.finish().await
}
