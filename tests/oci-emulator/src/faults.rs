//! Injected faults: latency, rate limiting (429), server errors (500/503) and
//! "apply, then drop the connection" (the change happens, no answer arrives).
//!
//! Rules are per operation name (e.g. `CreatePublicIp`); an operation without
//! its own rule uses the `default` rule. A rule is replaced as a whole.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Token bucket parameters: `burst` requests at once, refilled at `perSecond`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// Faults for one operation. Probabilities are 0.0 to 1.0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultRule {
    /// Added to every call before it is handled.
    pub latency_ms: u64,
    /// Calls beyond the bucket get 429 TooManyRequests.
    pub rate_limit: Option<RateLimit>,
    /// 500 InternalServerError, nothing applied.
    pub error500_probability: f64,
    /// 503 ServiceUnavailable, nothing applied.
    pub error503_probability: f64,
    /// Apply the call, then close the connection without answering.
    pub drop_after_apply_probability: f64,
}

/// All fault rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FaultConfig {
    pub default: FaultRule,
    pub operations: BTreeMap<String, FaultRule>,
}

impl FaultConfig {
    pub fn rule_for(&self, operation: &str) -> &FaultRule {
        self.operations.get(operation).unwrap_or(&self.default)
    }
}

/// What to do with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handle it; if `drop_connection`, answer nothing after applying it.
    Proceed {
        drop_connection: bool,
    },
    Throttle,
    Fail500,
    Fail503,
}

/// The decision for one call: wait `latency`, then `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub latency: Duration,
    pub outcome: Outcome,
}

/// Fault rules with their running state (token buckets, random numbers).
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    buckets: HashMap<String, TokenBucket>,
    rng: StdRng,
}

impl Faults {
    /// `random_seed` makes probabilistic faults reproducible.
    pub fn new(config: FaultConfig, random_seed: Option<u64>) -> Self {
        let rng = match random_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            config,
            buckets: HashMap::new(),
            rng,
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Replaces the rules; rate limit buckets start full again.
    pub fn set_config(&mut self, config: FaultConfig) {
        self.config = config;
        self.buckets.clear();
    }

    /// Decides the fate of one call of `operation` at `now`.
    pub fn decide(&mut self, operation: &str, now: Instant) -> Decision {
        let rule = self.config.rule_for(operation).clone();
        let latency = Duration::from_millis(rule.latency_ms);
        if let Some(limit) = rule.rate_limit {
            let bucket = self
                .buckets
                .entry(operation.to_string())
                .or_insert_with(|| TokenBucket::new(limit, now));
            if !bucket.try_take(now) {
                return Decision {
                    latency,
                    outcome: Outcome::Throttle,
                };
            }
        }
        let outcome = if self.chance(rule.error500_probability) {
            Outcome::Fail500
        } else if self.chance(rule.error503_probability) {
            Outcome::Fail503
        } else {
            Outcome::Proceed {
                drop_connection: self.chance(rule.drop_after_apply_probability),
            }
        };
        Decision { latency, outcome }
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.gen_bool(probability.clamp(0.0, 1.0))
    }
}

/// A token bucket: holds up to `burst` tokens, refilled continuously.
#[derive(Debug, Clone)]
struct TokenBucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            limit,
            tokens: limit.burst.max(0.0),
            last: now,
        }
    }

    fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second.max(0.0)).min(self.limit.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_over_time() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(
            RateLimit {
                per_second: 10.0,
                burst: 2.0,
            },
            start,
        );
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        assert!(bucket.try_take(start + Duration::from_millis(100)));
        assert!(!bucket.try_take(start + Duration::from_millis(100)));
    }

    #[test]
    fn rules_apply_per_operation() {
        let mut config = FaultConfig::default();
        config.operations.insert(
            "CreatePublicIp".into(),
            FaultRule {
                error503_probability: 1.0,
                latency_ms: 5,
                ..FaultRule::default()
            },
        );
        let mut faults = Faults::new(config, Some(1));
        let now = Instant::now();
        let create = faults.decide("CreatePublicIp", now);
        assert_eq!(create.outcome, Outcome::Fail503);
        assert_eq!(create.latency, Duration::from_millis(5));
        let get = faults.decide("GetPublicIp", now);
        assert_eq!(
            get.outcome,
            Outcome::Proceed {
                drop_connection: false
            }
        );
    }

    #[test]
    fn throttles_past_the_burst() {
        let mut config = FaultConfig::default();
        config.default.rate_limit = Some(RateLimit {
            per_second: 0.0,
            burst: 1.0,
        });
        let mut faults = Faults::new(config, Some(1));
        let now = Instant::now();
        assert!(matches!(
            faults.decide("GetVnic", now).outcome,
            Outcome::Proceed { .. }
        ));
        assert_eq!(faults.decide("GetVnic", now).outcome, Outcome::Throttle);
        // Buckets are per operation.
        assert!(matches!(
            faults.decide("GetSubnet", now).outcome,
            Outcome::Proceed { .. }
        ));
    }

    #[test]
    fn parses_camel_case_config() {
        let config: FaultConfig = serde_json::from_str(
            r#"{"operations":{"UpdatePublicIp":{"dropAfterApplyProbability":1.0,
                "rateLimit":{"perSecond":1,"burst":2}}}}"#,
        )
        .expect("parses");
        let rule = config.rule_for("UpdatePublicIp");
        assert_eq!(rule.drop_after_apply_probability, 1.0);
        assert_eq!(rule.rate_limit.map(|r| r.burst), Some(2.0));
    }
}
