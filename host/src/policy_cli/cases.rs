//! The input of `policy eval` and the cases of `policy test`: what a decision
//! is asked about, the decisions the operator's engine makes for it, and how
//! a case's expectations are compared with them (pure).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::{Value, json};

use super::PolicyCliError;
use crate::api::crd::ReservedIP;
use crate::controller::policy_gate::pod_target;
use crate::policy::abi::Target;
use crate::policy::{
    AllowedPools, Decision, Decisions, Denial, EligibilityOutcome, PolicyEngine, PoolOutcome,
    ReservedIpInput, TagOutcome, Verdict, VerdictOutcome,
};

/// What the policies are asked about: `policy eval --input`, and each test
/// case's `input`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    /// The ReservedIP manifest (its namespace defaults to the namespace's name).
    #[serde(rename = "reservedIP")]
    pub reserved_ip: ReservedIP,
    /// The ReservedIP's namespace: its name and labels.
    #[serde(default)]
    pub namespace: Option<NamespaceInput>,
    /// The namespace's labels (shorthand for `namespace.labels`).
    #[serde(default)]
    pub namespace_labels: BTreeMap<String, String>,
    /// The pod the ReservedIP would be assigned to (a Pod manifest).
    #[serde(default)]
    pub pod: Option<Pod>,
    /// The target as the policy ABI describes it (instead of `pod`).
    #[serde(default)]
    pub target: Option<Target>,
    /// Pools a policy may choose; default any.
    #[serde(default)]
    pub allowed_pools: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Asks `engine` every decision the operator would ask for `input`.
pub async fn decide(engine: &PolicyEngine, input: &Input) -> Result<Decisions, PolicyCliError> {
    let mut rip = input.reserved_ip.clone();
    let namespace = input.namespace.clone().unwrap_or_default();
    if rip.metadata.namespace.is_none() {
        rip.metadata.namespace = Some(namespace.name.clone().unwrap_or_else(|| "default".into()));
    }
    let mut labels = input.namespace_labels.clone();
    labels.extend(namespace.labels);
    let req =
        ReservedIpInput::new(&rip, labels).map_err(|e| PolicyCliError::Input(e.to_string()))?;
    // A pool is chosen for any ReservedIP not named by its address (the
    // input does not say whether it holds an IP already).
    let pools = match (&rip.spec.public_ipv4_address, &input.allowed_pools) {
        (Some(_), _) => None,
        (None, Some(p)) => Some(AllowedPools::Only(p.clone())),
        (None, None) => Some(AllowedPools::Any),
    };
    let target = match (&input.pod, &input.target) {
        (Some(_), Some(_)) => {
            return Err(PolicyCliError::Input(
                "give `pod` or `target`, not both".into(),
            ));
        }
        (Some(pod), None) => Some(pod_target(
            pod,
            pod.spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false),
        )),
        (None, target) => target.clone(),
    };
    engine
        .decide_all(&req, pools.as_ref(), target.as_ref())
        .await
        .map_err(|e| PolicyCliError::Failed(e.to_string()))
}

impl Decisions {
    /// The decisions as `policy eval` prints them.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "tagDefaults": with_verdicts(&self.tags, match &self.tags.outcome {
                TagOutcome::Tags(t) => json!({ "tags": t }),
                TagOutcome::Deny(d) => json!({ "denied": d }),
            }),
        });
        if let Some(pool) = &self.pool {
            out["pool"] = with_verdicts(
                pool,
                match &pool.outcome {
                    PoolOutcome::Keep => json!({ "keep": true }),
                    PoolOutcome::Use(p) => json!({ "use": p }),
                    PoolOutcome::Deny(d) => json!({ "denied": d }),
                },
            );
        }
        if let Some(e) = &self.eligibility {
            out["eligibility"] = with_verdicts(
                e,
                match &e.outcome {
                    EligibilityOutcome::Allow => json!({ "allowed": true }),
                    EligibilityOutcome::Deny(d) => json!({ "denied": d }),
                },
            );
        }
        out
    }

    fn denials(&self) -> Vec<&Denial> {
        let mut out = Vec::new();
        if let TagOutcome::Deny(d) = &self.tags.outcome {
            out.push(d);
        }
        if let Some(Decision {
            outcome: PoolOutcome::Deny(d),
            ..
        }) = &self.pool
        {
            out.push(d);
        }
        if let Some(Decision {
            outcome: EligibilityOutcome::Deny(d),
            ..
        }) = &self.eligibility
        {
            out.push(d);
        }
        out
    }

    fn verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.tags
            .verdicts
            .iter()
            .chain(self.pool.iter().flat_map(|d| &d.verdicts))
            .chain(self.eligibility.iter().flat_map(|d| &d.verdicts))
    }
}

fn with_verdicts<O>(d: &Decision<O>, outcome: Value) -> Value {
    let verdicts: Vec<Value> = d
        .verdicts
        .iter()
        .map(|v| {
            let mut out = json!({ "policy": v.policy, "version": v.version, "outcome": v.outcome, "message": v.message });
            if v.audit {
                out["audit"] = json!(true);
            }
            out
        })
        .collect();
    json!({ "outcome": outcome, "verdicts": verdicts })
}

/// What a test case expects; every field is optional and only what is given
/// is checked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// The complete tag set of the public IP (user tags included).
    pub tags: Option<BTreeMap<String, String>>,
    /// Tags the public IP must carry, among others.
    pub tags_include: Option<BTreeMap<String, String>>,
    /// `keep`, `deny`, or the pool OCID chosen.
    pub pool: Option<String>,
    /// `allow` or `deny`.
    pub eligibility: Option<String>,
    /// The policy that denied (any decision).
    pub denied_by: Option<String>,
    /// Text the deny reason contains.
    pub reason_contains: Option<String>,
    /// The audited policies that would have denied (exactly these).
    pub audit_denials: Option<Vec<String>>,
}

