//! How the answers of several policies combine into one decision. Pure: fed
//! one policy's result at a time, in evaluation order, by the engine.
//!
//! - Tag defaults: `defaults` and `enforced` of every policy are layered in
//!   order (a later policy overrides an earlier one for the same key); the
//!   final tags are defaults, overridden by the user's tags, overridden by the
//!   enforced tags. A policy whose tags would take the total past OCI's tag
//!   budget fails (its failure mode applies).
//! - Pool: a deny stops and denies; the first policy that chooses a pool
//!   decides it, later different choices are recorded as ignored; no choice
//!   keeps the spec's pool.
//! - Eligibility: a deny stops and denies; otherwise allowed.
//! - A failed policy (trap, timeout, bad output...) with failure mode `deny`
//!   stops and denies naming the policy; with `allow` it is skipped.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use serde::{Deserialize, Serialize};

use k8s_oci_operator_policy_sdk::checks;

use super::abi::{EligibilityResponse, PoolResponse, TagDefaultsResponse};
use super::error::EvalError;
use super::source::FailureMode;

/// What one policy contributed to a decision, for status and events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The policy's name.
    pub policy: String,
    /// First 12 hex digits of the module's SHA-256.
    pub version: String,
    /// What it decided.
    pub outcome: VerdictOutcome,
    /// Details: tags set, pool chosen, deny reason, or the failure.
    pub message: String,
    /// From a policy in audit mode: what it would have decided, not applied.
    pub audit: bool,
}

/// The kind of contribution a policy made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VerdictOutcome {
    /// Tag defaults / enforced tags applied.
    Tags,
    /// Pool: no opinion.
    Keep,
    /// Pool: this policy's choice was used.
    Choose,
    /// Pool: a choice that lost to an earlier policy's.
    Ignored,
    /// Eligibility: allowed.
    Allow,
    /// Denied (pool or eligibility or tags via a failure).
    Deny,
    /// The policy failed and its failure mode `allow` skipped it.
    FailedOpen,
    /// The policy failed and its failure mode `deny` denied the decision.
    FailedClosed,
}

/// A denied decision: which policy, and why (shown to the user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Denial {
    pub policy: String,
    pub reason: String,
}

/// The result of one decision and what each policy contributed, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<O> {
    pub outcome: O,
    pub verdicts: Vec<Verdict>,
}

/// Outcome of [`PolicyEngine::tag_defaults`](super::PolicyEngine::tag_defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagOutcome {
    /// The complete tag set to put on the public IP (user tags included).
    Tags(BTreeMap<String, String>),
    Deny(Denial),
}

/// Outcome of [`PolicyEngine::select_pool`](super::PolicyEngine::select_pool).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolOutcome {
    /// Use the spec's pool, or the operator's default when it names none.
    Keep,
    /// Allocate from this pool.
    Use(String),
    Deny(Denial),
}

/// Outcome of [`PolicyEngine::eligibility`](super::PolicyEngine::eligibility).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EligibilityOutcome {
    Allow,
    Deny(Denial),
}

/// The identity of the policy whose result is being composed.
pub(crate) struct PolicyRef<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub failure_mode: FailureMode,
}

impl PolicyRef<'_> {
    fn verdict(&self, outcome: VerdictOutcome, message: impl Into<String>) -> Verdict {
        Verdict {
            policy: self.name.to_string(),
            version: self.version.to_string(),
            outcome,
            message: message.into(),
            audit: false,
        }
    }

    fn denial(&self, reason: impl Into<String>) -> Denial {
        Denial {
            policy: self.name.to_string(),
            reason: reason.into(),
        }
    }
}

/// Composes the results of one decision kind.
/// Clone: a policy in audit mode is composed into a copy, to record what it
/// would have decided without changing the decision.
pub(crate) trait Composer: Clone {
    type Answer: serde::de::DeserializeOwned;
    type Outcome;
    /// Checks an answer before it counts (OCI limits, allowed pools...).
    fn validate(&self, answer: &Self::Answer) -> Result<(), String>;
    /// Whether an answer denies (for metrics).
    fn denies(answer: &Self::Answer) -> bool;
    /// The verdict of the last policy pushed.
    fn last_verdict(&self) -> Option<&Verdict>;
    /// Takes one policy's result; `Break` ends the decision early.
    fn push(
        &mut self,
        policy: &PolicyRef<'_>,
        result: Result<Self::Answer, EvalError>,
    ) -> ControlFlow<()>;
    fn finish(self) -> Decision<Self::Outcome>;
}

