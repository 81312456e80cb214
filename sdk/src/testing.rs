//! Unit-test a policy natively, without WebAssembly: each helper serialises
//! the request to JSON, runs it through the same dispatch the wasm exports
//! use, and parses the output, so serde mistakes show up in `cargo test`.
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

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::guest::Exported;
use crate::{
    DecisionKind, EligibilityRequest, EligibilityResponse, Output, PoolResponse, SelectPoolRequest,
    SettingsResponse, TagDefaultsRequest, TagDefaultsResponse, ValidateSettingsRequest,
};

/// Runs any decision through the policy's JSON dispatch.
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
/// let answer: Result<SettingsResponse, String> =
///     testing::run::<P, _, _>(DecisionKind::ValidateSettings, &ValidateSettingsRequest::default());
/// assert_eq!(answer, Ok(SettingsResponse::Valid));
/// ```
pub fn run<P: Exported, Req: Serialize, Resp: DeserializeOwned>(
    kind: DecisionKind,
    req: &Req,
) -> Result<Resp, String> {
    let input = serde_json::to_vec(req).map_err(|e| format!("request does not serialise: {e}"))?;
    let output = P::dispatch(kind.code(), &input);
    let output: Output<Resp> =
        serde_json::from_slice(&output).map_err(|e| format!("malformed output: {e}"))?;
    output.into()
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
) -> Result<SettingsResponse, String> {
    run::<P, _, _>(
        DecisionKind::ValidateSettings,
        &ValidateSettingsRequest { settings },
    )
}

/// Asks a policy for tag defaults.
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
/// ```
pub fn tag_defaults<P: Exported>(req: &TagDefaultsRequest) -> Result<TagDefaultsResponse, String> {
    run::<P, _, _>(DecisionKind::TagDefaults, req)
}

/// Asks a policy to select a pool.
///
/// ```
/// use k8s_oci_operator_policy_sdk::*;
/// struct P; impl Policy for P { type Settings = serde_json::Value; }
/// impl PoolPolicy for P {
///     fn select_pool(_: &serde_json::Value, _: &SelectPoolRequest) -> Result<PoolResponse, String> {
///         Ok(PoolResponse::Keep)
///     }
/// }
/// export_policy!(P => [select_pool]);
/// assert_eq!(testing::select_pool::<P>(&SelectPoolRequest::default()), Ok(PoolResponse::Keep));
/// ```
pub fn select_pool<P: Exported>(req: &SelectPoolRequest) -> Result<PoolResponse, String> {
    run::<P, _, _>(DecisionKind::SelectPool, req)
}

/// Asks a policy whether an assignment is eligible.
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
pub fn eligibility<P: Exported>(req: &EligibilityRequest) -> Result<EligibilityResponse, String> {
    run::<P, _, _>(DecisionKind::Eligibility, req)
}
