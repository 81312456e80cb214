//! A k8s-oci-operator policy: every public IP carries its namespace's team
//! as a default tag (the user's own tag of the same key wins).
//!
//! Settings (the ConfigMap's `settings` key, JSON or YAML):
//! ```json
//! {"namespaceLabel": "example.com/team", "tag": "team"}
//! ```

use k8s_oci_operator_policy_sdk::{
    Policy, TagDefaultsPolicy, TagDefaultsRequest, TagDefaultsResponse, checks, export_policy,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The namespace label holding the team.
    pub namespace_label: String,
    /// The tag key to put it under.
    pub tag: String,
}

pub struct TeamTag;

impl Policy for TeamTag {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.namespace_label.is_empty() {
            return Err("namespaceLabel must not be empty".into());
        }
        // The operator would refuse every answer with a bad key; refusing
        // the settings says so once, when the policy is loaded.
        checks::check_tag_key(&settings.tag).map_err(|e| format!("tag: {e}"))
    }
}

impl TagDefaultsPolicy for TeamTag {
    fn tag_defaults(
        settings: &Settings,
        req: &TagDefaultsRequest,
    ) -> Result<TagDefaultsResponse, String> {
        Ok(match req.namespace.label(&settings.namespace_label) {
            Some(team) => TagDefaultsResponse::default().default_tag(&settings.tag, team),
            None => TagDefaultsResponse::default(),
        })
    }
}

export_policy!(TeamTag => [tag_defaults]);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_oci_operator_policy_sdk::checks::Violation;
    use k8s_oci_operator_policy_sdk::testing::{self, EvalError};
    use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, SettingsResponse};
    use serde_json::json;

    fn request(namespace: Namespace, reserved_ip: ReservedIp) -> TagDefaultsRequest {
        TagDefaultsRequest {
            settings: json!({"namespaceLabel": "example.com/team", "tag": "team"}),
            reserved_ip,
            namespace,
        }
    }

    #[test]
    fn the_namespace_team_becomes_a_default_tag() {
        let req = request(
            Namespace::new("shop").with_label("example.com/team", "payments"),
            ReservedIp::new("web", "shop"),
        );
        let answer = testing::tag_defaults::<TeamTag>(&req).expect("an answer");
        assert_eq!(answer.defaults["team"], "payments");
        assert!(answer.enforced.is_empty());
    }

    #[test]
    fn no_team_no_tag() {
        let req = request(Namespace::new("shop"), ReservedIp::new("web", "shop"));
        assert_eq!(
            testing::tag_defaults::<TeamTag>(&req),
            Ok(TagDefaultsResponse::default())
        );
    }

    #[test]
    fn a_tag_key_the_operator_refuses_is_refused_at_load() {
        for tag in ["k8s-oci-operator-team", "app.kubernetes.io/team", ""] {
            let answer = testing::validate_settings::<TeamTag>(
                json!({"namespaceLabel": "example.com/team", "tag": tag}),
            );
            assert!(
                matches!(answer, Ok(SettingsResponse::Invalid { .. })),
                "{tag:?}: {answer:?}"
            );
        }
    }

    /// The operator's own checks apply to the answer: a public IP carries
    /// at most 40 tags, the user's included, and the answer that would add
    /// a 41st is refused (the policy's failure mode then decides).
    #[test]
    fn a_full_tag_budget_refuses_the_answer() {
        let mut reserved_ip = ReservedIp::new("web", "shop");
        for i in 0..40 {
            reserved_ip = reserved_ip.with_tag(format!("user-{i}"), "v");
        }
        let req = request(
            Namespace::new("shop").with_label("example.com/team", "payments"),
            reserved_ip,
        );
        assert_eq!(
            testing::tag_defaults::<TeamTag>(&req),
            Err(EvalError::Invalid(Violation::TagBudget { count: 41 }))
        );
    }
}