/// Every way `decisions` differs from `expect`; empty when the case passes.
pub fn mismatches(expect: &Expect, decisions: &Decisions) -> Vec<String> {
    let mut out = Vec::new();
    let tags = match &decisions.tags.outcome {
        TagOutcome::Tags(t) => Some(t),
        TagOutcome::Deny(_) => None,
    };
    if let Some(want) = &expect.tags {
        match tags {
            Some(got) if got == want => {}
            Some(got) => out.push(format!("tags: expected {want:?}, got {got:?}")),
            None => out.push(format!(
                "tags: expected {want:?}, but tag defaults were denied"
            )),
        }
    }
    if let Some(want) = &expect.tags_include {
        match tags {
            Some(got) => {
                for (k, v) in want {
                    if got.get(k) != Some(v) {
                        out.push(format!(
                            "tags: expected {k}={v}, got {}",
                            got.get(k)
                                .map_or("no such tag".to_string(), |g| format!("{k}={g}"))
                        ));
                    }
                }
            }
            None => out.push("tags: expected tags, but tag defaults were denied".into()),
        }
    }
    if let Some(want) = &expect.pool {
        let got = match decisions.pool.as_ref().map(|d| &d.outcome) {
            None => "not asked (the ReservedIP names its address)".to_string(),
            Some(PoolOutcome::Keep) => "keep".into(),
            Some(PoolOutcome::Deny(_)) => "deny".into(),
            Some(PoolOutcome::Use(p)) => p.clone(),
        };
        if *want != got {
            out.push(format!("pool: expected {want}, got {got}"));
        }
    }
    if let Some(want) = &expect.eligibility {
        let got = match decisions.eligibility.as_ref().map(|d| &d.outcome) {
            None => "not asked (no pod or target)",
            Some(EligibilityOutcome::Allow) => "allow",
            Some(EligibilityOutcome::Deny(_)) => "deny",
        };
        if want != got {
            out.push(format!("eligibility: expected {want}, got {got}"));
        }
    }
    let denials = decisions.denials();
    if let Some(want) = &expect.denied_by
        && !denials.iter().any(|d| d.policy == *want)
    {
        out.push(format!(
            "expected a denial by {want}, got {}",
            describe(&denials)
        ));
    }
    if let Some(want) = &expect.reason_contains
        && !denials.iter().any(|d| d.reason.contains(want.as_str()))
    {
        out.push(format!(
            "expected a deny reason containing {want:?}, got {}",
            describe(&denials)
        ));
    }
    if let Some(want) = &expect.audit_denials {
        let mut got: Vec<&str> = decisions
            .verdicts()
            .filter(|v| {
                v.audit
                    && matches!(
                        v.outcome,
                        VerdictOutcome::Deny | VerdictOutcome::FailedClosed
                    )
            })
            .map(|v| v.policy.as_str())
            .collect();
        got.sort_unstable();
        got.dedup();
        let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
        want.sort_unstable();
        if got != want {
            out.push(format!("audit denials: expected {want:?}, got {got:?}"));
        }
    }
    out
}

fn describe(denials: &[&Denial]) -> String {
    if denials.is_empty() {
        return "no denial".into();
    }
    denials
        .iter()
        .map(|d| format!("{}: {}", d.policy, d.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(policy: &str, outcome: VerdictOutcome, audit: bool) -> Verdict {
        Verdict {
            policy: policy.into(),
            version: "v".into(),
            outcome,
            message: String::new(),
            audit,
        }
    }

    fn decisions() -> Decisions {
        Decisions {
            tags: Decision {
                outcome: TagOutcome::Tags(BTreeMap::from([
                    ("team".into(), "payments".into()),
                    ("owner".into(), "me".into()),
                ])),
                verdicts: vec![verdict("audited", VerdictOutcome::FailedClosed, true)],
            },
            pool: Some(Decision {
                outcome: PoolOutcome::Use("ocid1.publicippool.oc1..p".into()),
                verdicts: vec![],
            }),
            eligibility: Some(Decision {
                outcome: EligibilityOutcome::Deny(Denial {
                    policy: "labelled".into(),
                    reason: "pod lacks label public-ip".into(),
                }),
                verdicts: vec![verdict("labelled", VerdictOutcome::Deny, false)],
            }),
        }
    }

    #[test]
    fn matching_expectations_pass() {
        let expect = Expect {
            tags_include: Some(BTreeMap::from([("team".into(), "payments".into())])),
            pool: Some("ocid1.publicippool.oc1..p".into()),
            eligibility: Some("deny".into()),
            denied_by: Some("labelled".into()),
            reason_contains: Some("public-ip".into()),
            audit_denials: Some(vec!["audited".into()]),
            ..Expect::default()
        };
        assert_eq!(mismatches(&expect, &decisions()), Vec::<String>::new());
    }

    #[test]
    fn every_difference_is_named() {
        let expect = Expect {
            tags: Some(BTreeMap::from([("team".into(), "payments".into())])),
            tags_include: Some(BTreeMap::from([("cost".into(), "1".into())])),
            pool: Some("keep".into()),
            eligibility: Some("allow".into()),
            denied_by: Some("other".into()),
            reason_contains: Some("quota".into()),
            audit_denials: Some(vec![]),
        };
        let found = mismatches(&expect, &decisions());
        assert_eq!(found.len(), 7, "{found:#?}");
        assert!(found[1].contains("cost=1, got no such tag"), "{}", found[1]);
        assert!(
            found[2].contains("expected keep, got ocid1"),
            "{}",
            found[2]
        );
        assert!(
            found[4].contains("labelled: pod lacks label"),
            "{}",
            found[4]
        );
    }
}
