//! A ReservedIP reaches only what is its own: no pod of another namespace, no
//! public IP of another ReservedIP, even when its status is forged.

use anyhow::{Context, Result};
use integration_tests::{OperatorSandbox, condition};
use k8s_oci_operator::api::crd::State;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use test_support::TestNamespace;

fn rip(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: {name}\nspec:\n  tags:\n    owner: tenant\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_of_another_namespace_cannot_be_named() -> Result<()> {
    let sb = OperatorSandbox::start("tenant-a").await?;
    let other = TestNamespace::create(&sb.client, "tenant-b").await?;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = other.api();
    let pod = serde_json::from_value(json!({
        "metadata": { "name": "victim" },
        "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }] }
    }))?;
    pods.create(&Default::default(), &pod).await?;
    sb.create(&rip("grab", "  assignment:\n    podName: victim\n"))
        .await?;
    let r = sb.wait_state("grab", State::Allocated, false).await?;
    let assigned = condition(&r, "Assigned")?;
    assert_eq!(
        assigned.reason, "PodNotFound",
        "podName is looked up in the ReservedIP's own namespace only"
    );
    sb.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_status_does_not_hand_over_another_reserved_ips_address() -> Result<()> {
    let sb = OperatorSandbox::start("forged").await?;
    sb.create(&rip("victim", "")).await?;
    let victim = sb.wait_state("victim", State::Allocated, true).await?;
    let victim_ip = victim
        .status
        .as_ref()
        .and_then(|s| s.public_ip_id.clone())
        .context("ip")?;
    let before = sb.public_ip(&victim_ip).context("victim ip")?;

    sb.create(&rip("thief", "  assignment:\n    privateIPAddress: 10.0.66.201\n    subnetId: ocid1.subnet.oc1.sandbox.pods\n")).await?;
    sb.wait_state("thief", State::Assigned, true).await?;
    // Someone with write access to status points the thief at the victim's IP.
    let patch = json!({ "status": { "publicIPId": victim_ip } });
    sb.rips()
        .patch_status("thief", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let thief = sb.wait_state("thief", State::Failed, false).await?;
    let ready = condition(&thief, "Ready")?;
    assert_eq!(ready.reason, "PublicIPOwnedByOther", "{}", ready.message);
    let after = sb.public_ip(&victim_ip).context("victim ip")?;
    assert_eq!(
        after["freeformTags"], before["freeformTags"],
        "victim's tags untouched"
    );
    assert!(
        after["assignedEntityId"].is_null(),
        "victim's IP was not assigned anywhere: {after}"
    );

    // Deleting the thief releases its own IP (found by its tags), never the victim's.
    sb.delete_and_wait("thief").await?;
    assert_eq!(
        sb.public_ip(&victim_ip).context("victim ip")?["lifecycleState"],
        "AVAILABLE"
    );
    sb.assert_no_leak().await?;
    sb.finish().await
}
