//! The next step towards the spec for a public IP that is (or is not yet)
//! held: allocate, assign, unassign, retag, wait or nothing. Pure.
//!
//! One step is one OCI call; the next pass observes its effect. This keeps
//! every step idempotent and crash-safe.

use std::collections::BTreeMap;

use super::target::Target;
use crate::api::crd::State;
use crate::oci::{PublicIp, PublicIpState};

/// The next step towards the desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No public IP yet: create one, assigned to the target when it is known
    /// (OCI allocates and assigns in one call).
    Allocate { assign_to: Option<String> },
    /// OCI is still changing the IP: look again shortly.
    Wait,
    /// Assign the IP to this private IP, or move it there.
    Assign { private_ip_id: String },
    /// Take the IP off its private IP.
    Unassign,
    /// Put the tags back (missing ownership tags, or changed user tags).
    Retag { tags: BTreeMap<String, String> },
    /// Take over an existing address nobody owns: put our tags on it (the
    /// next pass assigns it).
    Claim { tags: BTreeMap<String, String> },
    /// Nothing to do: the IP is where it should be, with the right tags.
    Done,
}

/// The private IP a public IP is on (or going to), if any.
pub fn assigned_to(ip: &PublicIp) -> Option<&str> {
    ip.assigned_entity_id
        .as_deref()
        .or(ip.private_ip_id.as_deref())
        .filter(|id| !id.is_empty())
}

impl Step {
    /// Whether the step is an OCI call.
    pub fn calls_oci(&self) -> bool {
        !matches!(self, Step::Wait | Step::Done)
    }

    /// What the step does, for messages: "assigning the public IP to ...".
    pub fn describe(&self) -> String {
        match self {
            Step::Allocate { .. } => "creating the public IP".into(),
            Step::Assign { private_ip_id } => {
                format!("assigning the public IP to private IP {private_ip_id}")
            }
            Step::Unassign => "unassigning the public IP".into(),
            Step::Retag { .. } => "restoring the public IP's tags".into(),
            Step::Claim { .. } => "taking over the address".into(),
            Step::Wait => "waiting for OCI".into(),
            Step::Done => "checking the public IP".into(),
        }
    }
}

/// The next step for a held public IP (or none yet) towards `target` with `desired_tags`.
pub fn next_step(
    observed: Option<&PublicIp>,
    target: &Target,
    desired_tags: &BTreeMap<String, String>,
) -> Step {
    let Some(ip) = observed else {
        return Step::Allocate {
            assign_to: target.private_ip_id().map(str::to_string),
        };
    };
    if ip.lifecycle_state.is_transitional() {
        return Step::Wait;
    }
    let current = assigned_to(ip);
    match (target.private_ip_id(), current) {
        (Some(want), Some(have)) if want == have => {}
        (Some(want), _) => {
            return Step::Assign {
                private_ip_id: want.to_string(),
            };
        }
        (None, Some(_)) => return Step::Unassign,
        (None, None) => {}
    }
    if &ip.freeform_tags != desired_tags {
        return Step::Retag {
            tags: desired_tags.clone(),
        };
    }
    Step::Done
}

