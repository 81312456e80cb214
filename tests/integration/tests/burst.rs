//! A burst shares its reads (issue 19): while writes wait for the operator's
//! rate limit, pods on one VNIC are looked up with one ListPrivateIps of the
//! VNIC, and the IPs OCI is assigning are confirmed by shared listings of the
//! compartment, not one GetPublicIp each. Sharing must never cost
//! correctness: every IP lands on its own pod's private IP.

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::{OperatorSandbox, rip_yaml};
use k8s_oci_operator::api::crd::State;
use k8s_oci_operator::oci::Limits;
use oci_emulator::lifecycle::Timing;

/// ReservedIPs created at once, each naming its own pod on one node.
const N: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_shares_its_reads_and_every_ip_lands_on_its_own_pod() -> Result<()> {
    // ASSIGNING long enough for several IPs to be in transition together.
    let timing = Timing {
        assigning_ms: 1000,
        ..Timing::fast()
    };
    let mut sb = OperatorSandbox::start_with("burst-reads", timing).await?;
    let n = |v| NonZeroU32::new(v).context("a positive limit");
    // Writes queue (4 a second), reads do not.
    sb.limits = Limits {
        reads_per_second: n(50)?,
        writes_per_second: n(4)?,
        burst: n(1)?,
    };
    // No drift checks in the test's time: every listing is a burst's.
    sb.resync = Duration::from_secs(600);
    sb.start_operator()?;
    let names: Vec<String> = (0..N).map(|i| format!("burst-{i}")).collect();
    let mut pod_ips = Vec::new();
    for name in &names {
        let pod = sb.running_pod(name, Some("sandbox-node-0")).await?;
        pod_ips.push(pod.status.and_then(|s| s.pod_ip).context("pod IP")?);
    }
    // One first, alone: the operator learns how long OCI takes to assign
    // (a burst's looks then come when OCI is done, and together).
    sb.running_pod("warm-up", Some("sandbox-node-0")).await?;
    sb.create(&rip_yaml("warm-up", Some("warm-up"))).await?;
    sb.wait_state("warm-up", State::Assigned, true).await?;
    let before = |op| sb.calls(op);
    let (lists, gets, listings) = (
        before("ListPrivateIps"),
        before("GetPublicIp"),
        before("ListPublicIps"),
    );

    for name in &names {
        sb.create(&rip_yaml(name, Some(name))).await?;
    }
    for (name, pod_ip) in names.iter().zip(&pod_ips) {
        let rip = sb
            .wait_state_within(name, State::Assigned, true, Duration::from_secs(60))
            .await?;
        let status = rip.status.context("status")?;
        let id = status.public_ip_id.context("public IP id")?;
        let on_oci = sb.public_ip(&id).context("the public IP in OCI")?;
        let private_id = on_oci["privateIpId"].as_str().context("assigned")?;
        let private = sb.private_ip(private_id).context("its private IP")?;
        ensure!(
            private["ipAddress"] == pod_ip.as_str()
                && status.private_ip_address.as_deref() == Some(pod_ip.as_str()),
            "{name}: public IP on {private} (status says {:?}), pod IP {pod_ip}",
            status.private_ip_address
        );
    }
    let lists = sb.calls("ListPrivateIps") - lists;
    let gets = sb.calls("GetPublicIp") - gets;
    let listings = sb.calls("ListPublicIps") - listings;
    println!(
        "{N} ReservedIPs: ListPrivateIps {lists}, GetPublicIp {gets}, ListPublicIps {listings}"
    );
    // One each would be N; shared, a handful.
    ensure!(
        lists <= N as u64 / 2,
        "{lists} ListPrivateIps for {N} pods on one VNIC"
    );
    // One GetPublicIp each (at least) would be N.
    ensure!(
        gets + listings < N as u64,
        "{gets} GetPublicIp and {listings} ListPublicIps to confirm {N} assignments"
    );
    sb.finish().await
}
