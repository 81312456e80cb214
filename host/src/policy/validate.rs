//! Checks of a policy's answer before the operator acts on it. Pure.
//!
//! The rules are the policy SDK's (`k8s_oci_operator_policy_sdk::checks`):
//! one implementation, which a policy's native tests run too, so they refuse
//! what the operator refuses with the same message. This module adapts them
//! to the engine (its allowed pools, its `String` errors).

use k8s_oci_operator_policy_sdk::checks;

use super::abi::{EligibilityResponse, PoolResponse, TagDefaultsResponse};

/// Which pools a policy may choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedPools {
    /// Any public IP pool.
    Any,
    /// Only these pool OCIDs.
    Only(Vec<String>),
}

impl AllowedPools {
    pub(crate) fn as_list(&self) -> Option<&[String]> {
        match self {
            AllowedPools::Any => None,
            AllowedPools::Only(pools) => Some(pools),
        }
    }
}

pub(crate) fn tag_defaults(answer: &TagDefaultsResponse) -> Result<(), String> {
    checks::tag_defaults(answer).map_err(|e| e.to_string())
}

pub(crate) fn pool(
    answer: &PoolResponse,
    spec_pool: Option<&str>,
    allowed: &AllowedPools,
) -> Result<(), String> {
    checks::select_pool(answer, spec_pool, allowed.as_list()).map_err(|e| e.to_string())
}

pub(crate) fn eligibility(answer: &EligibilityResponse) -> Result<(), String> {
    checks::eligibility(answer).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::compose::{Composer, TagComposer};
    use super::*;

    const POOL: &str = "ocid1.publicippool.oc1..aaa";

    #[test]
    fn tag_limits_follow_oci() {
        let ok = TagDefaultsResponse::default()
            .default_tag("a", "b")
            .enforce_tag("c", "d");
        assert!(tag_defaults(&ok).is_ok());
        let long_key = TagDefaultsResponse::default().default_tag("k".repeat(101), "v");
        assert!(tag_defaults(&long_key).is_err());
        let long_value = TagDefaultsResponse::default().enforce_tag("k", "v".repeat(257));
        assert!(tag_defaults(&long_value).is_err());
        let reserved = TagDefaultsResponse::default().enforce_tag("k8s-oci-operator-owner", "x");
        assert!(tag_defaults(&reserved).is_err());
        let empty_key = TagDefaultsResponse::default().default_tag("", "x");
        assert!(tag_defaults(&empty_key).is_err());
        let mut many = TagDefaultsResponse::default();
        for i in 0..41 {
            many = many.default_tag(format!("k{i}"), "v");
        }
        assert!(tag_defaults(&many).is_err());
    }

    #[test]
    fn chosen_pool_must_be_allowed_and_match_the_spec() {
        let choose = |p: &str| PoolResponse::Choose { pool: p.into() };
        assert!(pool(&choose(POOL), None, &AllowedPools::Any).is_ok());
        assert!(pool(&choose("not-an-ocid"), None, &AllowedPools::Any).is_err());
        assert!(pool(&choose(POOL), None, &AllowedPools::Only(vec!["x".into()])).is_err());
        assert!(
            pool(
                &choose(POOL),
                Some(POOL),
                &AllowedPools::Only(vec![POOL.into()])
            )
            .is_ok()
        );
        assert!(
            pool(
                &choose(POOL),
                Some("ocid1.publicippool.oc1..bbb"),
                &AllowedPools::Any
            )
            .is_err()
        );
        assert!(
            pool(
                &PoolResponse::Deny { reason: " ".into() },
                None,
                &AllowedPools::Any
            )
            .is_err()
        );
    }

    #[test]
    fn deny_reasons_are_bounded() {
        assert!(
            eligibility(&EligibilityResponse::Deny {
                reason: "x".repeat(1025)
            })
            .is_err()
        );
        assert!(
            eligibility(&EligibilityResponse::Deny {
                reason: "no label".into()
            })
            .is_ok()
        );
    }

    /// The composer counts the user's tags with a policy's; the SDK's
    /// `tag_budget`, which a policy's native tests run, must refuse the same
    /// answers with the same message.
    #[test]
    fn the_sdks_tag_budget_agrees_with_the_composer() {
        let keys = |prefix: &str, n: usize| -> BTreeMap<String, String> {
            (0..n)
                .map(|i| (format!("{prefix}{i}"), "v".into()))
                .collect()
        };
        for (user, policy) in [(31, 10), (30, 10), (0, 40), (0, 41), (40, 1), (20, 20)] {
            let user = keys("u", user);
            let answer = TagDefaultsResponse {
                defaults: keys("d", policy),
                enforced: BTreeMap::new(),
            };
            let composer = TagComposer::new(user.clone());
            let sdk = checks::tag_defaults(&answer)
                .and_then(|()| checks::tag_budget([&user, &answer.defaults, &answer.enforced]))
                .map_err(|e| e.to_string());
            assert_eq!(composer.validate(&answer), sdk, "{} user tags", user.len());
        }
    }
}
