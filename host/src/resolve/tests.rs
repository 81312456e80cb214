//! Which read a pod's private IP lookup makes, against a fake
//! [`OciNetwork`] that records the filters it is asked for (the choice is
//! the resolver's logic; the emulator-backed tests cover the calls).

use super::*;
use crate::oci::{
    CreatePublicIpDetails, Deletion, ListPublicIpsQuery, OciResult, PublicIp, PublicIpPool, Subnet,
    UpdatePublicIpDetails, Vnic, VnicAttachment,
};
use std::time::Duration;

const SUBNET: &str = "ocid1.subnet.oc1..pods";

fn private_ip(address: &str, vnic: &str) -> PrivateIp {
    PrivateIp {
        id: format!("ocid1.privateip.oc1..{address}"),
        ip_address: Some(address.into()),
        is_primary: Some(false),
        subnet_id: Some(SUBNET.into()),
        vnic_id: Some(vnic.into()),
        compartment_id: None,
        availability_domain: None,
        display_name: None,
        hostname_label: None,
    }
}

/// The subnet's private IPs: two on vnic-1, one on vnic-2. Writes queue
/// for a second, so lookups gather.
struct Fake {
    ips: Vec<PrivateIp>,
    filters: Mutex<Vec<PrivateIpFilter>>,
}

impl Fake {
    fn new() -> Self {
        Self {
            ips: vec![
                private_ip("10.0.0.5", "vnic-1"),
                private_ip("10.0.0.6", "vnic-1"),
                private_ip("10.0.0.7", "vnic-2"),
            ],
            filters: Mutex::default(),
        }
    }

    fn asked(&self) -> Vec<PrivateIpFilter> {
        lock(&self.filters).clone()
    }
}

fn unfaked<T>() -> OciResult<T> {
    Err(OciError::Config("not faked".into()))
}

#[async_trait::async_trait]
impl OciNetwork for Fake {
    async fn create_public_ip(&self, _: &CreatePublicIpDetails, _: &str) -> OciResult<PublicIp> {
        unfaked()
    }
    async fn get_public_ip(&self, _: &str) -> OciResult<PublicIp> {
        unfaked()
    }
    async fn get_public_ip_by_ip_address(&self, _: &str) -> OciResult<PublicIp> {
        unfaked()
    }
    async fn get_public_ip_by_private_ip_id(&self, _: &str) -> OciResult<Option<PublicIp>> {
        unfaked()
    }
    async fn update_public_ip(
        &self,
        _: &str,
        _: &UpdatePublicIpDetails,
        _: Option<&str>,
    ) -> OciResult<PublicIp> {
        unfaked()
    }
    async fn delete_public_ip(&self, _: &str, _: Option<&str>) -> OciResult<Deletion> {
        unfaked()
    }
    async fn list_public_ips(&self, _: &ListPublicIpsQuery) -> OciResult<Vec<PublicIp>> {
        unfaked()
    }
    async fn list_private_ips(&self, filter: &PrivateIpFilter) -> OciResult<Vec<PrivateIp>> {
        lock(&self.filters).push(filter.clone());
        Ok(self
            .ips
            .iter()
            .filter(|p| match filter {
                PrivateIpFilter::AddressInSubnet {
                    subnet_id,
                    ip_address,
                } => {
                    p.subnet_id.as_ref() == Some(subnet_id)
                        && p.ip_address.as_ref() == Some(ip_address)
                }
                PrivateIpFilter::Vnic { vnic_id } => p.vnic_id.as_ref() == Some(vnic_id),
            })
            .cloned()
            .collect())
    }
    async fn get_private_ip(&self, _: &str) -> OciResult<PrivateIp> {
        unfaked()
    }
    async fn get_vnic(&self, _: &str) -> OciResult<Vnic> {
        unfaked()
    }
    async fn list_vnic_attachments(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> OciResult<Vec<VnicAttachment>> {
        unfaked()
    }
    async fn get_subnet(&self, _: &str) -> OciResult<Subnet> {
        unfaked()
    }
    async fn list_public_ip_pools(&self, _: &str) -> OciResult<Vec<PublicIpPool>> {
        unfaked()
    }
    async fn get_public_ip_pool(&self, _: &str) -> OciResult<PublicIpPool> {
        unfaked()
    }
    fn write_wait(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn writes_at_once(&self) -> usize {
        10
    }
}

fn vnic(id: &str) -> VnicInfo {
    VnicInfo {
        vnic_id: id.into(),
        subnet_id: SUBNET.into(),
        cidr: Some((Ipv4Addr::new(10, 0, 0, 0), 24)),
        public_allowed: false,
    }
}

fn addresses(found: &[PrivateIp]) -> Vec<&str> {
    found
        .iter()
        .filter_map(|p| p.ip_address.as_deref())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn lookups_gathered_together_list_the_vnic_once() {
    let fake = Arc::new(Fake::new());
    let resolver = TargetResolver::new(fake.clone(), "c".into(), vec![]);
    let vnic_1 = vnic("vnic-1");
    let vnics = [&vnic_1];
    // Two more pods are being read: the listing waits for their lookups.
    let coming = (resolver.pod_lookup(), resolver.pod_lookup());
    let (a, b, c) = tokio::join!(
        resolver.private_ips_at("10.0.0.5", SUBNET, &vnics),
        resolver.private_ips_at("10.0.0.6", SUBNET, &vnics),
        resolver.private_ips_at("10.0.0.7", SUBNET, &vnics),
    );
    drop(coming);
    assert_eq!(addresses(&a.expect("a")), ["10.0.0.5"]);
    assert_eq!(addresses(&b.expect("b")), ["10.0.0.6"]);
    // Not on this VNIC.
    assert!(c.expect("c").is_empty());
    assert_eq!(
        fake.asked(),
        [PrivateIpFilter::Vnic {
            vnic_id: "vnic-1".into()
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn a_lookup_no_other_joined_reads_by_address() {
    let fake = Arc::new(Fake::new());
    let resolver = TargetResolver::new(fake.clone(), "c".into(), vec![]);
    let (vnic_1, vnic_2) = (vnic("vnic-1"), vnic("vnic-2"));
    // Writes queue, so it gathers; no one joins before its wait is over.
    let found = resolver
        .private_ips_at("10.0.0.6", SUBNET, &[&vnic_1])
        .await
        .expect("lookup");
    assert_eq!(addresses(&found), ["10.0.0.6"]);
    let by_address = PrivateIpFilter::AddressInSubnet {
        subnet_id: SUBNET.into(),
        ip_address: "10.0.0.6".into(),
    };
    assert_eq!(fake.asked(), [by_address]);
    // Kept to the VNICs asked about, as a listing of them would be: the
    // address is on vnic-2, the node's other VNIC in the subnet.
    let found = resolver
        .private_ips_at("10.0.0.7", SUBNET, &[&vnic_1])
        .await
        .expect("lookup");
    assert!(found.is_empty());
    let found = resolver
        .private_ips_at("10.0.0.7", SUBNET, &[&vnic_1, &vnic_2])
        .await
        .expect("lookup");
    assert_eq!(addresses(&found), ["10.0.0.7"]);
}
