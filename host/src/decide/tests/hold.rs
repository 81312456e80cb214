//! Whether the public IP can be held: ownership, the address asked for, a
//! recorded IP gone missing, a failed read, a recovered create.

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;
use crate::decide::How;
use crate::decide::ownership::{
    TAG_ADOPTED, TAG_CLAIMABLE_BY, TAG_CLUSTER, TAG_NAME, TAG_NAMESPACE, TAG_UID,
};
use crate::decide::pass::{holds_ip, needs_target};
use crate::decide::plan::Step;
use crate::decide::{Call, Requeue};
use crate::oci::Lifetime;

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn others() -> BTreeMap<String, String> {
    tags(&[
        (TAG_CLUSTER, "c1"),
        (TAG_UID, "u2"),
        (TAG_NAMESPACE, "team-b"),
        (TAG_NAME, "db"),
    ])
}

#[test]
fn status_naming_another_reservedips_ip_is_blocked_without_a_call() {
    let theirs = ip_tagged(PublicIpState::Assigned, Some("p9"), others());
    let case = Case::holding(theirs, How::Read).with_pod_target();
    assert!(!needs_target(&case.obs()), "nothing more is looked up");
    let c = case.conclusion();
    assert_eq!(c.status.state, Some(State::Failed));
    assert_eq!(
        cond(&c.status, ALLOCATED),
        ("False", "PublicIPOwnedByOther")
    );
    assert_eq!(cond(&c.status, READY), ("False", "PublicIPOwnedByOther"));
    assert_eq!(c.requeue, Requeue::After(TIMING.resync));
    assert!(c.events[0].warning);
    assert!(
        !c.events[0].message.contains("team-b"),
        "another namespace is not named: {}",
        c.events[0].message
    );
}

#[test]
fn status_naming_an_untagged_ip_is_not_authority() {
    // A forged status.publicIPId of a platform address (no ownership tags):
    // nothing is done to it, whatever the target.
    let platform = ip_tagged(
        PublicIpState::Assigned,
        Some("node-ip"),
        tags(&[("env", "prod")]),
    );
    let case = Case::holding(platform.clone(), How::Read).with_pod_target();
    assert!(!needs_target(&case.obs()), "nothing more is looked up");
    let c = case.conclusion();
    assert_eq!(cond(&c.status, READY), ("False", "PublicIPNotOurs"));
    assert_eq!(c.events[0].reason, "PublicIPNotOurs");
    // The same IP as the address the spec asks for goes through the
    // takeover checks (here: not handed to the namespace).
    let mut asked = Case::holding(platform, How::Read);
    asked.spec.public_ipv4_address = Some("192.0.2.1".into());
    assert_eq!(
        cond(&asked.conclusion().status, READY),
        ("False", "AddressNotClaimable")
    );
}

#[test]
fn status_naming_another_clusters_or_an_ephemeral_ip_is_blocked() {
    let other_cluster = ip_tagged(
        PublicIpState::Available,
        None,
        tags(&[(TAG_CLUSTER, "c2"), (TAG_UID, "u1")]),
    );
    let c = Case::holding(other_cluster, How::Read).conclusion();
    assert_eq!(cond(&c.status, READY), ("False", "PublicIPOwnedByOther"));
    let mut ephemeral = ours(PublicIpState::Assigned, Some("p1"));
    ephemeral.lifetime = Lifetime::Ephemeral;
    let c = Case::holding(ephemeral, How::Read).conclusion();
    assert_eq!(cond(&c.status, READY), ("False", "PublicIPNotReserved"));
}

#[test]
fn a_blocked_pass_warns_once() {
    let theirs = ip_tagged(PublicIpState::Available, None, others());
    let mut case = Case::holding(theirs, How::Read);
    let first = case.conclusion();
    assert_eq!(first.events.len(), 1);
    case.status = first.status;
    assert!(case.conclusion().events.is_empty(), "the same reason again");
}