/// The `status.state` that describes what was observed.
pub fn state_of(observed: Option<&PublicIp>, target: &Target) -> State {
    let Some(ip) = observed else {
        return State::Allocating;
    };
    match ip.lifecycle_state {
        PublicIpState::Provisioning => State::Allocating,
        PublicIpState::Assigning => State::Assigning,
        PublicIpState::Unassigning => State::Unassigning,
        PublicIpState::Terminating | PublicIpState::Terminated => State::Releasing,
        _ => match (assigned_to(ip), target.private_ip_id()) {
            (Some(have), Some(want)) if have == want => State::Assigned,
            (Some(_), _) => State::Assigning,
            (None, _) => State::Allocated,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::target::ResolvedTarget;

    fn ip(state: PublicIpState, on: Option<&str>, tags: &BTreeMap<String, String>) -> PublicIp {
        PublicIp::for_test(state, on, tags.clone())
    }

    fn to(id: &str) -> Target {
        Target::PrivateIp(ResolvedTarget {
            private_ip_id: id.into(),
            private_ip_address: "10.0.65.3".into(),
            pod: None,
            subnet_id: None,
            primary: false,
        })
    }

    fn tags() -> BTreeMap<String, String> {
        BTreeMap::from([("k".to_string(), "v".to_string())])
    }

    #[test]
    fn allocates_and_assigns_in_one_step_when_the_target_is_known() {
        assert_eq!(
            next_step(None, &to("p1"), &tags()),
            Step::Allocate {
                assign_to: Some("p1".into())
            }
        );
        assert_eq!(
            next_step(None, &Target::Unassigned, &tags()),
            Step::Allocate { assign_to: None }
        );
        let absent = Target::Absent {
            reason: "PodNotFound",
            message: String::new(),
        };
        assert_eq!(
            next_step(None, &absent, &tags()),
            Step::Allocate { assign_to: None }
        );
    }

    #[test]
    fn waits_while_oci_is_transitioning() {
        for s in [
            PublicIpState::Provisioning,
            PublicIpState::Assigning,
            PublicIpState::Unassigning,
            PublicIpState::Terminating,
        ] {
            assert_eq!(
                next_step(Some(&ip(s, None, &tags())), &to("p1"), &tags()),
                Step::Wait,
                "{s:?}"
            );
        }
    }

    #[test]
    fn assigns_moves_and_unassigns() {
        let free = ip(PublicIpState::Available, None, &tags());
        assert_eq!(
            next_step(Some(&free), &to("p1"), &tags()),
            Step::Assign {
                private_ip_id: "p1".into()
            }
        );
        let on_p1 = ip(PublicIpState::Assigned, Some("p1"), &tags());
        assert_eq!(
            next_step(Some(&on_p1), &to("p2"), &tags()),
            Step::Assign {
                private_ip_id: "p2".into()
            }
        );
        assert_eq!(
            next_step(Some(&on_p1), &Target::Unassigned, &tags()),
            Step::Unassign
        );
        let gone = Target::Absent {
            reason: "PodNotFound",
            message: String::new(),
        };
        assert_eq!(
            next_step(Some(&on_p1), &gone, &tags()),
            Step::Unassign,
            "a vanished pod's IP is unassigned"
        );
        let refused = Target::Refused {
            reason: "TargetHasPublicIP",
            message: String::new(),
        };
        assert_eq!(next_step(Some(&on_p1), &refused, &tags()), Step::Unassign);
        assert_eq!(
            next_step(Some(&free), &Target::Unassigned, &tags()),
            Step::Done
        );
    }

    #[test]
    fn in_desired_state_needs_nothing_and_tag_drift_is_put_back() {
        let on_p1 = ip(PublicIpState::Assigned, Some("p1"), &tags());
        assert_eq!(next_step(Some(&on_p1), &to("p1"), &tags()), Step::Done);
        let drifted = ip(PublicIpState::Assigned, Some("p1"), &BTreeMap::new());
        assert_eq!(
            next_step(Some(&drifted), &to("p1"), &tags()),
            Step::Retag { tags: tags() }
        );
    }

    #[test]
    fn state_names_what_was_seen() {
        assert_eq!(state_of(None, &to("p1")), State::Allocating);
        assert_eq!(
            state_of(
                Some(&ip(PublicIpState::Available, None, &tags())),
                &to("p1")
            ),
            State::Allocated
        );
        assert_eq!(
            state_of(
                Some(&ip(PublicIpState::Assigned, Some("p1"), &tags())),
                &to("p1")
            ),
            State::Assigned
        );
        assert_eq!(
            state_of(
                Some(&ip(PublicIpState::Assigned, Some("p0"), &tags())),
                &to("p1")
            ),
            State::Assigning
        );
        assert_eq!(
            state_of(
                Some(&ip(PublicIpState::Assigning, None, &tags())),
                &to("p1")
            ),
            State::Assigning
        );
    }
}
