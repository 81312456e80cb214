//! Unit-test a policy natively, without WebAssembly: each helper serialises
//! the request to JSON, runs it through the same dispatch the wasm exports
//! use, parses the output, and checks the answer with the operator's own
//! rules ([`checks`](crate::checks)). So serde mistakes show up in
//! `cargo test`, and so does an answer the operator would refuse (a reserved
//! tag key, a pool outside the allowed ones, a deny without a reason), as an
//! [`EvalError`] whose message is the operator's.
//!
//! ```
//! use k8s_oci_operator_policy_sdk::*;
//! struct Keep; impl Policy for Keep { type Settings = serde_json::Value; }
//! impl PoolPolicy for Keep {
//!     fn select_pool(_: &serde_json::Value, _: &SelectPoolRequest) -> Result<PoolResponse, String> {
//!         Ok(PoolResponse::Keep)
//!     }
//! }
//! export_policy!(Keep => [select_pool]);
//! assert_eq!(testing::select_pool::<Keep>(&SelectPoolRequest::default()), Ok(PoolResponse::Keep));
//! ```
//!
//! These helpers stop short of the WebAssembly sandbox (deadline, memory
//! cap, the built module's exports); the `k8s-oci-operator-policy-harness`
//! crate runs a built module through the operator's engine for that.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checks::{self, Violation};
use crate::guest::Exported;
use crate::{
    DecisionKind, EligibilityRequest, EligibilityResponse, Output, PoolResponse, SelectPoolRequest,
    SettingsResponse, TagDefaultsRequest, TagDefaultsResponse, ValidateSettingsRequest,
};

/// Why a decision gave no usable answer. The variants and messages are the
/// operator's for the same failures (it reports `policy <name> failed: ` and
/// this message), so a test can assert on what a user would read.
///
/// ```
/// use k8s_oci_operator_policy_sdk::{checks::Violation, testing::EvalError};
/// let refused = EvalError::Invalid(Violation::MissingReason);
/// assert_eq!(refused.to_string(), "invalid answer: deny without a reason");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// The request could not be serialised (a test's own request type).
    Request(String),
    /// The policy answered `{"error": ...}`: its trait method returned `Err`,
    /// or its settings or the request did not deserialise.
    Reported(String),
    /// The output is not a valid document for the decision.
    Malformed(String),
    /// The answer breaks one of the operator's rules ([`checks`]).
    Invalid(Violation),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Request(message) => write!(f, "the request does not serialise: {message}"),
            EvalError::Reported(message) => write!(f, "reported an error: {message}"),
            EvalError::Malformed(message) => write!(f, "malformed output: {message}"),
            EvalError::Invalid(violation) => write!(f, "invalid answer: {violation}"),
        }
    }
}

impl std::error::Error for EvalError {}