#[test]
fn a_failed_read_backs_off_and_says_what_oci_answered() {
    let mut case = Case::new();
    case.status.public_ip_id = Some("ip1".into());
    case.seen = PublicIpSeen::Failed(failure("OCIInternalError", "InternalError", false));
    assert!(!needs_target(&case.obs()));
    let c = case.conclusion();
    assert_eq!(cond(&c.status, READY), ("False", "OCIInternalError"));
    let message = &conditions::get(&c.status.conditions, READY).map(|c| c.message.clone());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.starts_with("reading the public IP") && m.contains("r1")),
        "{message:?}"
    );
    assert!(matches!(c.requeue, Requeue::Backoff { .. }));
}

#[test]
fn a_first_404_is_dated_and_nothing_is_created_within_the_grace() {
    let mut case = Case::new();
    case.status.public_ip_id = Some("ip1".into());
    case.seen = PublicIpSeen::NotFound { id: "ip1".into() };
    let first = case.conclusion();
    assert_eq!(
        cond(&first.status, ALLOCATED),
        ("False", "PublicIPNotFound")
    );
    assert_eq!(cond(&first.status, READY), ("False", "PublicIPNotFound"));
    assert_eq!(first.requeue, Requeue::After(TIMING.poll));
    assert_eq!(first.status.public_ip_id.as_deref(), Some("ip1"), "kept");
    // Still 404 a minute later: still within the grace, still waiting.
    case.status = first.status.clone();
    case.now = Timestamp::now() + SignedDuration::from_secs(60);
    let again = case.conclusion();
    assert_eq!(
        cond(&again.status, ALLOCATED),
        ("False", "PublicIPNotFound")
    );
    let dated = |s: &ReservedIPStatus| {
        conditions::get(&s.conditions, ALLOCATED).map(|c| c.last_transition_time.clone())
    };
    assert_eq!(
        dated(&again.status),
        dated(&first.status),
        "dated by the first 404"
    );
}

#[test]
fn a_404_that_outlasts_the_grace_allocates_a_new_ip() {
    let mut case = Case::new();
    case.status.public_ip_id = Some("ip1".into());
    case.seen = PublicIpSeen::NotFound { id: "ip1".into() };
    case.status = case.conclusion().status;
    case.now = Timestamp::now() + SignedDuration::from_secs(121);
    assert!(needs_target(&case.obs()));
    let plan = case.plan();
    assert_eq!(plan.step, Step::Allocate { assign_to: None });
    assert_eq!(plan.draft.status.public_ip_id, None, "status starts over");
    assert_eq!(plan.draft.events[0].reason, "PublicIPDeleted");
}

#[test]
fn a_requested_address_deleted_outside_cannot_come_back() {
    let mut case = Case::new();
    case.spec.public_ipv4_address = Some("198.51.100.7".into());
    case.status.public_ip_id = Some("ip1".into());
    let mut gone = ours(PublicIpState::Terminated, None);
    gone.id = "ip1".into();
    case.seen = PublicIpSeen::Found {
        ip: gone,
        how: How::Read,
    };
    let c = case.conclusion();
    assert_eq!(cond(&c.status, READY), ("False", "PublicIPDeleted"));
    assert_eq!(c.status.state, Some(State::Failed));
}

#[test]
fn a_terminated_ip_is_replaced_without_waiting() {
    let mut case = Case::holding(ours(PublicIpState::Terminated, None), How::Read);
    case.now = Timestamp::now();
    let plan = case.plan();
    assert_eq!(plan.step, Step::Allocate { assign_to: None });
}

#[test]
fn the_ip_of_an_unfinished_create_is_recorded_when_found_by_tags() {
    let mut case = Case::new();
    case.status.allocation_token = Some("t1".into());
    case.seen = PublicIpSeen::Found {
        ip: ours(PublicIpState::Available, None),
        how: How::Recovered,
    };
    assert!(holds_ip(&case.obs()));
    let plan = case.plan();
    assert_eq!(plan.step, Step::Done);
    assert_eq!(
        plan.draft.status.public_ip_id.as_deref(),
        Some("ocid1.publicip.oc1..x")
    );
}

fn address_case(ip: PublicIp) -> Case {
    let mut case = Case::new();
    case.spec.public_ipv4_address = Some("192.0.2.1".into());
    case.seen = PublicIpSeen::Found {
        ip,
        how: How::ByAddress,
    };
    case
}

