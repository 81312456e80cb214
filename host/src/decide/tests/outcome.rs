//! What a pass comes to once its call answered: the status, the events and
//! when to look again.

use std::collections::BTreeMap;

use super::*;
use crate::decide::ownership::{TAG_NAME, TAG_NAMESPACE};
use crate::decide::plan::Step;
use crate::decide::{Call, How, Outcome, Requeue, conclude};
use crate::oci::Lifetime;

fn answered(case: &Case, ip: Option<PublicIp>) -> Conclusion {
    conclude(case.plan(), Outcome::Answered(ip))
}

#[test]
fn a_change_still_under_way_is_watched_and_one_answered_done_is_read_at_once() {
    let busy =
        Case::holding(ours(PublicIpState::Assigning, Some("p1")), How::Read).with_pod_target();
    let seen = busy.plan().observed.clone();
    let c = answered(&busy, seen);
    assert_eq!(
        c.requeue,
        Requeue::Transition {
            state: PublicIpState::Assigning,
            began: false
        },
        "a look, not a new change"
    );
    let case = Case::new().with_pod_target();
    let c = answered(&case, Some(ours(PublicIpState::Assigned, Some("p1"))));
    assert_eq!(c.requeue, Requeue::After(Duration::ZERO));
}

#[test]
fn a_created_ip_is_recorded_and_its_marker_cleared() {
    let mut case = Case::new().with_pod_target();
    case.status.allocation_token = Some("t1".into());
    let c = answered(&case, Some(ours(PublicIpState::Assigning, Some("p1"))));
    assert_eq!(
        c.status.public_ip_id.as_deref(),
        Some("ocid1.publicip.oc1..x")
    );
    assert_eq!(c.status.public_ip_address.as_deref(), Some("192.0.2.1"));
    assert_eq!(c.status.allocation_token, None);
    assert_eq!(c.status.state, Some(State::Assigning));
    assert_eq!(
        c.requeue,
        Requeue::Transition {
            state: PublicIpState::Assigning,
            began: true
        },
        "watch the change finish, timed from this call"
    );
    assert_eq!(c.events[0].reason, "Assigning");
    assert!(c.events[0].message.contains("pod web-0 (10.0.65.3)"));
    assert_eq!(c.status.observed_generation, Some(3));
}

#[test]
fn a_settled_ip_is_looked_at_again_only_at_the_resync() {
    let case =
        Case::holding(ours(PublicIpState::Assigned, Some("p1")), How::Read).with_pod_target();
    let plan = case.plan();
    assert_eq!(plan.step, Step::Done);
    let ip = plan.observed.clone();
    assert_eq!(
        conclude(plan, Outcome::Answered(ip)).requeue,
        Requeue::After(TIMING.resync)
    );
    // A target that is not there yet is looked for again with backoff, from
    // the poll interval (capped at the resync by the controller).
    let mut absent = Case::holding(ours(PublicIpState::Available, None), How::Read);
    absent.target = Some(Ok(Target::Absent {
        reason: "PodNotFound",
        message: "pod web-0 does not exist (yet)".into(),
    }));
    let plan = absent.plan();
    assert_eq!(plan.step, Step::Done);
    let ip = plan.observed.clone();
    let c = conclude(plan, Outcome::Answered(ip));
    assert_eq!(
        c.requeue,
        Requeue::Backoff {
            at_least: TIMING.poll
        }
    );
    assert_eq!(cond(&c.status, READY), ("False", "PodNotFound"));
}

#[test]
fn a_finished_assignment_and_unassignment_are_announced_once() {
    let mut case =
        Case::holding(ours(PublicIpState::Assigned, Some("p1")), How::Read).with_pod_target();
    case.status.state = Some(State::Assigning);
    let ip = Some(ours(PublicIpState::Assigned, Some("p1")));
    let c = answered(&case, ip.clone());
    assert_eq!(c.events.len(), 1);
    assert_eq!(c.events[0].reason, "Assigned");
    case.status.state = Some(State::Assigned);
    assert!(answered(&case, ip).events.is_empty(), "already assigned");
    let mut off = Case::holding(ours(PublicIpState::Available, None), How::Read);
    off.status.state = Some(State::Unassigning);
    let c = answered(&off, Some(ours(PublicIpState::Available, None)));
    assert_eq!(c.events[0].reason, "Unassigned");
}

