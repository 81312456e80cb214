//! Read operations on the sandbox topology, and pagination.

use crate::support::*;
use k8s_oci_operator::oci::{
    Lifetime, ListPublicIpsQuery, OciNetwork, PrivateIpFilter, PublicIpState,
};

#[tokio::test]
async fn sandbox_topology_is_visible() {
    let env = start().await;
    let client = &env.client;

    let specific = client
        .get_public_ip_by_ip_address("198.51.100.77")
        .await
        .expect("by address");
    assert_eq!(specific.id, SPECIFIC_IP_ID);
    assert_eq!(specific.lifecycle_state, PublicIpState::Available);
    assert_eq!(
        specific.freeform_tags.keys().collect::<Vec<_>>(),
        ["k8s-oci-operator-claimable-by"],
        "only the platform team's hand-over tag"
    );
    let missing = client
        .get_public_ip_by_ip_address("198.51.100.250")
        .await
        .expect_err("none");
    assert!(missing.is_not_found());
    assert_eq!(missing.code(), Some("NotAuthorizedOrNotFound"));

    // Pod IP 10.0.66.7 of node1, found the way the operator finds it.
    let found = client
        .list_private_ips(&PrivateIpFilter::AddressInSubnet {
            subnet_id: PODS_SUBNET.into(),
            ip_address: "10.0.66.7".into(),
        })
        .await
        .expect("list by address");
    assert_eq!(found.len(), 1);
    let pod = &found[0];
    assert_eq!(pod.id, pod_ip(1, 7));
    assert_eq!(pod.is_primary, Some(false));
    assert_eq!(
        client
            .get_private_ip(&pod.id)
            .await
            .expect("get")
            .ip_address
            .as_deref(),
        Some("10.0.66.7")
    );
    assert_eq!(
        client
            .get_public_ip_by_private_ip_id(&pod.id)
            .await
            .expect("lookup"),
        None
    );

    let vnic_id = pod.vnic_id.clone().expect("vnic id");
    let vnic = client.get_vnic(&vnic_id).await.expect("vnic");
    assert_eq!(vnic.subnet_id.as_deref(), Some(PODS_SUBNET));
    assert_eq!(vnic.is_primary, Some(false));
    let primary = client
        .get_vnic("ocid1.vnic.oc1.sandbox.node1-primary")
        .await
        .expect("vnic");
    assert_eq!(primary.private_ip.as_deref(), Some("10.0.0.11"));
    assert!(
        primary.public_ip.is_some(),
        "the node's ephemeral public IP shows on its VNIC"
    );

    let attachments = client
        .list_vnic_attachments(COMPARTMENT, Some("ocid1.instance.oc1.sandbox.node1"))
        .await
        .expect("attachments");
    assert_eq!(attachments.len(), 2);
    assert!(
        attachments
            .iter()
            .any(|a| a.vnic_id.as_deref() == Some(vnic_id.as_str()))
    );

    let subnet = client.get_subnet(PODS_SUBNET).await.expect("subnet");
    assert_eq!(subnet.cidr_block.as_deref(), Some("10.0.64.0/18"));
    assert_eq!(subnet.prohibit_public_ip_on_vnic, Some(false));
    let private = client
        .get_subnet("ocid1.subnet.oc1.sandbox.private")
        .await
        .expect("subnet");
    assert_eq!(private.prohibit_public_ip_on_vnic, Some(true));

    let pools = client
        .list_public_ip_pools(COMPARTMENT)
        .await
        .expect("pools");
    assert_eq!(pools.len(), 1);
    let pool = client.get_public_ip_pool(POOL).await.expect("pool");
    assert_eq!(pool.cidr_blocks, Some(vec!["203.0.113.0/28".to_string()]));

    let error = client
        .get_vnic("ocid1.vnic.oc1..nope")
        .await
        .expect_err("unknown");
    assert!(error.is_not_found());
}

#[tokio::test]
async fn lists_follow_pagination() {
    let env = start().await;
    let client = client_for(&env.emulator).with_page_limit(10);
    let all = client
        .list_private_ips(&PrivateIpFilter::Vnic {
            vnic_id: "ocid1.vnic.oc1.sandbox.node2-pods".into(),
        })
        .await
        .expect("list");
    // The VNIC's primary IP plus 10.0.67.0 .. 10.0.67.255.
    assert_eq!(all.len(), 257);
    let mut ids: Vec<_> = all.iter().map(|p| p.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 257, "no duplicates across pages");
    assert_eq!(env.emulator.calls().count("ListPrivateIps", "200"), 26);

    // Public IPs: REGION lists reserved IPs, AVAILABILITY_DOMAIN the ephemeral ones.
    let reserved = client
        .list_public_ips(&ListPublicIpsQuery::region(COMPARTMENT))
        .await
        .expect("list");
    assert_eq!(reserved.len(), 2);
    assert!(reserved.iter().all(|ip| ip.lifetime == Lifetime::Reserved));
    let mut ad = ListPublicIpsQuery::region(COMPARTMENT);
    ad.scope = "AVAILABILITY_DOMAIN".into();
    ad.availability_domain = Some("EMU:US-SANDBOX-1-AD-1".into());
    let ephemeral = client.list_public_ips(&ad).await.expect("list");
    assert_eq!(ephemeral.len(), 3);
    assert!(
        ephemeral
            .iter()
            .all(|ip| ip.lifetime == Lifetime::Ephemeral)
    );
}

#[tokio::test]
async fn list_parameters_are_checked() {
    let env = start().await;
    let mut query = ListPublicIpsQuery::region(COMPARTMENT);
    query.scope = "GLOBAL".into();
    let error = env
        .client
        .list_public_ips(&query)
        .await
        .expect_err("bad scope");
    assert_eq!(error.code(), Some("InvalidParameter"));
    let error = env
        .client
        .list_public_ips(&ListPublicIpsQuery::region("ocid1.compartment.oc1..other"))
        .await
        .expect_err("unknown compartment");
    assert!(error.is_not_found());
}
