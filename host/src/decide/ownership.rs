//! Which OCI public IPs belong to which ReservedIP.
//!
//! Every public IP the operator creates or takes over carries freeform tags
//! naming the cluster and the ReservedIP (namespace, name, UID). They are how
//! a crashed create is recovered, how orphans are found, and why an IP of
//! another cluster or another ReservedIP is never touched.

use std::collections::BTreeMap;

use crate::api::tags::is_reserved_key;
use crate::oci::PublicIp;

pub const TAG_CLUSTER: &str = "k8s-oci-operator-cluster";
pub const TAG_NAMESPACE: &str = "k8s-oci-operator-namespace";
pub const TAG_NAME: &str = "k8s-oci-operator-name";
pub const TAG_UID: &str = "k8s-oci-operator-uid";
/// Marks an existing address taken over through `publicIPv4Address`: it is
/// kept, not deleted, when released.
pub const TAG_ADOPTED: &str = "k8s-oci-operator-adopted";
/// The platform team's marker on an address: the namespaces (comma
/// separated) whose ReservedIPs may take it over through
/// `publicIPv4Address`. The operator also leaves it, naming the
/// ReservedIP's namespace, on an address it allocated and then retained, so
/// only that namespace can claim it back. Tenants cannot set it: user tag
/// keys with the operator's prefix are refused.
pub const TAG_CLAIMABLE_BY: &str = "k8s-oci-operator-claimable-by";
/// The platform team's marker (`"true"`) on an address: a ReservedIP that
/// took it over may release it to OCI (`reclaimPolicy: Delete`). Without
/// it a taken-over address is only ever retained. The operator sets it on
/// an address it allocated and retained: it was the namespace's to release.
pub const TAG_RELEASABLE: &str = "k8s-oci-operator-releasable";
/// Left on an IP the operator let go of when its CRD was deleted (an
/// uninstall): `<cluster>/<namespace>/<name>` of the ReservedIP that held it.
/// Not an ownership claim: no cluster's operator acts on it.
pub const TAG_RETAINED: &str = "k8s-oci-operator-retained";

/// The ReservedIP a public IP should belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner<'a> {
    pub cluster: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

impl Owner<'_> {
    /// The operator's ownership tags for this owner.
    pub fn tags(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (TAG_CLUSTER.to_string(), self.cluster.to_string()),
            (TAG_NAMESPACE.to_string(), self.namespace.to_string()),
            (TAG_NAME.to_string(), self.name.to_string()),
            (TAG_UID.to_string(), self.uid.to_string()),
        ])
    }

    /// The freeform tags the public IP should carry: the user's tags, with the
    /// ownership tags over them (user keys with our prefix, in any case, are
    /// dropped; the CRD refuses them), and what `held` (the IP as it is)
    /// carries that is not the user's to change: the mark of a taken-over
    /// address and the platform team's markers.
    pub fn desired_tags(
        &self,
        user_tags: &BTreeMap<String, String>,
        held: Option<&PublicIp>,
    ) -> BTreeMap<String, String> {
        let mut tags: BTreeMap<String, String> = user_tags
            .iter()
            .filter(|(k, _)| !is_reserved_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tags.extend(self.tags());
        if let Some(ip) = held {
            for key in [TAG_ADOPTED, TAG_CLAIMABLE_BY, TAG_RELEASABLE] {
                if let Some(v) = ip.freeform_tags.get(key) {
                    tags.insert(key.to_string(), v.clone());
                }
            }
        }
        tags
    }

    /// The live public IPs of a listing that carry this owner's tags: what
    /// an unfinished create made, what a delete must release, what an
    /// uninstall lets go of.
    pub fn keep_ours(&self, ips: Vec<PublicIp>) -> Vec<PublicIp> {
        ips.into_iter()
            .filter(|ip| self.classify(ip) == Holder::Us && !ip.lifecycle_state.is_gone())
            .collect()
    }

    /// Who holds `ip`, from this owner's point of view.
    pub fn classify(&self, ip: &PublicIp) -> Holder {
        let tag = |k: &str| ip.freeform_tags.get(k).map(String::as_str);
        match (tag(TAG_CLUSTER), tag(TAG_UID)) {
            (None, None) => Holder::Nobody,
            (Some(c), _) if c != self.cluster => Holder::OtherCluster(c.to_string()),
            (_, Some(u)) if u == self.uid => Holder::Us,
            _ => Holder::OtherReservedIp {
                namespace: tag(TAG_NAMESPACE).unwrap_or("?").to_string(),
                name: tag(TAG_NAME).unwrap_or("?").to_string(),
            },
        }
    }
}

/// Who a public IP belongs to, according to its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// No ownership tags: nobody in any cluster manages it.
    Nobody,
    /// This ReservedIP.
    Us,
    /// Another ReservedIP of this cluster.
    OtherReservedIp { namespace: String, name: String },
    /// A ReservedIP of another cluster.
    OtherCluster(String),
}

/// Whether `ip` carries the mark of an address taken over through
/// `publicIPv4Address`.
pub fn is_adopted(ip: &PublicIp) -> bool {
    ip.freeform_tags.contains_key(TAG_ADOPTED)
}

/// Whether the platform team handed `ip` to `namespace` ([`TAG_CLAIMABLE_BY`]).
pub fn claimable_by(ip: &PublicIp, namespace: &str) -> bool {
    ip.freeform_tags
        .get(TAG_CLAIMABLE_BY)
        .is_some_and(|v| v.split(',').any(|n| n.trim() == namespace))
}

