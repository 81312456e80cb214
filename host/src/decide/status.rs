//! A ReservedIP's status from what a pass knows: the state, the public and
//! private IP fields, the `Allocated` and `Assigned` conditions, and `Ready`,
//! which is derived from them (and from a failure, if the pass had one) in
//! one place, [`set_ready`]. Pure.

use crate::api::conditions::{self, ALLOCATED, ASSIGNED, READY};
use crate::api::crd::{ReservedIPStatus, State};
use crate::decide::plan::state_of;
use crate::decide::target::Target;
use crate::oci::PublicIp;

/// Condition reason: OCI answers 404 for the recorded public IP (so far).
pub const PUBLIC_IP_MISSING: &str = "PublicIPNotFound";
/// Condition reason: the target private IP already has another public IP.
pub const TARGET_TAKEN: &str = "TargetHasPublicIP";
/// Condition reason: OCI refused the create's retry token (409
/// InvalidatedRetryToken); an IP may exist from its first use.
pub const RETRY_TOKEN_INVALIDATED: &str = "RetryTokenInvalidated";
/// Condition reason: a policy refused the IP or its target.
pub const POLICY_DENIED: &str = "PolicyDenied";
/// Condition reason: the policies could not be evaluated.
pub const POLICY_ERROR: &str = "PolicyError";
/// `Assigned` reason when the spec asks for no assignment (which is as wanted).
pub const NO_ASSIGNMENT: &str = "NoAssignment";

/// Why a pass could not bring the ReservedIP where its spec asks, when
/// `Allocated` and `Assigned` do not say it (an OCI failure, a policy error,
/// a taken target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub reason: String,
    pub message: String,
}

/// Fills the state, the IP fields and the `Allocated` and `Assigned`
/// conditions from the public IP now known and the target.
pub fn update(
    status: &mut ReservedIPStatus,
    ip: Option<&PublicIp>,
    target: &Target,
    generation: Option<i64>,
) {
    let state = state_of(ip, target);
    let s = &mut *status;
    s.state = Some(state);
    if let Some(ip) = ip {
        s.public_ip_id = Some(ip.id.clone());
        s.public_ip_address = ip.ip_address.clone();
        s.allocation_token = None;
    }
    match (target, state == State::Assigned) {
        (Target::PrivateIp(t), true) => {
            s.private_ip_id = Some(t.private_ip_id.clone());
            s.private_ip_address = Some(t.private_ip_address.clone());
            s.pod_name = t.pod.as_ref().map(|p| p.0.clone());
            s.pod_uid = t.pod.as_ref().map(|p| p.1.clone());
        }
        _ => {
            s.private_ip_id = None;
            s.private_ip_address = None;
            s.pod_name = None;
            s.pod_uid = None;
        }
    }
    let address = s.public_ip_address.clone().unwrap_or_default();
    let (held, reason, message) = match ip {
        Some(_) => (true, "Allocated", format!("public IP {address} is held")),
        None => (false, "Allocating", "creating the public IP".to_string()),
    };
    conditions::set(
        &mut status.conditions,
        ALLOCATED,
        held,
        reason,
        &message,
        generation,
    );
    let (assigned, reason, message): (bool, &str, String) = match (target, state) {
        (Target::Unassigned, State::Allocated) => {
            (false, NO_ASSIGNMENT, "the spec has no assignment".into())
        }
        (Target::Unassigned, _) => (false, "Unassigning", "taking the IP off its target".into()),
        (Target::Absent { reason, message } | Target::Refused { reason, message }, _) => {
            (false, reason, message.clone())
        }
        (Target::PrivateIp(t), State::Assigned) => (
            true,
            "Assigned",
            format!("assigned to {}", t.private_ip_address),
        ),
        (Target::PrivateIp(t), _) => (
            false,
            "Assigning",
            format!("assigning to {}", t.private_ip_address),
        ),
    };
    conditions::set(
        &mut status.conditions,
        ASSIGNED,
        assigned,
        reason,
        &message,
        generation,
    );
}

/// Sets `Ready`: True when `Allocated` is True, `Assigned` is True (or no
/// assignment is wanted), the state is a resting one and the pass had no
/// problem; otherwise False with the reason of the first thing in the way.
pub fn set_ready(
    status: &mut ReservedIPStatus,
    problem: Option<&Problem>,
    generation: Option<i64>,
) {
    let (ready, reason, message) = ready_of(status, problem);
    conditions::set(
        &mut status.conditions,
        READY,
        ready,
        &reason,
        &message,
        generation,
    );
}

fn ready_of(status: &ReservedIPStatus, problem: Option<&Problem>) -> (bool, String, String) {
    if let Some(p) = problem {
        return (false, p.reason.clone(), p.message.clone());
    }
    let allocated = conditions::get(&status.conditions, ALLOCATED);
    let assigned = conditions::get(&status.conditions, ASSIGNED);
    let in_the_way = allocated
        .filter(|c| c.status != "True")
        .or(assigned.filter(|c| c.status != "True" && c.reason != NO_ASSIGNMENT));
    if let Some(c) = in_the_way {
        return (false, c.reason.clone(), c.message.clone());
    }
    let state = status.state.unwrap_or_default();
    if allocated.is_some() && matches!(state, State::Allocated | State::Assigned) {
        let address = status.public_ip_address.as_deref().unwrap_or_default();
        let reason = if assigned.is_some_and(|c| c.status == "True") {
            "Assigned"
        } else {
            "Allocated"
        };
        return (
            true,
            reason.into(),
            format!("public IP {address} is in the state the spec asks for"),
        );
    }
    (
        false,
        state_reason(state).into(),
        format!("the ReservedIP is {}", state_reason(state).to_lowercase()),
    )
}

/// A state as a condition reason (CamelCase).
fn state_reason(state: State) -> &'static str {
    match state {
        State::Pending => "Pending",
        State::Allocating => "Allocating",
        State::Allocated => "Allocated",
        State::Assigning => "Assigning",
        State::Assigned => "Assigned",
        State::Unassigning => "Unassigning",
        State::Releasing => "Releasing",
        State::Failed => "Failed",
    }
}
