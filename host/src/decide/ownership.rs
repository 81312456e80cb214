//! Which OCI public IPs belong to which ReservedIP.
//!
//! Every public IP the operator creates or takes over carries freeform tags
//! naming the cluster and the ReservedIP (namespace, name, UID). They are how
//! a crashed create is recovered, how orphans are found, and why an IP of
//! another cluster or another ReservedIP is never touched.

use std::collections::BTreeMap;

use crate::api::crd::OWNERSHIP_TAG_PREFIX;
use crate::oci::PublicIp;

pub const TAG_CLUSTER: &str = "k8s-oci-operator-cluster";
pub const TAG_NAMESPACE: &str = "k8s-oci-operator-namespace";
pub const TAG_NAME: &str = "k8s-oci-operator-name";
pub const TAG_UID: &str = "k8s-oci-operator-uid";
/// Marks an existing address taken over through `publicIPv4Address`: it is
/// kept, not deleted, when released.
pub const TAG_ADOPTED: &str = "k8s-oci-operator-adopted";
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
    /// ownership tags over them (the CRD refuses user keys with our prefix).
    pub fn desired_tags(
        &self,
        user_tags: &BTreeMap<String, String>,
        adopted: bool,
    ) -> BTreeMap<String, String> {
        let mut tags: BTreeMap<String, String> = user_tags
            .iter()
            .filter(|(k, _)| !k.starts_with(OWNERSHIP_TAG_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tags.extend(self.tags());
        if adopted {
            tags.insert(TAG_ADOPTED.to_string(), "true".to_string());
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

/// The tags of `ip` without the operator's ownership tags (what a retained IP
/// keeps when its ReservedIP is deleted).
pub fn without_ownership(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !k.starts_with(OWNERSHIP_TAG_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
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
        let user = BTreeMap::from([("owner".to_string(), "My team".to_string())]);
        let tags = ME.desired_tags(&user, false);
        assert_eq!(tags.get("owner").map(String::as_str), Some("My team"));
        assert_eq!(tags.get(TAG_UID).map(String::as_str), Some("u1"));
        assert_eq!(without_ownership(&tags), user);
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