/// Whether a taken-over `ip` may be released to OCI ([`TAG_RELEASABLE`]).
pub fn releasable(ip: &PublicIp) -> bool {
    ip.freeform_tags
        .get(TAG_RELEASABLE)
        .is_some_and(|v| v == "true")
}

/// The tags a retained IP keeps when its ReservedIP (of `namespace`) lets go
/// of it: the user's tags and the platform team's markers, without the
/// operator's ownership tags. An address the operator allocated is marked
/// claimable by that namespace alone, and releasable by it: it was its own.
/// A taken-over address keeps the markers it came with.
pub fn retained_tags(ip: &PublicIp, namespace: &str) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = ip
        .freeform_tags
        .iter()
        .filter(|(k, _)| {
            !is_reserved_key(k) || k.as_str() == TAG_CLAIMABLE_BY || k.as_str() == TAG_RELEASABLE
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !is_adopted(ip) {
        tags.insert(TAG_CLAIMABLE_BY.to_string(), namespace.to_string());
        tags.insert(TAG_RELEASABLE.to_string(), "true".to_string());
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::PublicIpState;

    fn ip_with(tags: &[(&str, &str)]) -> PublicIp {
        let tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PublicIp::for_test(PublicIpState::Available, None, tags)
    }

    const ME: Owner<'static> = Owner {
        cluster: "c1",
        namespace: "ns",
        name: "a",
        uid: "u1",
    };

    #[test]
    fn classifies_holders_by_tags() {
        assert_eq!(ME.classify(&ip_with(&[])), Holder::Nobody);
        assert_eq!(ME.classify(&ip_with(&[("owner", "team")])), Holder::Nobody);
        assert_eq!(
            ME.classify(&ip_with(&[(TAG_CLUSTER, "c1"), (TAG_UID, "u1")])),
            Holder::Us
        );
        assert_eq!(
            ME.classify(&ip_with(&[(TAG_CLUSTER, "c2"), (TAG_UID, "u1")])),
            Holder::OtherCluster("c2".into()),
            "the same UID in another cluster is not us"
        );
        assert_eq!(
            ME.classify(&ip_with(&[
                (TAG_CLUSTER, "c1"),
                (TAG_UID, "u2"),
                (TAG_NAMESPACE, "x"),
                (TAG_NAME, "b")
            ])),
            Holder::OtherReservedIp {
                namespace: "x".into(),
                name: "b".into()
            }
        );
        // A half-tagged IP (cluster tag without UID) is never taken as ours.
        assert!(matches!(
            ME.classify(&ip_with(&[(TAG_CLUSTER, "c1")])),
            Holder::OtherReservedIp { .. }
        ));
    }

    #[test]
    fn desired_tags_put_ownership_over_user_tags() {
        let user = BTreeMap::from([
            ("owner".to_string(), "My team".to_string()),
            ("K8S-OCI-Operator-claimable-by".to_string(), "x".to_string()),
        ]);
        let tags = ME.desired_tags(&user, None);
        assert_eq!(tags.get("owner").map(String::as_str), Some("My team"));
        assert_eq!(tags.get(TAG_UID).map(String::as_str), Some("u1"));
        assert_eq!(tags.len(), 5, "our prefix in any case is dropped: {tags:?}");
        // The markers of the IP as held survive a retag.
        let held = ip_with(&[
            (TAG_ADOPTED, "true"),
            (TAG_CLAIMABLE_BY, "ns"),
            ("old", "x"),
        ]);
        let tags = ME.desired_tags(&user, Some(&held));
        assert_eq!(tags.get(TAG_CLAIMABLE_BY).map(String::as_str), Some("ns"));
        assert_eq!(tags.get(TAG_ADOPTED).map(String::as_str), Some("true"));
        assert!(!tags.contains_key("old"), "user tags come from the spec");
    }

    #[test]
    fn a_retained_ip_is_claimable_by_its_namespace_only() {
        let mut mine = ip_with(&[(TAG_CLUSTER, "c1"), (TAG_UID, "u1"), ("owner", "t")]);
        let tags = retained_tags(&mine, "ns");
        assert_eq!(tags.get("owner").map(String::as_str), Some("t"));
        assert!(!tags.contains_key(TAG_UID));
        mine.freeform_tags = tags;
        assert!(claimable_by(&mine, "ns") && !claimable_by(&mine, "other"));
        assert!(releasable(&mine));
        // A taken-over address keeps what the platform team gave it.
        let adopted = ip_with(&[
            (TAG_UID, "u1"),
            (TAG_ADOPTED, "true"),
            (TAG_CLAIMABLE_BY, "a, b"),
        ]);
        let tags = retained_tags(&adopted, "b");
        assert_eq!(tags.get(TAG_CLAIMABLE_BY).map(String::as_str), Some("a, b"));
        assert!(!tags.contains_key(TAG_RELEASABLE));
        assert!(!tags.contains_key(TAG_ADOPTED));
    }

    #[test]
    fn keep_ours_drops_others_and_the_terminated() {
        let mut gone = ip_with(&[(TAG_CLUSTER, "c1"), (TAG_UID, "u1")]);
        gone.lifecycle_state = PublicIpState::Terminated;
        let ours = ip_with(&[(TAG_CLUSTER, "c1"), (TAG_UID, "u1")]);
        let theirs = ip_with(&[(TAG_CLUSTER, "c1"), (TAG_UID, "u2")]);
        let kept = ME.keep_ours(vec![gone, ours.clone(), theirs, ip_with(&[])]);
        assert_eq!(kept, vec![ours]);
    }
}
