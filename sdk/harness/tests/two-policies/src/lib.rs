//! Two policies in one crate: a build picks the exported one by feature.

use k8s_oci_operator_policy_sdk::{
    EligibilityPolicy, EligibilityRequest, EligibilityResponse, Policy, PoolPolicy, PoolResponse,
    SelectPoolRequest, export_policy,
};

pub struct FixedPool;

impl Policy for FixedPool {
    type Settings = serde_json::Value;
}

impl PoolPolicy for FixedPool {
    fn select_pool(
        settings: &serde_json::Value,
        _: &SelectPoolRequest,
    ) -> Result<PoolResponse, String> {
        let pool = settings["pool"].as_str().ok_or("settings need a pool")?;
        Ok(PoolResponse::Choose { pool: pool.into() })
    }
}

pub struct LabelledPods;

impl Policy for LabelledPods {
    type Settings = serde_json::Value;
}

impl EligibilityPolicy for LabelledPods {
    fn eligibility(
        _: &serde_json::Value,
        req: &EligibilityRequest,
    ) -> Result<EligibilityResponse, String> {
        Ok(match req.target.pod_label("public-ip") {
            Some(_) => EligibilityResponse::Allow,
            None => EligibilityResponse::Deny {
                reason: "pod lacks label public-ip".into(),
            },
        })
    }
}

export_policy!(#[cfg(feature = "fixed-pool")] FixedPool => [select_pool]);
export_policy!(#[cfg(feature = "labelled-pods")] LabelledPods => [eligibility]);
