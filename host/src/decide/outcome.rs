//! What a pass comes to once its OCI call answered: [`conclude`]. Pure.

use std::time::Duration;

use super::conclusion::{Conclusion, Draft, Note, Requeue};
use super::decision::Plan;
use super::observation::Failure;
use super::plan::{Step, assigned_to, state_of};
use super::status::{Problem, RETRY_TOKEN_INVALIDATED, TARGET_TAKEN, update};
use super::target::Target;
use crate::api::conditions::{self, ALLOCATED, ASSIGNED};
use crate::api::crd::{Assignment, State};
use crate::decide::ownership::{TAG_NAME, TAG_NAMESPACE};
use crate::oci::{Lifetime, PublicIp};

/// What the plan's call answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The call's answer (the observed IP when there was no call).
    Answered(Option<PublicIp>),
    /// OCI refused: the target private IP already has a public IP. `holder`
    /// is that IP, when it could be read (for a message that says whose).
    TargetTaken {
        failure: Failure,
        holder: Option<PublicIp>,
    },
    Failed(Failure),
    /// The target (a node's primary private IP, `replaceEphemeral: true`)
    /// had an ephemeral public IP: deleted now (`deleted`), or already
    /// going; the assignment follows once it is gone.
    EphemeralReplaced {
        address: String,
        deleted: bool,
    },
}

/// Whether the pass may delete `holder`, the public IP on the target, to
/// make room: only an ephemeral IP, only on the node's primary private IP
/// the spec names by `nodeName`, and only when the spec says
/// `replaceEphemeral: true`. Nothing else is ever deleted to make room.
pub fn may_replace_ephemeral(
    assignment: Option<&Assignment>,
    target: &Target,
    holder: &PublicIp,
) -> bool {
    let asked =
        assignment.is_some_and(|a| a.node_name.is_some() && a.replace_ephemeral == Some(true));
    let on_target = match target {
        Target::PrivateIp(t) => t.primary && assigned_to(holder) == Some(t.private_ip_id.as_str()),
        _ => false,
    };
    asked && on_target && holder.lifetime == Lifetime::Ephemeral
}

/// The conclusion of an acted plan.
pub fn conclude(plan: Plan, outcome: Outcome) -> Conclusion {
    let Plan {
        step,
        target,
        mut draft,
        observed,
        ..
    } = plan;
    // A refused move leaves the IP on its previous private IP.
    let plan_observed_assigned = observed.as_ref().and_then(assigned_to).is_some();
    match outcome {
        Outcome::Answered(ip) => {
            if let Step::Claim { .. } = step {
                return claimed(draft, ip.as_ref());
            }
            if let Some(note) = announce(&step, ip.as_ref(), &target, draft.was) {
                draft.events.push(note);
            }
            update(&mut draft.status, ip.as_ref(), &target, draft.generation);
            let timing = draft.timing;
            let changing = ip
                .as_ref()
                .map(|ip| ip.lifecycle_state)
                .filter(|state| state.is_transitional());
            let requeue = match (&step, &target, changing) {
                // A target that is not there (yet) is looked for again with
                // a growing interval, up to the resync: one that never comes
                // costs few reads. A pod that appears wakes the pass at once.
                (Step::Done, Target::Absent { .. }, _) => Requeue::Backoff {
                    at_least: timing.poll,
                },
                (Step::Done, _, _) => Requeue::After(timing.resync),
                (_, _, Some(state)) => Requeue::Transition {
                    state,
                    began: step.calls_oci(),
                },
                // OCI answered the change as done already: see it fresh.
                (_, _, None) => Requeue::After(Duration::ZERO),
            };
            draft.finish(None, requeue)
        }
        Outcome::TargetTaken { failure, holder } => {
            let still_elsewhere = plan_observed_assigned;
            target_taken(draft, &target, &failure, holder, still_elsewhere)
        }
        Outcome::EphemeralReplaced { address, deleted } => {
            ephemeral_replaced(draft, &target, &address, deleted)
        }
        Outcome::Failed(failure) => {
            if matches!(step, Step::Allocate { .. })
                && failure.code.as_deref() == Some("InvalidatedRetryToken")
            {
                return retry_token_invalidated(draft, &failure);
            }
            // Other refusals keep the token, so a retry writes no new marker.
            let message = format!("{}: {}", step.describe(), failure.message);
            draft.failed(&failure.reason, message)
        }
    }
}

/// OCI refused the create's retry token: it was used before with another
/// body (a create whose answer was lost, then the target changed) or its IP
/// was deleted since. In the first case a public IP with this ReservedIP's
/// tags exists, perhaps not yet listed (listings are eventually consistent):
/// the token is kept, so passes keep looking for it by tags, and only when
/// none has turned up for the missing grace does a pass start over with a
/// fresh token (`decide::pass`). Creating at once would allocate twice.
fn retry_token_invalidated(mut draft: Draft, failure: &Failure) -> Conclusion {
    let first = conditions::get(&draft.status.conditions, ALLOCATED)
        .is_none_or(|c| c.reason != RETRY_TOKEN_INVALIDATED);
    if first {
        // Dated at the first refusal (another False reason keeps its time).
        draft.status.conditions.retain(|c| c.type_ != ALLOCATED);
    }
    let message = format!(
        "OCI refused the create's retry token ({}); a public IP may exist from its first use: looking for it by this ReservedIP's tags before creating another",
        failure.message
    );
    draft.condition(ALLOCATED, false, RETRY_TOKEN_INVALIDATED, &message);
    draft.warn_once(RETRY_TOKEN_INVALIDATED, &message);
    let wait = draft.timing.poll.max(Duration::from_secs(1));
    let problem = Problem {
        reason: RETRY_TOKEN_INVALIDATED.into(),
        message,
    };
    draft.finish(Some(problem), Requeue::After(wait))
}