/// Shared handling of a failed policy; `Some(denial)` when it fails closed.
fn failed(policy: &PolicyRef<'_>, err: &EvalError, verdicts: &mut Vec<Verdict>) -> Option<Denial> {
    let message = format!("policy {} failed: {err}", policy.name);
    match policy.failure_mode {
        FailureMode::Allow => {
            verdicts.push(policy.verdict(VerdictOutcome::FailedOpen, message));
            None
        }
        FailureMode::Deny => {
            verdicts.push(policy.verdict(VerdictOutcome::FailedClosed, message.clone()));
            Some(policy.denial(message))
        }
    }
}

#[derive(Clone)]
pub(crate) struct TagComposer {
    user: BTreeMap<String, String>,
    defaults: BTreeMap<String, String>,
    enforced: BTreeMap<String, String>,
    denial: Option<Denial>,
    verdicts: Vec<Verdict>,
}

impl TagComposer {
    pub(crate) fn new(user: BTreeMap<String, String>) -> Self {
        TagComposer {
            user,
            defaults: BTreeMap::new(),
            enforced: BTreeMap::new(),
            denial: None,
            verdicts: Vec::new(),
        }
    }

    fn merged(&self) -> BTreeMap<String, String> {
        let mut tags = self.defaults.clone();
        tags.extend(self.user.iter().map(|(k, v)| (k.clone(), v.clone())));
        tags.extend(self.enforced.iter().map(|(k, v)| (k.clone(), v.clone())));
        tags
    }
}

impl Composer for TagComposer {
    type Answer = TagDefaultsResponse;
    type Outcome = TagOutcome;

    fn denies(_: &TagDefaultsResponse) -> bool {
        false
    }

    fn last_verdict(&self) -> Option<&Verdict> {
        self.verdicts.last()
    }

    fn validate(&self, answer: &TagDefaultsResponse) -> Result<(), String> {
        super::validate::tag_defaults(answer)?;
        // The budget counts the user's tags, the earlier policies' and this answer's.
        checks::tag_budget([
            &self.user,
            &self.defaults,
            &self.enforced,
            &answer.defaults,
            &answer.enforced,
        ])
        .map_err(|e| e.to_string())
    }

    fn push(
        &mut self,
        policy: &PolicyRef<'_>,
        result: Result<TagDefaultsResponse, EvalError>,
    ) -> ControlFlow<()> {
        match result {
            Ok(answer) => {
                let describe =
                    |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>().join(", ");
                let message = format!(
                    "defaults: [{}]; enforced: [{}]",
                    describe(&answer.defaults),
                    describe(&answer.enforced)
                );
                self.defaults.extend(answer.defaults);
                self.enforced.extend(answer.enforced);
                self.verdicts
                    .push(policy.verdict(VerdictOutcome::Tags, message));
                ControlFlow::Continue(())
            }
            Err(err) => match failed(policy, &err, &mut self.verdicts) {
                Some(denial) => {
                    self.denial = Some(denial);
                    ControlFlow::Break(())
                }
                None => ControlFlow::Continue(()),
            },
        }
    }

    fn finish(self) -> Decision<TagOutcome> {
        let outcome = match &self.denial {
            Some(denial) => TagOutcome::Deny(denial.clone()),
            None => TagOutcome::Tags(self.merged()),
        };
        Decision {
            outcome,
            verdicts: self.verdicts,
        }
    }
}

#[derive(Clone)]
pub(crate) struct PoolComposer {
    spec_pool: Option<String>,
    allowed: super::validate::AllowedPools,
    chosen: Option<String>,
    denial: Option<Denial>,
    verdicts: Vec<Verdict>,
}

