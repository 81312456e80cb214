//! Uninstalling never releases an address (issue 6, item 11): deleting the
//! ReservedIP CRD deletes every ReservedIP, and the operator (still running)
//! lets their public IPs go as they are: not released, not unassigned, only
//! without the ownership tags (so no orphan sweep or reinstall ever releases
//! them) and with a `k8s-oci-operator-retained` tag saying where they came
//! from. Alone in its test binary: it deletes and reinstalls the CRD.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::{OperatorSandbox, install_crd_again, is_live, rip_yaml};
use k8s_oci_operator::api::crd::State;
use k8s_oci_operator::decide::ownership::{TAG_CLUSTER, TAG_RETAINED};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::DeleteParams;
use test_support::wait_until;

const CRD: &str = "reservedips.oci.k8s.logmein.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_crd_keeps_every_address() -> Result<()> {
    let sb = OperatorSandbox::start("uninstall").await?;
    sb.running_pod("web", None).await?;
    sb.create(&rip_yaml("held", None)).await?;
    sb.create(&rip_yaml("assigned", Some("web"))).await?;
    let held = sb.wait_state("held", State::Allocated, true).await?;
    let assigned = sb.wait_state("assigned", State::Assigned, true).await?;
    let ids: Vec<String> = [held, assigned]
        .iter()
        .filter_map(|r| r.status.as_ref().and_then(|s| s.public_ip_id.clone()))
        .collect();
    ensure!(ids.len() == 2);

    let crds: Api<CustomResourceDefinition> = Api::all(sb.client.clone());
    crds.delete(CRD, &DeleteParams::default()).await?;
    let outcome = wait_until(Duration::from_secs(60), || async {
        Ok(crds.get_opt(CRD).await?.is_none())
    })
    .await
    .context("the CRD was not deleted (ReservedIPs held by their finalizer?)");
    // Put the CRD back for the tests that follow, whatever happened.
    install_crd_again(&sb.client).await?;
    outcome?;

    for id in &ids {
        let ip = sb.public_ip(id).context("the public IP is gone")?;
        ensure!(is_live(&ip), "released on uninstall: {ip}");
        ensure!(
            ip["freeformTags"].get(TAG_CLUSTER).is_none(),
            "still tagged as managed: {ip}"
        );
        ensure!(
            ip["freeformTags"][TAG_RETAINED]
                .as_str()
                .is_some_and(|v| v.starts_with(&sb.cluster_id)),
            "no retained tag: {ip}"
        );
    }
    let assigned_ip = sb.public_ip(&ids[1]).context("assigned IP")?;
    ensure!(
        assigned_ip["lifecycleState"] == "ASSIGNED",
        "the assignment was touched: {assigned_ip}"
    );
    ensure!(sb.calls("DeletePublicIp") == 0, "something was deleted");
    sb.finish().await
}
