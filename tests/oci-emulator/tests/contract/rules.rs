//! OCI's rules: one public IP per private IP, public subnets only, ephemeral
//! IPs stay put, limits, pools, failed moves, retry tokens and etags.

use crate::support::*;
use k8s_oci_operator::oci::{
    CreatePublicIpDetails, Deletion, Lifetime, ListPublicIpsQuery, OciNetwork, PublicIpState,
    UpdatePublicIpDetails,
};

fn reserved_on(private_ip_id: &str) -> CreatePublicIpDetails {
    let mut details = CreatePublicIpDetails::reserved(COMPARTMENT);
    details.private_ip_id = Some(private_ip_id.to_string());
    details
}

#[tokio::test]
async fn one_public_ip_per_private_ip() {
    let env = start().await;
    let client = &env.client;
    // The node's primary private IP already has its ephemeral public IP.
    let taken = client
        .create_public_ip(&reserved_on(NODE0_PRIMARY_IP), "t1")
        .await
        .expect_err("node IP has an ephemeral IP");
    assert_eq!(
        (taken.status(), taken.code()),
        (Some(409), Some("Conflict"))
    );
    assert!(taken.is_conflict() && !taken.is_retryable());

    let pod = pod_ip(0, 20);
    let first = client
        .create_public_ip(&reserved_on(&pod), "t2")
        .await
        .expect("first");
    // Conflicts while the first is still ASSIGNING, and once ASSIGNED.
    let second = client
        .create_public_ip(&reserved_on(&pod), "t3")
        .await
        .expect_err("second");
    assert_eq!(second.code(), Some("Conflict"));
    wait_for(client, &first.id, PublicIpState::Assigned).await;
    let free = client
        .create_public_ip(&CreatePublicIpDetails::reserved(COMPARTMENT), "t4")
        .await
        .expect("free IP");
    wait_for(client, &free.id, PublicIpState::Available).await;
    let assign = client
        .update_public_ip(&free.id, &UpdatePublicIpDetails::assign(&pod), None)
        .await
        .expect_err("assign to a taken private IP");
    assert_eq!(assign.code(), Some("Conflict"));
    assert_eq!(
        client
            .get_public_ip(&free.id)
            .await
            .expect("get")
            .lifecycle_state,
        PublicIpState::Available
    );
}