/// An address claimed with our tags: recorded as held; the next pass, at
/// once, assigns it.
fn claimed(mut draft: Draft, ip: Option<&PublicIp>) -> Conclusion {
    let address = ip.and_then(|ip| ip.ip_address.clone()).unwrap_or_default();
    if let Some(ip) = ip {
        draft.status.public_ip_id = Some(ip.id.clone());
        draft.status.public_ip_address = ip.ip_address.clone();
    }
    draft.status.adopted = true;
    draft.status.state = Some(State::Allocating);
    draft.condition(
        ALLOCATED,
        true,
        "Allocated",
        &format!("public IP {address} is held"),
    );
    draft.event(
        false,
        "AddressTakenOver",
        format!("took over existing public IP {address}"),
    );
    draft.finish(None, Requeue::Now)
}

/// The node's ephemeral public IP is being removed to make room (as the
/// spec asked): the assignment is tried again shortly.
fn ephemeral_replaced(
    mut draft: Draft,
    target: &Target,
    address: &str,
    deleted: bool,
) -> Conclusion {
    let to = target.describe();
    if deleted {
        draft.event(
            false,
            "EphemeralIPDeleted",
            format!(
                "deleted ephemeral public IP {address} of {to} to make room (replaceEphemeral)"
            ),
        );
    }
    not_assigned(&mut draft);
    draft.condition(
        ASSIGNED,
        false,
        "ReplacingEphemeral",
        &format!("waiting for ephemeral public IP {address} to leave {to}"),
    );
    let wait = draft.timing.poll;
    draft.finish(None, Requeue::After(wait))
}

/// After a refused assign (or create-and-assign): the IP, if one is held,
/// stays allocated; a refused create's token is dropped, so the next
/// attempt uses a fresh one.
fn not_assigned(draft: &mut Draft) {
    let held = draft.status.public_ip_id.is_some();
    draft.status.state = Some(if held {
        State::Allocated
    } else {
        State::Pending
    });
    if !held {
        draft.status.allocation_token = None;
    }
}

/// The target private IP already has a public IP: say whose, take nothing.
fn target_taken(
    mut draft: Draft,
    target: &Target,
    failure: &Failure,
    holder: Option<PublicIp>,
    still_elsewhere: bool,
) -> Conclusion {
    let private_ip = target.private_ip_id().unwrap_or_default();
    let message = match holder {
        Some(other) if other.lifetime == Lifetime::Ephemeral => format!(
            "private IP {private_ip} already has ephemeral public IP {} (hostNetwork pods use the node's primary private IP); the operator removes it only for an assignment by nodeName with replaceEphemeral: true",
            other.ip_address.unwrap_or_default()
        ),
        Some(other) => {
            let tags = &other.freeform_tags;
            let whose = match (tags.get(TAG_NAMESPACE), tags.get(TAG_NAME)) {
                (Some(ns), Some(n)) if *ns == draft.namespace => format!("ReservedIP {n}"),
                (Some(_), Some(_)) => "another namespace's ReservedIP".to_string(),
                _ => "a public IP not managed by this operator".to_string(),
            };
            format!(
                "private IP {private_ip} already has public IP {} of {whose}",
                other.ip_address.unwrap_or_default()
            )
        }
        None => format!("OCI refused the assignment: {}", failure.message),
    };
    draft.warn_once(TARGET_TAKEN, &message);
    not_assigned(&mut draft);
    draft.condition(ASSIGNED, false, TARGET_TAKEN, &message);
    let problem = Problem {
        reason: TARGET_TAKEN.into(),
        message,
    };
    if still_elsewhere {
        // The IP is still on the private IP the spec left: the next pass
        // takes it off, now rather than after the backoff.
        return draft.finish(Some(problem), Requeue::Now);
    }
    let at_least = draft.timing.poll * 10;
    draft.finish(Some(problem), Requeue::Backoff { at_least })
}

/// The event of a step, for real transitions only.
fn announce(
    step: &Step,
    ip: Option<&PublicIp>,
    target: &Target,
    was: Option<State>,
) -> Option<Note> {
    let address = ip.and_then(|i| i.ip_address.clone()).unwrap_or_default();
    let to = target.describe();
    let (reason, message) = match step {
        Step::Allocate { assign_to: None } => {
            ("Allocated", format!("allocated public IP {address}"))
        }
        Step::Allocate { assign_to: Some(_) } => (
            "Assigning",
            format!("allocated public IP {address}, assigning it to {to}"),
        ),
        Step::Assign { .. } => (
            "Assigning",
            format!("assigning public IP {address} to {to}"),
        ),
        Step::Unassign => ("Unassigning", format!("unassigning public IP {address}")),
        Step::Retag { .. } => (
            "Retagged",
            format!("restored the tags of public IP {address}"),
        ),
        Step::Claim { .. } => return None,
        // A finished assignment or unassignment is worth one event.
        Step::Wait | Step::Done => match (was, state_of(ip, target)) {
            (Some(w), State::Assigned) if w != State::Assigned => (
                "Assigned",
                format!("public IP {address} is assigned to {to}"),
            ),
            (Some(State::Assigned | State::Unassigning), State::Allocated) => {
                ("Unassigned", format!("public IP {address} is not assigned"))
            }
            _ => return None,
        },
    };
    Some(Note {
        warning: false,
        reason: reason.into(),
        message,
    })
}
