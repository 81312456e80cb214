//! The rules for the freeform tags a user (or a policy) puts on a public IP.
//! The CRD's CEL rules say the same at admission (see `crd.rs`), and the
//! operator checks again before any OCI write, so a spec stored before the
//! rules existed, or a policy's answer, is held to them.
//!
//! The rules themselves live in the policy SDK
//! (`k8s_oci_operator_policy_sdk::checks`), the one implementation: the
//! operator checks a policy's answers with them, and a policy's native tests
//! do too. This module keeps the operator's names for them.

use std::collections::BTreeMap;

use k8s_oci_operator_policy_sdk::checks;

pub use checks::{MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN, MAX_USER_TAGS, is_reserved_key};

/// Checks a set of user tags; the error says what to change.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), String> {
    checks::check_tags(tags).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::crd::OWNERSHIP_TAG_PREFIX;

    #[test]
    fn the_sdk_reserves_the_operators_own_prefix() {
        // The ownership tags are written with crd.rs's prefix; the SDK's
        // rules refuse keys with its own. They must be one prefix.
        assert_eq!(checks::RESERVED_TAG_PREFIX, OWNERSHIP_TAG_PREFIX);
        assert!(is_reserved_key(&format!("{OWNERSHIP_TAG_PREFIX}owner")));
    }

    #[test]
    fn user_tags_are_held_to_the_rules_with_a_message() {
        let ok = BTreeMap::from([("owner".to_string(), "My team".to_string())]);
        assert_eq!(check_tags(&ok), Ok(()));
        let ours = BTreeMap::from([("K8S-OCI-OPERATOR-cluster".to_string(), "x".to_string())]);
        assert_eq!(
            check_tags(&ours),
            Err("tag key `K8S-OCI-OPERATOR-cluster` starts with k8s-oci-operator-, which is reserved for the operator".to_string())
        );
        let many: BTreeMap<String, String> = (0..=MAX_USER_TAGS)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert!(check_tags(&many).is_err());
    }
}
