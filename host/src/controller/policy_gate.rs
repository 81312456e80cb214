//! Applying the loaded WebAssembly policies to one reconcile.
//!
//! Before an IP is allocated the policies may add or enforce tags and choose
//! or deny the pool; before it is assigned they may deny the target. With no
//! policy loaded this costs nothing (no evaluation). What
//! each policy decided is returned for the ReservedIP's status.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::api::crd::{PolicyVerdict, ReservedIP};
use crate::decide::tenancy::TargetFacts;
use crate::decide::{Gate, Target};
use crate::policy::abi::Target as PolicyTarget;
use crate::policy::{
    AllowedPools, EligibilityOutcome, PolicyEngine, PolicyError, PoolOutcome, ReservedIpInput,
    TagOutcome, Verdict,
};

/// Why the policies could not be evaluated (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("evaluating policies: {0}")]
    Policy(#[from] PolicyError),
}

/// Asks the policies about `rip`, in a namespace with `labels`.
/// `allocated` skips pool selection (the pool only matters for a new IP);
/// `pod` is the target pod, if any; `facts` what the cluster says of the
/// target (whose it is).
pub async fn consult(
    engine: &PolicyEngine,
    rip: &ReservedIP,
    labels: BTreeMap<String, String>,
    allocated: bool,
    target: &Target,
    pod: Option<&Pod>,
    facts: &TargetFacts,
) -> Result<Gate, GateError> {
    let mut gate = Gate {
        tags: rip.spec.tags.clone(),
        pool: rip.spec.public_ipv4_pool.clone(),
        ..Gate::default()
    };
    if engine.status().is_empty() {
        return Ok(gate);
    }
    let input = ReservedIpInput::new(rip, labels)?;
    // The pool only matters for a new IP, and not for one named by address.
    let pools =
        (!allocated && rip.spec.public_ipv4_address.is_none()).then_some(&AllowedPools::Any);
    let policy_target = match target {
        Target::PrivateIp(t) => Some(match (pod, &t.pod) {
            (Some(pod), Some(_)) => {
                pod_target(pod, facts.pod.as_ref().is_some_and(|p| p.host_network))
            }
            _ => PolicyTarget::PrivateIp {
                address: Some(t.private_ip_address.clone()),
                id: Some(t.private_ip_id.clone()),
                subnet_id: t.subnet_id.clone(),
                pod_namespace: facts.pods_at_address.first().cloned(),
                node_ip: t.primary,
            },
        }),
        _ => None,
    };
    let decisions = engine
        .decide_all(&input, pools, policy_target.as_ref())
        .await?;

    add_verdicts(&mut gate.verdicts, "tagDefaults", &decisions.tags.verdicts);
    match decisions.tags.outcome {
        TagOutcome::Tags(t) => gate.tags = t,
        TagOutcome::Deny(d) => gate.refused = Some((d.policy, d.reason)),
    }
    if let Some(pool) = decisions.pool {
        add_verdicts(&mut gate.verdicts, "pool", &pool.verdicts);
        match pool.outcome {
            PoolOutcome::Keep => {}
            PoolOutcome::Use(p) => gate.pool = Some(p),
            PoolOutcome::Deny(d) => gate.refused = gate.refused.or(Some((d.policy, d.reason))),
        }
    }
    if let Some(eligibility) = decisions.eligibility {
        add_verdicts(&mut gate.verdicts, "eligibility", &eligibility.verdicts);
        if let EligibilityOutcome::Deny(d) = eligibility.outcome {
            gate.target_refused = Some((d.policy, d.reason));
        }
    }
    Ok(gate)
}

/// A pod as the policies see it (also what `policy eval` builds from a Pod
/// manifest). `host_network` is what the cluster says of the pod.
pub fn pod_target(pod: &Pod, host_network: bool) -> PolicyTarget {
    PolicyTarget::Pod {
        name: pod.name_any(),
        labels: pod.labels().clone(),
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        host_network,
    }
}

fn add_verdicts(out: &mut Vec<PolicyVerdict>, decision: &str, verdicts: &[Verdict]) {
    out.extend(verdicts.iter().map(|v| {
        PolicyVerdict {
            decision: decision.to_string(),
            policy: v.policy.clone(),
            version: v.version.clone(),
            outcome: serde_json::to_value(v.outcome)
                .ok()
                .and_then(|o| o.as_str().map(str::to_string))
                .unwrap_or_default(),
            message: v.message.clone(),
            audit: v.audit,
        }
    }));
}
