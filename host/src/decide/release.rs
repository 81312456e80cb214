//! Releasing a public IP: on a ReservedIP's delete and for an orphan of the
//! sweep alike. Pure: what to do next with an IP as read fresh from OCI.

use std::collections::BTreeMap;

use super::ownership::{is_adopted, releasable, retained_tags};
use super::plan::assigned_to;
use crate::api::crd::{ReclaimPolicy, ReservedIPStatus};
use crate::oci::PublicIp;

/// The next step of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseStep {
    /// Gone already, or not ours (any more): nothing to do.
    Skip,
    /// OCI is changing the IP: look again shortly.
    Wait,
    /// A kept IP is first taken off its private IP.
    Unassign,
    /// A kept IP, unassigned, loses the operator's tags (and stays).
    Untag { tags: BTreeMap<String, String> },
    /// Released to OCI (which unassigns and deletes in one call).
    Delete,
}

/// Whether `ip` is kept (unassigned and untagged) rather than deleted, by
/// its tags (status is not authority): `reclaimPolicy`, else kept for a
/// taken-over address. A taken-over address is released only where the
/// platform team marked it releasable, whatever the tenant's policy says.
pub fn keeps(policy: Option<ReclaimPolicy>, ip: &PublicIp) -> bool {
    let adopted = is_adopted(ip);
    match policy {
        Some(ReclaimPolicy::Retain) => true,
        Some(ReclaimPolicy::Delete) => adopted && !releasable(ip),
        None => adopted,
    }
}

/// Whether a delete must list the compartment for IPs tagged with the
/// ReservedIP's UID before anything else. Not when status names the IP and
/// no create is unfinished: the allocation marker is cleared only once the
/// created IP is recorded, so no other IP can carry the UID. (The caller
/// lists anyway when the IP status names proves gone or not ours: status is
/// not authority. What could still slip through, an earlier create's IP
/// after its retry token was refused as reused, is released by the orphan
/// sweep once the ReservedIP is gone.)
pub fn needs_listing(status: &ReservedIPStatus) -> bool {
    status.public_ip_id.is_none() || status.allocation_token.is_some()
}

/// The next step for `ip` (read fresh); `ours`: its tags name the owner, a
/// ReservedIP of `namespace` with reclaim `policy`.
pub fn next(
    ip: &PublicIp,
    ours: bool,
    policy: Option<ReclaimPolicy>,
    namespace: &str,
) -> ReleaseStep {
    if ip.lifecycle_state.is_gone() || !ours {
        // Never release what is not ours (re-tagged by someone, another cluster's).
        return ReleaseStep::Skip;
    }
    if ip.lifecycle_state.is_transitional() {
        return ReleaseStep::Wait;
    }
    match (keeps(policy, ip), assigned_to(ip).is_some()) {
        (true, true) => ReleaseStep::Unassign,
        (true, false) => ReleaseStep::Untag {
            tags: retained_tags(ip, namespace),
        },
        (false, _) => ReleaseStep::Delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::ownership::{TAG_ADOPTED, TAG_CLAIMABLE_BY, TAG_RELEASABLE, TAG_UID};
    use crate::oci::PublicIpState;

    fn ip(state: PublicIpState, on: Option<&str>) -> PublicIp {
        let tags = BTreeMap::from([
            (TAG_UID.to_string(), "u1".to_string()),
            ("owner".to_string(), "team".to_string()),
        ]);
        PublicIp::for_test(state, on, tags)
    }

    fn with(mut ip: PublicIp, tags: &[(&str, &str)]) -> PublicIp {
        for (k, v) in tags {
            ip.freeform_tags.insert(k.to_string(), v.to_string());
        }
        ip
    }

    const DELETE: Option<ReclaimPolicy> = Some(ReclaimPolicy::Delete);
    const RETAIN: Option<ReclaimPolicy> = Some(ReclaimPolicy::Retain);

    #[test]
    fn an_ip_is_deleted_unless_kept() {
        let assigned = ip(PublicIpState::Assigned, Some("p1"));
        assert_eq!(next(&assigned, true, None, "ns"), ReleaseStep::Delete);
        assert_eq!(next(&assigned, true, RETAIN, "ns"), ReleaseStep::Unassign);
        let free = ip(PublicIpState::Available, None);
        assert_eq!(
            next(&free, true, RETAIN, "ns"),
            ReleaseStep::Untag {
                tags: BTreeMap::from([
                    ("owner".to_string(), "team".to_string()),
                    (TAG_CLAIMABLE_BY.to_string(), "ns".to_string()),
                    (TAG_RELEASABLE.to_string(), "true".to_string()),
                ])
            },
            "a kept IP keeps the user's tags, loses ours, and only its namespace may claim it back"
        );
    }

    #[test]
    fn never_releases_what_is_not_ours_or_gone_and_waits_for_oci() {
        let free = ip(PublicIpState::Available, None);
        assert_eq!(next(&free, false, None, "ns"), ReleaseStep::Skip);
        assert_eq!(
            next(&ip(PublicIpState::Terminated, None), true, None, "ns"),
            ReleaseStep::Skip
        );
        assert_eq!(
            next(&ip(PublicIpState::Assigning, Some("p1")), true, None, "ns"),
            ReleaseStep::Wait
        );
    }

    #[test]
    fn taken_over_addresses_are_released_only_where_the_platform_team_allows() {
        let mine = ip(PublicIpState::Available, None);
        let adopted = with(mine.clone(), &[(TAG_ADOPTED, "true")]);
        let releasable = with(adopted.clone(), &[(TAG_RELEASABLE, "true")]);
        assert!(keeps(None, &adopted));
        assert!(!keeps(None, &mine));
        assert!(keeps(DELETE, &adopted), "a tenant's Delete is not enough");
        assert!(!keeps(DELETE, &releasable));
        assert!(keeps(None, &releasable), "kept unless asked");
        assert!(keeps(RETAIN, &mine));
    }

    #[test]
    fn a_delete_lists_the_compartment_only_when_status_cannot_say() {
        let mut status = ReservedIPStatus::default();
        assert!(needs_listing(&status), "nothing recorded");
        status.allocation_token = Some("t".into());
        assert!(needs_listing(&status), "a create is unfinished");
        status.public_ip_id = Some("ip1".into());
        assert!(needs_listing(&status), "a create is unfinished");
        status.allocation_token = None;
        assert!(!needs_listing(&status), "status names the one IP");
    }
}
