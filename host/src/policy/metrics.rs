//! Prometheus metrics per policy: evaluations, denials, failures by kind,
//! evaluation latency, and refused loads. Policies are few and named by the
//! platform team, so a label per policy stays a small set.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::abi::DecisionKind;
use super::error::{EvalError, LoadError};
use super::source::Mode;

/// Evaluation latency buckets, in seconds: an evaluation takes tens of
/// microseconds; the top buckets catch policies near their deadline.
const LATENCY_BUCKETS: [f64; 12] = [
    10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 10e-3, 50e-3, 100e-3, 250e-3,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvalLabels {
    policy: String,
    decision: &'static str,
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    policy: String,
    decision: &'static str,
    mode: &'static str,
    /// deadline, memory, trap, output, invalid or input.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PolicyLabels {
    policy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    policy: String,
    /// digest, signature, module, settings or config.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CompileLabels {
    /// `compiled` (by cranelift) or `artifact` (from the artifact cache).
    source: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The policy engine's metrics; cheap to clone (clones share the counts).
#[derive(Clone, Debug)]
pub struct PolicyMetrics {
    evaluations: Family<EvalLabels, Counter>,
    denials: Family<EvalLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    latency: HistogramFamily<PolicyLabels>,
    refusals: Family<RefusalLabels, Counter>,
    modules: Family<CompileLabels, Counter>,
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        let metrics = PolicyMetrics {
            evaluations: Family::default(),
            denials: Family::default(),
            failures: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            refusals: Family::default(),
            modules: Family::default(),
        };
        // The one family whose labels are known in advance starts at zero;
        // the others are per policy, and policies are not known yet.
        for source in ["compiled", "artifact"] {
            let _ = metrics.modules.get_or_create(&CompileLabels { source });
        }
        metrics
    }
}

/// What one evaluation came to, for the counters.
pub(crate) enum Counted<'a> {
    Answered { denied: bool },
    Failed(&'a EvalError),
}

impl PolicyMetrics {
    /// Registers every family under `registry` (already prefixed).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "policy_evaluations",
            "Policy evaluations by policy, decision (tagDefaults, selectPool, eligibility) and mode (enforce, audit)",
            self.evaluations.clone(),
        );
        registry.register(
            "policy_denials",
            "Evaluations that denied (in audit mode: would have denied), by policy, decision and mode",
            self.denials.clone(),
        );
        registry.register(
            "policy_failures",
            "Evaluations that gave no usable answer, by policy, decision, mode and reason (deadline, memory, trap, output, invalid, input)",
            self.failures.clone(),
        );
        registry.register_with_unit(
            "policy_evaluation_duration",
            "Time of one policy evaluation (instantiate, call, parse, check), by policy",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "policy_load_refusals",
            "Policy configurations refused at load (the last good version stays), by policy and reason (digest, signature, module, settings, config)",
            self.refusals.clone(),
        );
        registry.register(
            "policy_modules_prepared",
            "Distinct policy modules made ready to run, by source: compiled, or artifact (compiled before, kept in --policy-cache-dir)",
            self.modules.clone(),
        );
    }

    pub(crate) fn prepared(&self, from_artifact: bool) {
        let source = if from_artifact {
            "artifact"
        } else {
            "compiled"
        };
        self.modules.get_or_create(&CompileLabels { source }).inc();
    }

    /// Modules compiled and modules taken from artifacts so far.
    pub fn modules_prepared(&self) -> (u64, u64) {
        let count = |source| self.modules.get_or_create(&CompileLabels { source }).get();
        (count("compiled"), count("artifact"))
    }

    pub(crate) fn evaluated(
        &self,
        policy: &str,
        kind: DecisionKind,
        mode: Mode,
        took: Duration,
        counted: Counted<'_>,
    ) {
        let labels = EvalLabels {
            policy: policy.to_string(),
            decision: decision_label(kind),
            mode: mode_label(mode),
        };
        self.evaluations.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&PolicyLabels {
                policy: policy.to_string(),
            })
            .observe(took.as_secs_f64());
        match counted {
            Counted::Answered { denied: true } => {
                self.denials.get_or_create(&labels).inc();
            }
            Counted::Answered { denied: false } => {}
            Counted::Failed(err) => {
                self.failures
                    .get_or_create(&FailureLabels {
                        policy: labels.policy,
                        decision: labels.decision,
                        mode: labels.mode,
                        reason: failure_reason(err),
                    })
                    .inc();
            }
        }
    }

    /// Starts a loaded policy's evaluation and denial series at zero, for
    /// each decision it answers, so `rate()` and alerts work from its load.
    pub(crate) fn loaded(&self, policy: &str, answers: impl Fn(DecisionKind) -> bool, mode: Mode) {
        for kind in DecisionKind::ALL {
            if kind == DecisionKind::ValidateSettings || !answers(kind) {
                continue;
            }
            let labels = EvalLabels {
                policy: policy.to_string(),
                decision: decision_label(kind),
                mode: mode_label(mode),
            };
            let _ = self.evaluations.get_or_create(&labels);
            let _ = self.denials.get_or_create(&labels);
        }
    }

    pub(crate) fn refused(&self, policy: &str, err: &LoadError) {
        self.refusals
            .get_or_create(&RefusalLabels {
                policy: policy.to_string(),
                reason: refusal_reason(err),
            })
            .inc();
    }
}

fn decision_label(kind: DecisionKind) -> &'static str {
    match kind {
        DecisionKind::ValidateSettings => "validateSettings",
        DecisionKind::TagDefaults => "tagDefaults",
        DecisionKind::SelectPool => "selectPool",
        DecisionKind::Eligibility => "eligibility",
    }
}

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Audit => "audit",
    }
}

fn failure_reason(err: &EvalError) -> &'static str {
    match err {
        EvalError::Timeout { .. } => "deadline",
        EvalError::OutOfMemory { .. } => "memory",
        EvalError::Trap(_) | EvalError::OutOfBounds { .. } => "trap",
        EvalError::OutputTooLarge { .. } | EvalError::Malformed(_) | EvalError::Reported(_) => {
            "output"
        }
        EvalError::Invalid(_) => "invalid",
        EvalError::InputTooLarge { .. } => "input",
    }
}

fn refusal_reason(err: &LoadError) -> &'static str {
    match err {
        LoadError::DigestMismatch { .. } => "digest",
        LoadError::Signature(_) => "signature",
        LoadError::Settings(_) => "settings",
        LoadError::Config(_) | LoadError::DuplicateName { .. } => "config",
        LoadError::NoModule
        | LoadError::TwoModules
        | LoadError::TooLarge { .. }
        | LoadError::Gzip(_)
        | LoadError::DecompressedTooLarge { .. }
        | LoadError::NotWasm
        | LoadError::Compile(_)
        | LoadError::Import { .. }
        | LoadError::MissingExport { .. }
        | LoadError::MemoryTooLarge { .. }
        | LoadError::AbiVersion { .. }
        | LoadError::Start(_) => "module",
    }
}
