//! Lifecycle transitions as a client sees them.

use crate::support::*;
use k8s_oci_operator::oci::{
    CreatePublicIpDetails, Deletion, Lifetime, OciNetwork, PublicIpState, UpdatePublicIpDetails,
};
use oci_emulator::{EmulatorConfig, Timing};

/// Slow enough to see every transitional state reliably, even on a busy machine.
fn observable() -> Timing {
    Timing {
        provisioning_ms: 500,
        assigning_ms: 500,
        unassigning_ms: 500,
        terminating_ms: 500,
        terminated_retention_ms: 1000,
    }
}

#[tokio::test]
async fn reserved_ip_goes_through_every_state() {
    let env = start_with(EmulatorConfig::with_seed(sandbox_seed()).timing(observable())).await;
    let client = &env.client;
    let pod_a = pod_ip(0, 5);
    let pod_b = pod_ip(1, 6);

    let mut details = CreatePublicIpDetails::reserved(COMPARTMENT);
    details.display_name = Some("web".into());
    let created = client
        .create_public_ip(&details, "token-lifecycle")
        .await
        .expect("create");
    assert_eq!(created.lifecycle_state, PublicIpState::Provisioning);
    assert_eq!(created.lifetime, Lifetime::Reserved);
    assert_eq!(created.scope.as_deref(), Some("REGION"));
    assert!(created.etag.is_some(), "create answers with an etag");
    let address = created.ip_address.clone().expect("address");
    assert!(address.starts_with("198.51.100."), "{address}");
    wait_for(client, &created.id, PublicIpState::Available).await;

    // Assign: ASSIGNING shows the target in assignedEntityId, privateIpId stays null.
    let assigning = client
        .update_public_ip(&created.id, &UpdatePublicIpDetails::assign(&pod_a), None)
        .await
        .expect("assign");
    assert_eq!(assigning.lifecycle_state, PublicIpState::Assigning);
    assert_eq!(
        assigning.assigned_entity_id.as_deref(),
        Some(pod_a.as_str())
    );
    assert_eq!(assigning.private_ip_id, None);
    let assigned = wait_for(client, &created.id, PublicIpState::Assigned).await;
    assert_eq!(assigned.private_ip_id.as_deref(), Some(pod_a.as_str()));
    assert_eq!(assigned.assigned_entity_type.as_deref(), Some("PRIVATE_IP"));
    let found = client
        .get_public_ip_by_private_ip_id(&pod_a)
        .await
        .expect("lookup");
    assert_eq!(found.map(|ip| ip.id), Some(created.id.clone()));

    // Move to another pod IP.
    let moving = client
        .update_public_ip(&created.id, &UpdatePublicIpDetails::assign(&pod_b), None)
        .await
        .expect("move");
    assert_eq!(moving.lifecycle_state, PublicIpState::Assigning);
    assert_eq!(
        client
            .get_public_ip_by_private_ip_id(&pod_a)
            .await
            .expect("lookup"),
        None
    );
    let moved = wait_for(client, &created.id, PublicIpState::Assigned).await;
    assert_eq!(moved.private_ip_id.as_deref(), Some(pod_b.as_str()));
    assert_eq!(
        moved.ip_address.as_deref(),
        Some(address.as_str()),
        "a move keeps the address"
    );

    // Changes of privateIpId are refused while a transition runs (retryable).
    let unassigning = client
        .update_public_ip(&created.id, &UpdatePublicIpDetails::unassign(), None)
        .await
        .expect("unassign");
    assert_eq!(unassigning.lifecycle_state, PublicIpState::Unassigning);
    let busy = client
        .update_public_ip(&created.id, &UpdatePublicIpDetails::assign(&pod_a), None)
        .await
        .expect_err("busy");
    assert_eq!(busy.code(), Some("IncorrectState"));
    assert!(busy.is_retryable());
    let free = wait_for(client, &created.id, PublicIpState::Available).await;
    assert_eq!(free.assigned_entity_id, None);

    // Delete: TERMINATING, TERMINATED (still visible), then gone.
    assert_eq!(
        client
            .delete_public_ip(&created.id, None)
            .await
            .expect("delete"),
        Deletion::Deleted
    );
    let terminating = client.get_public_ip(&created.id).await.expect("get");
    assert_eq!(terminating.lifecycle_state, PublicIpState::Terminating);
    wait_for(client, &created.id, PublicIpState::Terminated).await;
    let in_state = state_public_ip(&env.emulator, &created.id).expect("TERMINATED is in state");
    assert_eq!(in_state["lifecycleState"], "TERMINATED");
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let gone = client
        .get_public_ip(&created.id)
        .await
        .expect_err("vanished");
    assert!(gone.is_not_found());
    assert_eq!(
        client
            .delete_public_ip(&created.id, None)
            .await
            .expect("delete again"),
        Deletion::AlreadyGone
    );
}

#[tokio::test]
async fn create_with_target_assigns_directly() {
    let env = start().await;
    let pod = pod_ip(2, 9);
    let mut details = CreatePublicIpDetails::reserved(COMPARTMENT);
    details.private_ip_id = Some(pod.clone());
    details.freeform_tags = Some([("owner".to_string(), "test".to_string())].into());
    let created = env
        .client
        .create_public_ip(&details, "t-direct")
        .await
        .expect("create");
    assert_eq!(created.lifecycle_state, PublicIpState::Assigning);
    assert_eq!(created.private_ip_id, None);
    let assigned = wait_for(&env.client, &created.id, PublicIpState::Assigned).await;
    assert_eq!(assigned.private_ip_id.as_deref(), Some(pod.as_str()));
    assert_eq!(
        assigned.freeform_tags.get("owner").map(String::as_str),
        Some("test")
    );
}

#[tokio::test]
async fn rename_and_retag_keep_the_assignment() {
    let env = start().await;
    let client = &env.client;
    let update = UpdatePublicIpDetails {
        display_name: Some("renamed".into()),
        freeform_tags: Some([("k".to_string(), "v".to_string())].into()),
        ..UpdatePublicIpDetails::default()
    };
    let before = client.get_public_ip(SPECIFIC_IP_ID).await.expect("get");
    let after = client
        .update_public_ip(SPECIFIC_IP_ID, &update, None)
        .await
        .expect("retag");
    assert_eq!(after.display_name.as_deref(), Some("renamed"));
    assert_eq!(after.freeform_tags.get("k").map(String::as_str), Some("v"));
    assert_eq!(after.lifecycle_state, PublicIpState::Available);
    assert_ne!(after.etag, before.etag, "a change gives a new etag");
}
