//! From a held (or not yet held) IP to the one call of the pass: the
//! policies' say, the next step, the call that makes it.

use std::collections::BTreeMap;

use super::*;
use crate::api::crd::PolicyVerdict;
use crate::decide::plan::Step;
use crate::decide::status::TARGET_TAKEN;
use crate::decide::{Call, How, Requeue};

fn verdict(decision: &str) -> PolicyVerdict {
    PolicyVerdict {
        decision: decision.into(),
        policy: "p".into(),
        version: "v1".into(),
        outcome: "allowed".into(),
        message: String::new(),
        audit: false,
    }
}

#[test]
fn a_new_ip_is_created_and_assigned_in_one_call_with_a_marker_first() {
    let mut case = Case::new().with_pod_target();
    case.spec.tags = BTreeMap::from([("owner".to_string(), "My team".to_string())]);
    case.policy = Some(Ok(Gate {
        tags: case.spec.tags.clone(),
        pool: Some("pool1".into()),
        ..Gate::default()
    }));
    let plan = case.plan();
    assert_eq!(
        plan.step,
        Step::Allocate {
            assign_to: Some("p1".into())
        }
    );
    let Call::Create {
        details,
        token,
        marker,
    } = &plan.call
    else {
        panic!("expected a create: {:?}", plan.call);
    };
    assert_eq!(token, "new-token");
    assert_eq!(details.private_ip_id.as_deref(), Some("p1"));
    assert_eq!(details.public_ip_pool_id.as_deref(), Some("pool1"));
    assert_eq!(details.display_name.as_deref(), Some("team-a/web"));
    let tags = details.freeform_tags.clone().unwrap_or_default();
    assert_eq!(tags.get("owner").map(String::as_str), Some("My team"));
    assert_eq!(tags, ME.desired_tags(&case.spec.tags, None));
    let marker = marker
        .as_ref()
        .expect("a new token is recorded before the create");
    assert_eq!(marker.allocation_token.as_deref(), Some("new-token"));
    assert_eq!(marker.state, Some(State::Allocating));
}

#[test]
fn a_create_retried_reuses_its_token_and_writes_no_new_marker() {
    let mut case = Case::new();
    case.status.allocation_token = Some("t1".into());
    let plan = case.plan();
    let Call::Create { token, marker, .. } = &plan.call else {
        panic!("expected a create: {:?}", plan.call);
    };
    assert_eq!(token, "t1");
    assert!(marker.is_none());
}

#[test]
fn a_taken_target_allocates_unassigned_until_it_is_retried() {
    let mut case = Case::new().with_pod_target();
    let mut status = ReservedIPStatus::default();
    conditions::set(
        &mut status.conditions,
        ASSIGNED,
        false,
        TARGET_TAKEN,
        "taken",
        Some(1),
    );
    case.status = status;
    assert_eq!(case.plan().step, Step::Allocate { assign_to: None });
}

#[test]
fn a_refused_move_takes_the_ip_off_the_target_the_spec_left() {
    // On p0, the spec now names p1, whose private IP has someone's IP.
    let mut case =
        Case::holding(ours(PublicIpState::Assigned, Some("p0")), How::Read).with_pod_target();
    assert_eq!(
        case.plan().step,
        Step::Assign {
            private_ip_id: "p1".into()
        },
        "first, the move"
    );
    conditions::set(
        &mut case.status.conditions,
        ASSIGNED,
        false,
        TARGET_TAKEN,
        "taken",
        Some(1),
    );
    assert_eq!(case.plan().step, Step::Unassign, "refused: off p0");
    // Once free, the target is tried again.
    let mut free = Case::holding(ours(PublicIpState::Available, None), How::Read).with_pod_target();
    free.status.conditions = case.status.conditions.clone();
    assert_eq!(
        free.plan().step,
        Step::Assign {
            private_ip_id: "p1".into()
        }
    );
}

#[test]
fn a_listed_observation_is_read_again_before_any_call() {
    let listed = ours(PublicIpState::Available, None);
    let case = Case::holding(listed.clone(), How::Listed).with_pod_target();
    assert_eq!(
        case.decide(),
        Decision::Reread {
            id: listed.id.clone()
        }
    );
    // At rest as listed: nothing to do, no fresh read needed.
    let at_rest =
        Case::holding(ours(PublicIpState::Assigned, Some("p1")), How::Listed).with_pod_target();
    assert_eq!(at_rest.plan().step, Step::Done);
}

#[test]
fn a_gathered_look_settles_a_transition_but_is_read_again_before_any_call() {
    let gathered = ours(PublicIpState::Available, None);
    let case = Case::holding(gathered.clone(), How::Gathered).with_pod_target();
    assert_eq!(case.decide(), Decision::Reread { id: gathered.id });
    let assigned =
        Case::holding(ours(PublicIpState::Assigned, Some("p1")), How::Gathered).with_pod_target();
    assert_eq!(assigned.plan().step, Step::Done);
    let assigning =
        Case::holding(ours(PublicIpState::Assigning, Some("p1")), How::Gathered).with_pod_target();
    assert!(!assigning.plan().step.calls_oci());
}

