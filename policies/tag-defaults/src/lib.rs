//! Example policy: default tags from namespace labels, plus enforced tags.
//!
//! Settings:
//! ```json
//! {
//!   "fromNamespaceLabels": {"cost-center": "example.com/cost-center", "owner": "example.com/owner"},
//!   "defaults": {"cost-center": "shared"},
//!   "enforced": {"managed-by": "platform-team"}
//! }
//! ```
//! A tag in `fromNamespaceLabels` takes the value of that namespace label
//! when the namespace has it, else the value in `defaults` (if any). The user's
//! own tags win over defaults; `enforced` tags win over the user's.

use std::collections::BTreeMap;

use k8s_oci_operator_policy_sdk::{
    Policy, TagDefaultsPolicy, TagDefaultsRequest, TagDefaultsResponse, export_policy,
};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Settings {
    /// tag key -> namespace label key
    pub from_namespace_labels: BTreeMap<String, String>,
    pub defaults: BTreeMap<String, String>,
    pub enforced: BTreeMap<String, String>,
}

pub struct NamespaceTags;

impl Policy for NamespaceTags {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.from_namespace_labels.is_empty()
            && settings.defaults.is_empty()
            && settings.enforced.is_empty()
        {
            return Err("set at least one of fromNamespaceLabels, defaults or enforced".into());
        }
        Ok(())
    }
}

impl TagDefaultsPolicy for NamespaceTags {
    fn tag_defaults(
        settings: &Settings,
        req: &TagDefaultsRequest,
    ) -> Result<TagDefaultsResponse, String> {
        let mut defaults = settings.defaults.clone();
        for (tag, label) in &settings.from_namespace_labels {
            if let Some(value) = req.namespace.label(label) {
                defaults.insert(tag.clone(), value.to_string());
            }
        }
        Ok(TagDefaultsResponse {
            defaults,
            enforced: settings.enforced.clone(),
        })
    }
}

export_policy!(NamespaceTags => [tag_defaults]);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, SettingsResponse, testing};
    use serde_json::json;

    fn settings() -> serde_json::Value {
        json!({
            "fromNamespaceLabels": {"cost-center": "example.com/cost-center"},
            "defaults": {"cost-center": "shared"},
            "enforced": {"managed-by": "platform-team"}
        })
    }

    #[test]
    fn namespace_label_overrides_the_default_value() {
        let req = TagDefaultsRequest {
            settings: settings(),
            reserved_ip: ReservedIp::new("web", "shop"),
            namespace: Namespace::new("shop").with_label("example.com/cost-center", "cc-42"),
        };
        let out = testing::tag_defaults::<NamespaceTags>(&req).expect("answer");
        assert_eq!(out.defaults["cost-center"], "cc-42");
        assert_eq!(out.enforced["managed-by"], "platform-team");
    }

    #[test]
    fn falls_back_to_default_value() {
        let req = TagDefaultsRequest {
            settings: settings(),
            reserved_ip: ReservedIp::new("web", "shop"),
            namespace: Namespace::new("shop"),
        };
        let out = testing::tag_defaults::<NamespaceTags>(&req).expect("answer");
        assert_eq!(out.defaults["cost-center"], "shared");
    }

    #[test]
    fn empty_or_misspelled_settings_are_invalid() {
        assert!(matches!(
            testing::validate_settings::<NamespaceTags>(json!({})),
            Ok(SettingsResponse::Invalid { .. })
        ));
        assert!(matches!(
            testing::validate_settings::<NamespaceTags>(json!({"enforce": {}})),
            Ok(SettingsResponse::Invalid { .. })
        ));
        assert_eq!(
            testing::validate_settings::<NamespaceTags>(settings()),
            Ok(SettingsResponse::Valid)
        );
    }
}