impl PoolComposer {
    pub(crate) fn new(spec_pool: Option<String>, allowed: super::validate::AllowedPools) -> Self {
        PoolComposer {
            spec_pool,
            allowed,
            chosen: None,
            denial: None,
            verdicts: Vec::new(),
        }
    }
}

impl Composer for PoolComposer {
    type Answer = PoolResponse;
    type Outcome = PoolOutcome;

    fn denies(answer: &PoolResponse) -> bool {
        matches!(answer, PoolResponse::Deny { .. })
    }

    fn last_verdict(&self) -> Option<&Verdict> {
        self.verdicts.last()
    }

    fn validate(&self, answer: &PoolResponse) -> Result<(), String> {
        super::validate::pool(answer, self.spec_pool.as_deref(), &self.allowed)
    }

    fn push(
        &mut self,
        policy: &PolicyRef<'_>,
        result: Result<PoolResponse, EvalError>,
    ) -> ControlFlow<()> {
        match result {
            Ok(PoolResponse::Keep) => {
                self.verdicts
                    .push(policy.verdict(VerdictOutcome::Keep, "no opinion"));
            }
            Ok(PoolResponse::Choose { pool }) => match &self.chosen {
                Some(earlier) if *earlier != pool => {
                    self.verdicts.push(policy.verdict(
                        VerdictOutcome::Ignored,
                        format!("chose {pool}, but an earlier policy chose {earlier}"),
                    ));
                }
                _ => {
                    self.verdicts
                        .push(policy.verdict(VerdictOutcome::Choose, pool.clone()));
                    self.chosen = Some(pool);
                }
            },
            Ok(PoolResponse::Deny { reason }) => {
                self.verdicts
                    .push(policy.verdict(VerdictOutcome::Deny, reason.clone()));
                self.denial = Some(policy.denial(reason));
                return ControlFlow::Break(());
            }
            Err(err) => {
                if let Some(denial) = failed(policy, &err, &mut self.verdicts) {
                    self.denial = Some(denial);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn finish(self) -> Decision<PoolOutcome> {
        let outcome = match (self.denial, self.chosen) {
            (Some(denial), _) => PoolOutcome::Deny(denial),
            (None, Some(pool)) => PoolOutcome::Use(pool),
            (None, None) => PoolOutcome::Keep,
        };
        Decision {
            outcome,
            verdicts: self.verdicts,
        }
    }
}

#[derive(Clone, Default)]
pub(crate) struct EligibilityComposer {
    denial: Option<Denial>,
    verdicts: Vec<Verdict>,
}

impl Composer for EligibilityComposer {
    type Answer = EligibilityResponse;
    type Outcome = EligibilityOutcome;

    fn denies(answer: &EligibilityResponse) -> bool {
        matches!(answer, EligibilityResponse::Deny { .. })
    }

    fn last_verdict(&self) -> Option<&Verdict> {
        self.verdicts.last()
    }

    fn validate(&self, answer: &EligibilityResponse) -> Result<(), String> {
        super::validate::eligibility(answer)
    }

    fn push(
        &mut self,
        policy: &PolicyRef<'_>,
        result: Result<EligibilityResponse, EvalError>,
    ) -> ControlFlow<()> {
        match result {
            Ok(EligibilityResponse::Allow) => {
                self.verdicts
                    .push(policy.verdict(VerdictOutcome::Allow, "allowed"));
                ControlFlow::Continue(())
            }
            Ok(EligibilityResponse::Deny { reason }) => {
                self.verdicts
                    .push(policy.verdict(VerdictOutcome::Deny, reason.clone()));
                self.denial = Some(policy.denial(reason));
                ControlFlow::Break(())
            }
            Err(err) => match failed(policy, &err, &mut self.verdicts) {
                Some(denial) => {
                    self.denial = Some(denial);
                    ControlFlow::Break(())
                }
                None => ControlFlow::Continue(()),
            },
        }
    }

    fn finish(self) -> Decision<EligibilityOutcome> {
        Decision {
            outcome: match self.denial {
                Some(denial) => EligibilityOutcome::Deny(denial),
                None => EligibilityOutcome::Allow,
            },
            verdicts: self.verdicts,
        }
    }
}

#[cfg(test)]
#[path = "tests/compose.rs"]
mod tests;