#[test]
fn steps_become_calls_with_if_match_only_where_a_race_matters() {
    let free = Case::holding(ours(PublicIpState::Available, None), How::Read).with_pod_target();
    let Call::Update {
        details, if_match, ..
    } = free.plan().call
    else {
        panic!("expected an update");
    };
    assert_eq!(details.private_ip_id.as_deref(), Some("p1"));
    assert_eq!(if_match, None, "an assignment may race nothing of ours");
    let mut drifted = ours(PublicIpState::Available, None);
    drifted.freeform_tags.insert("extra".into(), "x".into());
    let plan = Case::holding(drifted, How::Read).plan();
    assert!(matches!(plan.step, Step::Retag { .. }));
    let Call::Update { if_match, .. } = plan.call else {
        panic!("expected an update");
    };
    assert_eq!(
        if_match.as_deref(),
        Some("etag-1"),
        "tags: only over what was read"
    );
    let on = Case::holding(ours(PublicIpState::Assigned, Some("p1")), How::Read);
    let Call::Update { details, .. } = on.plan().call else {
        panic!("expected an update");
    };
    assert_eq!(details.private_ip_id.as_deref(), Some(""), "unassign");
    let busy =
        Case::holding(ours(PublicIpState::Assigning, Some("p1")), How::Read).with_pod_target();
    assert_eq!(busy.plan().call, Call::None, "waiting for OCI");
}

#[test]
fn a_policy_refusing_a_new_ip_fails_it_without_a_call() {
    let mut case = Case::new();
    case.policy = Some(Ok(Gate {
        refused: Some(("quota".into(), "team over budget".into())),
        ..Gate::default()
    }));
    let c = case.conclusion();
    assert_eq!(c.status.state, Some(State::Failed));
    assert_eq!(cond(&c.status, ALLOCATED), ("False", "PolicyDenied"));
    assert_eq!(cond(&c.status, READY), ("False", "PolicyDenied"));
    assert!(c.events[0].message.contains("policy quota refused"));
    // Once an IP is held, the same refusal does not take it away.
    let mut held = Case::holding(ours(PublicIpState::Available, None), How::Read);
    held.policy = case.policy.clone();
    assert_eq!(held.plan().step, Step::Done);
}

#[test]
fn a_policy_refusing_the_target_keeps_the_ip_off_it_and_says_why() {
    let mut case =
        Case::holding(ours(PublicIpState::Assigned, Some("p1")), How::Read).with_pod_target();
    case.policy = Some(Ok(Gate {
        target_refused: Some(("pods".into(), "no public IPs for web".into())),
        ..Gate::default()
    }));
    let plan = case.plan();
    assert_eq!(plan.step, Step::Unassign);
    assert!(matches!(
        plan.target,
        Target::Refused {
            reason: "PolicyDenied",
            ..
        }
    ));
    assert_eq!(plan.draft.events[0].reason, "PolicyDenied");
}

#[test]
fn a_policy_error_backs_off_and_leaves_the_ip_alone() {
    let mut case =
        Case::holding(ours(PublicIpState::Assigned, Some("p1")), How::Read).with_pod_target();
    case.policy = Some(Err("evaluating policies: deadline exceeded".into()));
    let c = case.conclusion();
    assert_eq!(cond(&c.status, READY), ("False", "PolicyError"));
    assert!(matches!(c.requeue, Requeue::Backoff { .. }));
}

#[test]
fn pool_verdicts_are_kept_once_an_ip_is_held_and_replaced_before() {
    let gate = Gate {
        verdicts: vec![verdict("tagDefaults")],
        ..Gate::default()
    };
    let mut held = Case::holding(ours(PublicIpState::Available, None), How::Read);
    held.status.policies = vec![verdict("pool"), verdict("eligibility")];
    held.policy = Some(Ok(gate.clone()));
    let decisions = |plan: Plan| -> Vec<String> {
        plan.draft
            .status
            .policies
            .iter()
            .map(|v| v.decision.clone())
            .collect()
    };
    assert_eq!(decisions(held.plan()), ["pool", "tagDefaults"]);
    let mut new = Case::new();
    new.status.policies = vec![verdict("pool")];
    new.policy = Some(Ok(gate));
    assert_eq!(decisions(new.plan()), ["tagDefaults"]);
}

#[test]
fn a_target_that_could_not_be_resolved_backs_off() {
    let mut case = Case::holding(ours(PublicIpState::Available, None), How::Read);
    case.target = Some(Err(failure("OCIThrottled", "TooManyRequests", false)));
    let c = case.conclusion();
    assert_eq!(cond(&c.status, READY), ("False", "OCIThrottled"));
    let message = conditions::get(&c.status.conditions, READY)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.starts_with("resolving the assignment target"),
        "{message}"
    );
}