#[test]
fn a_taken_target_says_whose_ip_is_there_and_holds_back() {
    let case = Case::holding(ours(PublicIpState::Available, None), How::Read).with_pod_target();
    let theirs = ip_tagged(
        PublicIpState::Assigned,
        Some("p1"),
        BTreeMap::from([
            (TAG_NAMESPACE.to_string(), "team-b".to_string()),
            (TAG_NAME.to_string(), "db".to_string()),
        ]),
    );
    let c = conclude(
        case.plan(),
        Outcome::TargetTaken {
            failure: failure("OCIConflict", "Conflict", true),
            holder: Some(theirs),
        },
    );
    assert_eq!(cond(&c.status, ASSIGNED), ("False", "TargetHasPublicIP"));
    assert_eq!(cond(&c.status, READY), ("False", "TargetHasPublicIP"));
    assert!(
        c.events[0]
            .message
            .contains("another namespace's ReservedIP")
            && !c.events[0].message.contains("team-b"),
        "another namespace is not named: {:?}",
        c.events
    );
    // One of the same namespace is named, to help.
    let ours_too = ip_tagged(
        PublicIpState::Assigned,
        Some("p1"),
        BTreeMap::from([
            (TAG_NAMESPACE.to_string(), ME.namespace.to_string()),
            (TAG_NAME.to_string(), "db".to_string()),
        ]),
    );
    let c2 = conclude(
        case.plan(),
        Outcome::TargetTaken {
            failure: failure("OCIConflict", "Conflict", true),
            holder: Some(ours_too),
        },
    );
    assert!(
        c2.events[0].message.contains("ReservedIP db"),
        "{:?}",
        c2.events
    );
    assert_eq!(
        c.status.state,
        Some(State::Allocated),
        "the IP is still held"
    );
    assert_eq!(
        c.requeue,
        Requeue::Backoff {
            at_least: TIMING.poll * 10
        }
    );
    let mut ephemeral = ours(PublicIpState::Assigned, Some("p1"));
    ephemeral.lifetime = Lifetime::Ephemeral;
    let c = conclude(
        case.plan(),
        Outcome::TargetTaken {
            failure: failure("OCIConflict", "Conflict", true),
            holder: Some(ephemeral),
        },
    );
    assert!(c.events[0].message.contains("ephemeral public IP"));
}

#[test]
fn a_refused_move_comes_back_at_once_to_take_the_ip_off() {
    let case =
        Case::holding(ours(PublicIpState::Assigned, Some("p0")), How::Read).with_pod_target();
    let c = conclude(
        case.plan(),
        Outcome::TargetTaken {
            failure: failure("OCIConflict", "Conflict", true),
            holder: None,
        },
    );
    assert_eq!(cond(&c.status, ASSIGNED), ("False", "TargetHasPublicIP"));
    assert_eq!(c.requeue, Requeue::Now, "the IP still sits on p0");
}

#[test]
fn a_create_refused_for_a_taken_target_drops_its_token() {
    let mut case = Case::new().with_pod_target();
    case.status.allocation_token = Some("t1".into());
    let c = conclude(
        case.plan(),
        Outcome::TargetTaken {
            failure: failure("OCIConflict", "Conflict", true),
            holder: None,
        },
    );
    assert_eq!(c.status.allocation_token, None);
    assert_eq!(c.status.state, Some(State::Pending));
    assert!(
        c.events[0]
            .message
            .starts_with("OCI refused the assignment")
    );
}

#[test]
fn an_invalidated_retry_token_is_kept_until_no_ip_has_turned_up_for_the_grace() {
    let mut case = Case::new().with_pod_target();
    case.status.allocation_token = Some("t1".into());
    let invalidated = failure("OCIInvalidatedRetryToken", "InvalidatedRetryToken", false);
    let c = conclude(case.plan(), Outcome::Failed(invalidated));
    // An IP may exist from the token's first use: keep looking by tags.
    assert_eq!(c.status.allocation_token.as_deref(), Some("t1"));
    assert_eq!(
        cond(&c.status, ALLOCATED),
        ("False", "RetryTokenInvalidated")
    );
    assert_eq!(c.requeue, Requeue::After(TIMING.poll));

    // Nothing found by tags yet: no create within the grace.
    case.status = c.status.clone();
    let waiting = case.conclusion();
    assert_eq!(waiting.status.allocation_token.as_deref(), Some("t1"));
    let refused_at = conditions::get(&case.status.conditions, ALLOCATED)
        .map(|c| c.last_transition_time.0)
        .unwrap();

    // Past the grace: a fresh token, a new marker first.
    case.now = refused_at + TIMING.missing_grace + Duration::from_secs(1);
    let plan = case.plan();
    let Call::Create { token, marker, .. } = &plan.call else {
        panic!("expected a create: {:?}", plan.call);
    };
    assert_eq!(token, "new-token");
    assert!(marker.is_some());
    assert!(
        plan.draft
            .events
            .iter()
            .any(|e| e.reason == "RetryTokenReplaced"),
        "{:?}",
        plan.draft.events
    );

    // Found by tags meanwhile: held, no create.
    case.now = refused_at;
    case.seen = PublicIpSeen::Found {
        ip: ours(PublicIpState::Assigned, Some("p1")),
        how: How::Recovered,
    };
    assert!(!matches!(case.plan().call, Call::Create { .. }));
}