#[test]
fn an_unowned_free_address_is_claimed_with_our_tags_and_its_etag() {
    let free = ip_tagged(
        PublicIpState::Available,
        None,
        tags(&[("cost", "ops"), (TAG_CLAIMABLE_BY, "x, team-a")]),
    );
    let case = address_case(free);
    assert!(!needs_target(&case.obs()), "the claim comes first");
    let plan = case.plan();
    let Call::Update {
        details, if_match, ..
    } = &plan.call
    else {
        panic!("a claim is an update: {:?}", plan.call);
    };
    assert_eq!(if_match.as_deref(), Some("etag-1"));
    let tags = details.freeform_tags.clone().unwrap_or_default();
    assert_eq!(
        tags.get("cost").map(String::as_str),
        Some("ops"),
        "theirs kept"
    );
    assert_eq!(tags.get(TAG_UID).map(String::as_str), Some("u1"));
    assert_eq!(tags.get(TAG_ADOPTED).map(String::as_str), Some("true"));
    let claimed = plan.observed.clone();
    let c = crate::decide::conclude(plan, crate::decide::Outcome::Answered(claimed));
    assert!(c.status.adopted);
    assert_eq!(
        c.requeue,
        Requeue::Now,
        "assigned by the next pass, at once"
    );
    assert_eq!(c.events[0].reason, "AddressTakenOver");
    assert_eq!(
        cond(&c.status, READY).0,
        "False",
        "not ready until assigned"
    );
}

#[test]
fn an_address_already_ours_is_held() {
    let case = address_case(ours(PublicIpState::Available, None));
    let plan = case.plan();
    assert_eq!(plan.step, Step::Done);
    assert_eq!(
        plan.draft.status.public_ip_id.as_deref(),
        Some("ocid1.publicip.oc1..x")
    );
}

#[test]
fn addresses_that_may_not_be_taken_over_are_refused() {
    let refused = |ip: PublicIp, spec_pool: Option<&str>| {
        let mut case = address_case(ip);
        case.spec.public_ipv4_pool = spec_pool.map(str::to_string);
        let c = case.conclusion();
        assert_eq!(c.status.state, Some(State::Failed));
        cond(&c.status, READY).1.to_string()
    };
    let handed = || tags(&[(TAG_CLAIMABLE_BY, "team-a")]);
    let free = || ip_tagged(PublicIpState::Available, None, handed());
    let not_handed = ip_tagged(PublicIpState::Available, None, BTreeMap::new());
    assert_eq!(refused(not_handed, None), "AddressNotClaimable");
    let to_others = ip_tagged(
        PublicIpState::Available,
        None,
        tags(&[(TAG_CLAIMABLE_BY, "team-b,team-aa")]),
    );
    assert_eq!(refused(to_others, None), "AddressNotClaimable");
    let mut ephemeral = free();
    ephemeral.lifetime = Lifetime::Ephemeral;
    assert_eq!(refused(ephemeral, None), "AddressNotReserved");
    let mut elsewhere = free();
    elsewhere.compartment_id = Some("ocid1.compartment.oc1..other".into());
    assert_eq!(refused(elsewhere, None), "AddressInOtherCompartment");
    assert_eq!(refused(free(), Some("pool1")), "AddressNotInPool");
    let in_use = ip_tagged(PublicIpState::Assigned, Some("p7"), handed());
    assert_eq!(refused(in_use, None), "AddressInUse");
    let theirs = ip_tagged(PublicIpState::Available, None, others());
    assert_eq!(refused(theirs, None), "AddressOwnedByOther");
    let other_cluster = ip_tagged(
        PublicIpState::Available,
        None,
        tags(&[(TAG_CLUSTER, "c2"), (TAG_UID, "x")]),
    );
    assert_eq!(refused(other_cluster, None), "AddressOwnedByOtherCluster");
    let mut case = Case::new();
    case.spec.public_ipv4_address = Some("192.0.2.9".into());
    case.seen = PublicIpSeen::AddressNotFound;
    assert_eq!(cond(&case.conclusion().status, READY).1, "AddressNotFound");
}

#[test]
fn a_pass_without_its_target_looked_up_looks_again() {
    let mut case = Case::new();
    case.target = None;
    let c = case.conclusion();
    assert_eq!(c.requeue, Requeue::Now);
}