/// Runs any decision through the policy's JSON dispatch, without checking
/// the answer (the decision helpers below check it).
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl EligibilityPolicy for P {
///     fn eligibility(_: &serde_json::Value, _: &EligibilityRequest) -> Result<EligibilityResponse, String> {
///         Ok(EligibilityResponse::Allow)
///     }
/// }
/// export_policy!(P => [eligibility]);
/// let answer: Result<SettingsResponse, testing::EvalError> =
///     testing::run::<P, _, _>(DecisionKind::ValidateSettings, &ValidateSettingsRequest::default());
/// assert_eq!(answer, Ok(SettingsResponse::Valid));
/// ```
pub fn run<P: Exported, Req: Serialize, Resp: DeserializeOwned>(
    kind: DecisionKind,
    req: &Req,
) -> Result<Resp, EvalError> {
    let input = serde_json::to_vec(req).map_err(|e| EvalError::Request(e.to_string()))?;
    let output = P::dispatch(kind.code(), &input);
    let output: Output<Resp> =
        serde_json::from_slice(&output).map_err(|e| EvalError::Malformed(e.to_string()))?;
    Result::from(output).map_err(EvalError::Reported)
}

/// Validates settings the way the host does at load time.
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl EligibilityPolicy for P {
///     fn eligibility(_: &serde_json::Value, _: &EligibilityRequest) -> Result<EligibilityResponse, String> {
///         Ok(EligibilityResponse::Allow)
///     }
/// }
/// export_policy!(P => [eligibility]);
/// assert_eq!(testing::validate_settings::<P>(serde_json::json!({})), Ok(SettingsResponse::Valid));
/// ```
pub fn validate_settings<P: Exported>(
    settings: serde_json::Value,
) -> Result<SettingsResponse, EvalError> {
    run::<P, _, _>(
        DecisionKind::ValidateSettings,
        &ValidateSettingsRequest { settings },
    )
}

/// Asks a policy for tag defaults, and checks the answer as the operator
/// does: every tag valid and not the operator's, and with the request's
/// user tags at most [`checks::MAX_USER_TAGS`] distinct keys.
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl TagDefaultsPolicy for P {
///     fn tag_defaults(_: &serde_json::Value, _: &TagDefaultsRequest) -> Result<TagDefaultsResponse, String> {
///         Ok(TagDefaultsResponse::default().default_tag("a", "b"))
///     }
/// }
/// export_policy!(P => [tag_defaults]);
/// let out = testing::tag_defaults::<P>(&TagDefaultsRequest::default()).unwrap();
/// assert_eq!(out.defaults["a"], "b");
///
/// // The operator's own tags are refused, with the operator's message:
/// struct Owner; impl Policy for Owner { type Settings = serde_json::Value; }
/// impl TagDefaultsPolicy for Owner {
///     fn tag_defaults(_: &serde_json::Value, _: &TagDefaultsRequest) -> Result<TagDefaultsResponse, String> {
///         Ok(TagDefaultsResponse::default().enforce_tag("k8s-oci-operator-owner", "me"))
///     }
/// }
/// export_policy!(Owner => [tag_defaults]);
/// let refused = testing::tag_defaults::<Owner>(&TagDefaultsRequest::default()).unwrap_err();
/// assert!(matches!(refused, testing::EvalError::Invalid(checks::Violation::ReservedTagKey { .. })));
/// assert!(refused.to_string().starts_with("invalid answer: tag key `k8s-oci-operator-owner`"));
/// ```
pub fn tag_defaults<P: Exported>(
    req: &TagDefaultsRequest,
) -> Result<TagDefaultsResponse, EvalError> {
    let answer: TagDefaultsResponse = run::<P, _, _>(DecisionKind::TagDefaults, req)?;
    checks::tag_defaults(&answer)
        .and_then(|()| {
            checks::tag_budget([
                &req.reserved_ip.spec.tags,
                &answer.defaults,
                &answer.enforced,
            ])
        })
        .map_err(EvalError::Invalid)?;
    Ok(answer)
}

/// Asks a policy to select a pool, and checks the answer as the operator
/// does: a chosen pool is a pool OCID, among the request's `allowed_pools`
/// and the spec's pool when it names one; a deny has a reason.
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl PoolPolicy for P {
///     fn select_pool(_: &serde_json::Value, _: &SelectPoolRequest) -> Result<PoolResponse, String> {
///         Ok(PoolResponse::Choose { pool: "ocid1.publicippool.oc1..a".into() })
///     }
/// }
/// export_policy!(P => [select_pool]);
/// assert!(testing::select_pool::<P>(&SelectPoolRequest::default()).is_ok());
/// let only_b = SelectPoolRequest {
///     allowed_pools: Some(vec!["ocid1.publicippool.oc1..b".into()]),
///     ..SelectPoolRequest::default()
/// };
/// assert_eq!(
///     testing::select_pool::<P>(&only_b).unwrap_err().to_string(),
///     "invalid answer: pool ocid1.publicippool.oc1..a is not among the operator's allowed pools"
/// );
/// ```
pub fn select_pool<P: Exported>(req: &SelectPoolRequest) -> Result<PoolResponse, EvalError> {
    let answer = run::<P, _, _>(DecisionKind::SelectPool, req)?;
    checks::select_pool(
        &answer,
        req.reserved_ip.spec.public_ipv4_pool.as_deref(),
        req.allowed_pools.as_deref(),
    )
    .map_err(EvalError::Invalid)?;
    Ok(answer)
}

/// Asks a policy whether an assignment is eligible, and checks the answer as
/// the operator does (a deny has a reason of at most
/// [`checks::MAX_REASON_LEN`] bytes).
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl EligibilityPolicy for P {
///     fn eligibility(_: &serde_json::Value, _: &EligibilityRequest) -> Result<EligibilityResponse, String> {
///         Ok(EligibilityResponse::Allow)
///     }
/// }
/// export_policy!(P => [eligibility]);
/// let req = EligibilityRequest {
///     settings: serde_json::Value::Null,
///     reserved_ip: ReservedIp::new("a", "b"),
///     namespace: Namespace::new("b"),
///     target: Target::pod("p"),
/// };
/// assert_eq!(testing::eligibility::<P>(&req), Ok(EligibilityResponse::Allow));
/// ```
pub fn eligibility<P: Exported>(
    req: &EligibilityRequest,
) -> Result<EligibilityResponse, EvalError> {
    let answer = run::<P, _, _>(DecisionKind::Eligibility, req)?;
    checks::eligibility(&answer).map_err(EvalError::Invalid)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EligibilityPolicy, Namespace, Policy, PoolPolicy, ReservedIp, Target};
    use crate::{TagDefaultsPolicy, export_policy};

    /// Answers whatever its settings say, so one policy can give every
    /// answer the operator refuses.
    struct Echo;
    impl Policy for Echo {
        type Settings = serde_json::Value;
    }
    impl TagDefaultsPolicy for Echo {
        fn tag_defaults(
            s: &serde_json::Value,
            _: &TagDefaultsRequest,
        ) -> Result<TagDefaultsResponse, String> {
            serde_json::from_value(s.clone()).map_err(|e| e.to_string())
        }
    }
    impl PoolPolicy for Echo {
        fn select_pool(
            s: &serde_json::Value,
            _: &SelectPoolRequest,
        ) -> Result<PoolResponse, String> {
            serde_json::from_value(s.clone()).map_err(|e| e.to_string())
        }
    }
    impl EligibilityPolicy for Echo {
        fn eligibility(
            s: &serde_json::Value,
            _: &EligibilityRequest,
        ) -> Result<EligibilityResponse, String> {
            serde_json::from_value(s.clone()).map_err(|e| e.to_string())
        }
    }
    export_policy!(Echo => [tag_defaults, select_pool, eligibility]);

    fn tags(settings: serde_json::Value, user: &[&str]) -> Result<TagDefaultsResponse, EvalError> {
        let mut rip = ReservedIp::new("web", "shop");
        for key in user {
            rip = rip.with_tag(*key, "v");
        }
        tag_defaults::<Echo>(&TagDefaultsRequest {
            settings,
            reserved_ip: rip,
            namespace: Namespace::new("shop"),
        })
    }

    #[test]
    fn the_operators_tags_are_refused_with_its_message() {
        let refused = tags(
            serde_json::json!({"enforced": {"k8s-oci-operator-owner": "me"}}),
            &[],
        );
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("invalid answer: tag key `k8s-oci-operator-owner` starts with k8s-oci-operator-, which is reserved for the operator".into())
        );
        assert!(tags(serde_json::json!({"defaults": {"owner": "me"}}), &[]).is_ok());
    }

    #[test]
    fn user_tags_count_towards_the_budget() {
        let policy: serde_json::Map<String, serde_json::Value> =
            (0..10).map(|i| (format!("p{i}"), "v".into())).collect();
        let settings = serde_json::json!({ "defaults": policy });
        let user: Vec<String> = (0..31).map(|i| format!("u{i}")).collect();
        let user: Vec<&str> = user.iter().map(String::as_str).collect();
        assert_eq!(
            tags(settings.clone(), &user),
            Err(EvalError::Invalid(Violation::TagBudget { count: 41 }))
        );
        assert!(tags(settings, &user[..30]).is_ok());
    }

    #[test]
    fn pools_must_be_allowed_and_match_the_spec() {
        const A: &str = "ocid1.publicippool.oc1..a";
        let req = |allowed: Option<Vec<String>>, spec: Option<&str>| SelectPoolRequest {
            settings: serde_json::json!({"decision": "choose", "pool": A}),
            reserved_ip: match spec {
                Some(pool) => ReservedIp::new("web", "shop").with_pool(pool),
                None => ReservedIp::new("web", "shop"),
            },
            namespace: Namespace::new("shop"),
            allowed_pools: allowed,
        };
        assert!(select_pool::<Echo>(&req(Some(vec![A.into()]), Some(A))).is_ok());
        assert!(matches!(
            select_pool::<Echo>(&req(Some(vec![]), None)),
            Err(EvalError::Invalid(Violation::PoolNotAllowed { .. }))
        ));
        assert!(matches!(
            select_pool::<Echo>(&req(None, Some("ocid1.publicippool.oc1..b"))),
            Err(EvalError::Invalid(Violation::PoolDiffersFromSpec { .. }))
        ));
    }

    #[test]
    fn deny_reasons_are_checked_and_errors_are_told_apart() {
        let req = |settings| EligibilityRequest {
            settings,
            reserved_ip: ReservedIp::new("web", "shop"),
            namespace: Namespace::new("shop"),
            target: Target::pod("web-0"),
        };
        assert_eq!(
            eligibility::<Echo>(&req(serde_json::json!({"decision": "deny", "reason": " "}))),
            Err(EvalError::Invalid(Violation::MissingReason))
        );
        assert!(matches!(
            eligibility::<Echo>(&req(serde_json::json!({"decision": "maybe"}))),
            Err(EvalError::Reported(_))
        ));
    }
}