#[test]
fn other_create_failures_keep_the_token() {
    let mut case = Case::new().with_pod_target();
    case.status.allocation_token = Some("t1".into());
    let limit = failure("OCILimitExceeded", "LimitExceeded", false);
    let c = conclude(case.plan(), Outcome::Failed(limit));
    assert_eq!(c.status.allocation_token.as_deref(), Some("t1"));
    assert_eq!(cond(&c.status, READY), ("False", "OCILimitExceeded"));
    let message = conditions::get(&c.status.conditions, READY)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(message.starts_with("creating the public IP: "), "{message}");
    assert!(
        !message.contains("Allocate {"),
        "no Debug output: {message}"
    );
}

#[test]
fn a_repeated_failure_keeps_its_first_message_and_is_announced_once() {
    let mut case = Case::holding(ours(PublicIpState::Available, None), How::Read).with_pod_target();
    let first = conclude(
        case.plan(),
        Outcome::Failed(failure("OCIInternalError", "InternalError", false)),
    );
    assert_eq!(first.events.len(), 1);
    case.status = first.status.clone();
    let mut again = failure("OCIInternalError", "InternalError", false);
    again.message = "OCI answered InternalError (opc-request-id: r2)".into();
    let second = conclude(case.plan(), Outcome::Failed(again));
    assert!(second.events.is_empty());
    let message =
        |c: &Conclusion| conditions::get(&c.status.conditions, READY).map(|c| c.message.clone());
    assert_eq!(message(&second), message(&first), "status is not rewritten");
    assert_eq!(second.status, first.status);
}

#[test]
fn only_a_nodes_ephemeral_ip_is_replaced_and_only_when_asked() {
    use crate::api::crd::Assignment;
    use crate::decide::outcome::may_replace_ephemeral;
    let node = |replace: Option<bool>| Assignment {
        node_name: Some("node-1".into()),
        replace_ephemeral: replace,
        ..Assignment::default()
    };
    let primary = |id: &str| {
        let Target::PrivateIp(mut t) = pod_target(id) else {
            unreachable!()
        };
        t.pod = None;
        t.primary = true;
        Target::PrivateIp(t)
    };
    let mut ephemeral = ours(PublicIpState::Assigned, Some("p1"));
    ephemeral.lifetime = Lifetime::Ephemeral;
    let asked = node(Some(true));
    assert!(may_replace_ephemeral(
        Some(&asked),
        &primary("p1"),
        &ephemeral
    ));
    // Not asked, or asked off.
    assert!(!may_replace_ephemeral(
        Some(&node(None)),
        &primary("p1"),
        &ephemeral
    ));
    assert!(!may_replace_ephemeral(
        Some(&node(Some(false))),
        &primary("p1"),
        &ephemeral
    ));
    // A reserved IP (someone's address) is never deleted to make room.
    let reserved = ours(PublicIpState::Assigned, Some("p1"));
    assert!(!may_replace_ephemeral(
        Some(&asked),
        &primary("p1"),
        &reserved
    ));
    // Only on the target itself, and only a VNIC's primary IP.
    assert!(!may_replace_ephemeral(
        Some(&asked),
        &primary("p2"),
        &ephemeral
    ));
    assert!(!may_replace_ephemeral(
        Some(&asked),
        &pod_target("p1"),
        &ephemeral
    ));
    // replaceEphemeral means nothing for other targets.
    let by_pod = Assignment {
        pod_name: Some("web".into()),
        replace_ephemeral: Some(true),
        ..Assignment::default()
    };
    assert!(!may_replace_ephemeral(
        Some(&by_pod),
        &primary("p1"),
        &ephemeral
    ));
}

#[test]
fn a_replaced_ephemeral_ip_is_announced_and_the_assignment_retried_soon() {
    let case = Case::new().with_pod_target();
    let c = conclude(
        case.plan(),
        Outcome::EphemeralReplaced {
            address: "198.51.100.9".into(),
            deleted: true,
        },
    );
    assert_eq!(c.events[0].reason, "EphemeralIPDeleted");
    assert!(c.events[0].message.contains("198.51.100.9"));
    assert_eq!(cond(&c.status, "Assigned"), ("False", "ReplacingEphemeral"));
    assert_eq!(c.requeue, Requeue::After(TIMING.poll));
    assert_eq!(
        c.status.allocation_token, None,
        "the refused create's token is not reused"
    );
    let again = conclude(
        case.plan(),
        Outcome::EphemeralReplaced {
            address: "198.51.100.9".into(),
            deleted: false,
        },
    );
    assert!(again.events.is_empty(), "announced once");
}