#[tokio::test]
async fn reserved_ips_only_in_public_subnets() {
    let env = start().await;
    let error = env
        .client
        .create_public_ip(&reserved_on(PRIVATE_SUBNET_IP), "t1")
        .await
        .expect_err("private subnet");
    assert_eq!(
        (error.status(), error.code()),
        (Some(400), Some("InvalidParameter"))
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn ephemeral_ips_cannot_move_or_unassign() {
    let env = start().await;
    let client = &env.client;
    let ephemeral = client
        .get_public_ip_by_private_ip_id(NODE0_PRIMARY_IP)
        .await
        .expect("lookup")
        .expect("node0 has an ephemeral IP");
    assert_eq!(ephemeral.lifetime, Lifetime::Ephemeral);
    assert_eq!(ephemeral.lifecycle_state, PublicIpState::Assigned);
    assert_eq!(ephemeral.scope.as_deref(), Some("AVAILABILITY_DOMAIN"));

    for update in [
        UpdatePublicIpDetails::assign(pod_ip(0, 30)),
        UpdatePublicIpDetails::unassign(),
    ] {
        let error = client
            .update_public_ip(&ephemeral.id, &update, None)
            .await
            .expect_err("ephemeral stays");
        assert_eq!(error.code(), Some("InvalidParameter"));
    }
    // Deleting it frees the node IP for a reserved one (the hostNetwork case).
    assert_eq!(
        client
            .delete_public_ip(&ephemeral.id, None)
            .await
            .expect("delete"),
        Deletion::Deleted
    );
    let reserved = client
        .create_public_ip(&reserved_on(NODE0_PRIMARY_IP), "t1")
        .await
        .expect("node IP is free");
    wait_for(client, &reserved.id, PublicIpState::Assigned).await;

    // An ephemeral IP needs a primary private IP.
    let mut details = CreatePublicIpDetails::reserved(COMPARTMENT);
    details.lifetime = Some(Lifetime::Ephemeral);
    details.private_ip_id = Some(pod_ip(0, 31));
    let error = client
        .create_public_ip(&details, "t2")
        .await
        .expect_err("secondary IP");
    assert_eq!(error.code(), Some("InvalidParameter"));
}

#[tokio::test]
async fn reserved_ip_limit_per_compartment() {
    let env = start().await;
    // The sandbox seed has two reserved IPs; allow three.
    env.emulator.with_world(|world| world.reserved_limit = 3);
    let client = &env.client;
    let details = CreatePublicIpDetails::reserved(COMPARTMENT);
    let third = client
        .create_public_ip(&details, "t1")
        .await
        .expect("third");
    let error = client
        .create_public_ip(&details, "t2")
        .await
        .expect_err("fourth");
    assert_eq!(
        (error.status(), error.code()),
        (Some(400), Some("LimitExceeded"))
    );
    // TERMINATED IPs no longer count.
    wait_for(client, &third.id, PublicIpState::Available).await;
    client
        .delete_public_ip(&third.id, None)
        .await
        .expect("delete");
    wait_for(client, &third.id, PublicIpState::Terminated).await;
    client
        .create_public_ip(&details, "t3")
        .await
        .expect("room again");
}

#[tokio::test]
async fn pool_addresses_run_out() {
    let env = start().await;
    let client = &env.client;
    let mut details = CreatePublicIpDetails::reserved(COMPARTMENT);
    details.public_ip_pool_id = Some(POOL.to_string());
    let mut addresses = Vec::new();
    for i in 0..16 {
        let ip = client
            .create_public_ip(&details, &format!("pool-{i}"))
            .await
            .expect("pool IP");
        assert_eq!(ip.public_ip_pool_id.as_deref(), Some(POOL));
        addresses.push(ip.ip_address.expect("address"));
    }
    assert!(addresses.iter().all(|a| a.starts_with("203.0.113.")));
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 16);
    let error = client
        .create_public_ip(&details, "pool-16")
        .await
        .expect_err("exhausted");
    assert_eq!(
        (error.status(), error.code()),
        (Some(400), Some("LimitExceeded"))
    );

    let mut query = ListPublicIpsQuery::region(COMPARTMENT);
    query.public_ip_pool_id = Some(POOL.to_string());
    assert_eq!(
        client.list_public_ips(&query).await.expect("list").len(),
        16
    );

    let mut unknown = details.clone();
    unknown.public_ip_pool_id = Some("ocid1.publicippool.oc1..nope".into());
    let error = client
        .create_public_ip(&unknown, "pool-x")
        .await
        .expect_err("unknown pool");
    assert_eq!(error.code(), Some("RelatedResourceNotAuthorizedOrNotFound"));
}

#[tokio::test]
async fn a_refused_move_leaves_the_ip_where_it_was() {
    let env = start().await;
    let client = &env.client;
    let (pod_a, pod_b) = (pod_ip(1, 40), pod_ip(1, 41));
    let moving = client
        .create_public_ip(&reserved_on(&pod_a), "a")
        .await
        .expect("a");
    let blocker = client
        .create_public_ip(&reserved_on(&pod_b), "b")
        .await
        .expect("b");
    wait_for(client, &moving.id, PublicIpState::Assigned).await;
    wait_for(client, &blocker.id, PublicIpState::Assigned).await;
    let still_on_a = |ip: &k8s_oci_operator::oci::PublicIp| {
        ip.lifecycle_state == PublicIpState::Assigned
            && ip.assigned_entity_id.as_deref() == Some(pod_a.as_str())
    };

    let error = client
        .update_public_ip(&moving.id, &UpdatePublicIpDetails::assign(&pod_b), None)
        .await
        .expect_err("target taken");
    assert_eq!(error.code(), Some("Conflict"));
    let after = client.get_public_ip(&moving.id).await.expect("get");
    assert!(still_on_a(&after), "{after:?}");
    assert_eq!(
        client
            .get_public_ip_by_private_ip_id(&pod_a)
            .await
            .expect("lookup")
            .map(|ip| ip.id),
        Some(moving.id.clone())
    );

    // Same for a target in a private subnet.
    let error = client
        .update_public_ip(
            &moving.id,
            &UpdatePublicIpDetails::assign(PRIVATE_SUBNET_IP),
            None,
        )
        .await
        .expect_err("private subnet");
    assert_eq!(error.code(), Some("InvalidParameter"));
    let after = client.get_public_ip(&moving.id).await.expect("get");
    assert!(still_on_a(&after), "{after:?}");
}

#[tokio::test]
async fn retry_token_replays_and_conflicts() {
    let env = start().await;
    let client = &env.client;
    let details = CreatePublicIpDetails::reserved(COMPARTMENT);
    let first = client
        .create_public_ip(&details, "uid-1234")
        .await
        .expect("first");
    let count = public_ip_count(&env.emulator);
    let replay = client
        .create_public_ip(&details, "uid-1234")
        .await
        .expect("replay");
    assert_eq!(replay.id, first.id);
    assert_eq!(replay.ip_address, first.ip_address);
    assert_eq!(
        public_ip_count(&env.emulator),
        count,
        "a replay creates nothing"
    );

    let mut other = details.clone();
    other.display_name = Some("different".into());
    let error = client
        .create_public_ip(&other, "uid-1234")
        .await
        .expect_err("other body");
    assert_eq!(
        (error.status(), error.code()),
        (Some(409), Some("InvalidatedRetryToken"))
    );

    // Deleting the IP invalidates the token.
    wait_for(client, &first.id, PublicIpState::Available).await;
    client
        .delete_public_ip(&first.id, None)
        .await
        .expect("delete");
    let error = client
        .create_public_ip(&details, "uid-1234")
        .await
        .expect_err("invalidated");
    assert_eq!(error.code(), Some("InvalidatedRetryToken"));

    let long = "x".repeat(65);
    let error = client
        .create_public_ip(&details, &long)
        .await
        .expect_err("too long");
    assert_eq!(error.code(), Some("InvalidParameter"));
}

#[tokio::test]
async fn if_match_etags() {
    let env = start().await;
    let client = &env.client;
    let current = client.get_public_ip(SPECIFIC_IP_ID).await.expect("get");
    let etag = current.etag.clone().expect("etag on get");
    let rename = UpdatePublicIpDetails {
        display_name: Some("x".into()),
        ..UpdatePublicIpDetails::default()
    };
    let error = client
        .update_public_ip(SPECIFIC_IP_ID, &rename, Some("stale"))
        .await
        .expect_err("stale etag");
    assert_eq!(
        (error.status(), error.code()),
        (Some(412), Some("NoEtagMatch"))
    );
    assert!(error.is_etag_mismatch());
    let updated = client
        .update_public_ip(SPECIFIC_IP_ID, &rename, Some(&etag))
        .await
        .expect("matching etag");
    let error = client
        .delete_public_ip(SPECIFIC_IP_ID, Some(&etag))
        .await
        .expect_err("etag changed with the update");
    assert_eq!(error.code(), Some("NoEtagMatch"));
    let new_etag = updated.etag.expect("etag on update");
    assert_eq!(
        client
            .delete_public_ip(SPECIFIC_IP_ID, Some(&new_etag))
            .await
            .expect("delete"),
        Deletion::Deleted
    );
}
