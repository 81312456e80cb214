//! Every branch of a pass's decisions, without a cluster or OCI: each test
//! builds what a pass observed and checks what it decides and concludes.

mod hold;
mod outcome;
mod steps;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::ownership::Owner;
use super::tenancy::{PodFacts, TargetFacts, Tenancy};
use super::{
    Conclusion, Decision, Failure, Gate, Observation, Plan, PublicIpSeen, ResolvedTarget, Target,
    Timing, decide,
};
use crate::api::conditions::{self, ALLOCATED, ASSIGNED, READY};
use crate::api::crd::{ReservedIPSpec, ReservedIPStatus, State};
use crate::oci::{PublicIp, PublicIpState};

const ME: Owner<'static> = Owner {
    cluster: "c1",
    namespace: "team-a",
    name: "web",
    uid: "u1",
};
const COMPARTMENT: &str = "ocid1.compartment.oc1..c";
const TIMING: Timing = Timing {
    poll: Duration::from_secs(2),
    resync: Duration::from_secs(600),
    missing_grace: Duration::from_secs(120),
};

/// What a pass observed, owned, so tests can change one thing at a time.
struct Case {
    spec: ReservedIPSpec,
    status: ReservedIPStatus,
    seen: PublicIpSeen,
    target: Option<Result<Target, Failure>>,
    policy: Option<Result<Gate, String>>,
    tenancy: Tenancy,
    now: Timestamp,
}

impl Case {
    /// A new ReservedIP without assignment, nothing observed yet.
    fn new() -> Self {
        Self {
            spec: ReservedIPSpec::default(),
            status: ReservedIPStatus::default(),
            seen: PublicIpSeen::Nothing,
            target: Some(Ok(Target::Unassigned)),
            policy: Some(Ok(Gate::default())),
            // The target of these cases is a pod of the ReservedIP's namespace.
            tenancy: Tenancy {
                facts: TargetFacts {
                    pod: Some(PodFacts {
                        namespace: ME.namespace.into(),
                        host_network: false,
                    }),
                    pods_at_address: vec![],
                    node: false,
                },
                ..Tenancy::default()
            },
            now: Timestamp::now(),
        }
    }

    /// Status names `ip`, and the pass found it as `how`.
    fn holding(ip: PublicIp, how: super::How) -> Self {
        let mut case = Self::new();
        case.status.public_ip_id = Some(ip.id.clone());
        case.status.public_ip_address = ip.ip_address.clone();
        case.seen = PublicIpSeen::Found { ip, how };
        case
    }

    fn with_pod_target(mut self) -> Self {
        self.target = Some(Ok(pod_target("p1")));
        self
    }

    fn obs(&self) -> Observation<'_> {
        Observation {
            owner: ME,
            compartment_id: COMPARTMENT,
            spec: &self.spec,
            generation: Some(3),
            status: self.status.clone(),
            public_ip: self.seen.clone(),
            target: self.target.clone(),
            policy: self.policy.clone(),
            tenancy: self.tenancy.clone(),
            timing: TIMING,
            now: self.now,
            new_token: "new-token".into(),
        }
    }

    fn decide(&self) -> Decision {
        decide(&self.obs())
    }

    fn conclusion(&self) -> Conclusion {
        match self.decide() {
            Decision::Conclude(c) => c,
            other => panic!("expected a conclusion without a call, got {other:?}"),
        }
    }

    fn plan(&self) -> Plan {
        match self.decide() {
            Decision::Act(plan) => plan,
            other => panic!("expected a plan, got {other:?}"),
        }
    }
}

fn pod_target(private_ip: &str) -> Target {
    Target::PrivateIp(ResolvedTarget {
        private_ip_id: private_ip.into(),
        private_ip_address: "10.0.65.3".into(),
        pod: Some(("web-0".into(), "pod-uid".into())),
        subnet_id: None,
        primary: false,
    })
}

/// A reserved IP in our compartment carrying `tags`, in `state`, on `on`.
fn ip_tagged(state: PublicIpState, on: Option<&str>, tags: BTreeMap<String, String>) -> PublicIp {
    let mut ip = PublicIp::for_test(state, on, tags);
    ip.compartment_id = Some(COMPARTMENT.into());
    ip.etag = Some("etag-1".into());
    ip
}

/// Our IP with exactly the tags the pass wants (so nothing to retag).
fn ours(state: PublicIpState, on: Option<&str>) -> PublicIp {
    ip_tagged(state, on, ME.desired_tags(&BTreeMap::new(), None))
}

fn cond<'a>(status: &'a ReservedIPStatus, type_: &str) -> (&'a str, &'a str) {
    let c = conditions::get(&status.conditions, type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", status.conditions));
    (c.status.as_str(), c.reason.as_str())
}

fn failure(reason: &str, code: &str, conflict: bool) -> Failure {
    Failure {
        reason: reason.into(),
        code: Some(code.into()),
        conflict,
        message: format!("OCI answered {code} (opc-request-id: r1)"),
    }
}

#[test]
fn ready_follows_allocated_and_assigned() {
    let done = Case::holding(ours(PublicIpState::Assigned, Some("p1")), super::How::Read)
        .with_pod_target()
        .plan();
    let answer = done.observed.clone();
    let c = super::conclude(done, super::Outcome::Answered(answer));
    assert_eq!(c.status.state, Some(State::Assigned));
    assert_eq!(cond(&c.status, ALLOCATED), ("True", "Allocated"));
    assert_eq!(cond(&c.status, ASSIGNED), ("True", "Assigned"));
    assert_eq!(cond(&c.status, READY), ("True", "Assigned"));

    let unassigned = Case::holding(ours(PublicIpState::Available, None), super::How::Read).plan();
    let answer = unassigned.observed.clone();
    let c = super::conclude(unassigned, super::Outcome::Answered(answer));
    assert_eq!(cond(&c.status, ASSIGNED), ("False", "NoAssignment"));
    assert_eq!(
        cond(&c.status, READY),
        ("True", "Allocated"),
        "no assignment wanted: allocated is ready"
    );
}
