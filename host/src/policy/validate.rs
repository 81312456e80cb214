//! Checks of a policy's answer before the operator acts on it. Pure.

use crate::api::tags::{MAX_USER_TAGS, check_tags};

use super::abi::{EligibilityResponse, PoolResponse, TagDefaultsResponse};

/// Longest deny reason a policy may give (it ends up in status and events).
pub(crate) const MAX_REASON_LEN: usize = 1024;

/// Which pools a policy may choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedPools {
    /// Any public IP pool.
    Any,
    /// Only these pool OCIDs.
    Only(Vec<String>),
}

impl AllowedPools {
    pub(crate) fn allows(&self, pool: &str) -> bool {
        match self {
            AllowedPools::Any => true,
            AllowedPools::Only(pools) => pools.iter().any(|p| p == pool),
        }
    }

    pub(crate) fn as_list(&self) -> Option<&[String]> {
        match self {
            AllowedPools::Any => None,
            AllowedPools::Only(pools) => Some(pools),
        }
    }
}

pub(crate) fn tag_defaults(answer: &TagDefaultsResponse) -> Result<(), String> {
    let count = answer.defaults.len() + answer.enforced.len();
    if count > MAX_USER_TAGS {
        return Err(format!(
            "{count} tags, more than the {MAX_USER_TAGS} a public IP may carry"
        ));
    }
    check_tags(&answer.defaults)?;
    check_tags(&answer.enforced)
}

pub(crate) fn pool(
    answer: &PoolResponse,
    spec_pool: Option<&str>,
    allowed: &AllowedPools,
) -> Result<(), String> {
    match answer {
        PoolResponse::Keep => Ok(()),
        PoolResponse::Deny { reason } => reason_ok(reason),
        PoolResponse::Choose { pool } => {
            if !is_pool_ocid(pool) {
                return Err(format!("`{pool}` is not a public IP pool OCID"));
            }
            if !allowed.allows(pool) {
                return Err(format!(
                    "pool {pool} is not among the operator's allowed pools"
                ));
            }
            match spec_pool {
                // The spec's pool is the user's explicit (immutable) choice;
                // a policy that disagrees must deny, not silently override.
                Some(asked) if asked != pool => Err(format!(
                    "chose pool {pool}, but the ReservedIP asks for {asked}; deny instead"
                )),
                _ => Ok(()),
            }
        }
    }
}

pub(crate) fn eligibility(answer: &EligibilityResponse) -> Result<(), String> {
    match answer {
        EligibilityResponse::Allow => Ok(()),
        EligibilityResponse::Deny { reason } => reason_ok(reason),
    }
}

fn reason_ok(reason: &str) -> Result<(), String> {
    if reason.trim().is_empty() {
        return Err("deny without a reason".into());
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(format!("reason longer than {MAX_REASON_LEN} bytes"));
    }
    Ok(())
}

/// The CRD's pattern for `publicIPv4Pool`, checked by hand.
fn is_pool_ocid(pool: &str) -> bool {
    let Some(rest) = pool.strip_prefix("ocid1.publicippool.") else {
        return false;
    };
    pool.len() <= 255
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

#[cfg(test)]
mod tests {
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
}
