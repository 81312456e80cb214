//! Example policy: each team draws from its own pool.
//!
//! Settings:
//! ```json
//! {"teamLabel": "example.com/team", "pools": {"payments": "ocid1.publicippool.oc1..aaa"}}
//! ```
//! The namespace's team label picks the pool. A namespace without the label,
//! or a team without a pool, is denied. A ReservedIP that names a pool must
//! name its team's pool.

use std::collections::BTreeMap;

use k8s_oci_operator_policy_sdk::{
    Policy, PoolPolicy, PoolResponse, SelectPoolRequest, export_policy,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub team_label: String,
    /// team -> pool OCID
    pub pools: BTreeMap<String, String>,
}

pub struct TeamPool;

impl Policy for TeamPool {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.team_label.is_empty() {
            return Err("teamLabel must not be empty".into());
        }
        if let Some((team, pool)) = settings
            .pools
            .iter()
            .find(|(_, pool)| !pool.starts_with("ocid1.publicippool."))
        {
            return Err(format!(
                "pool of team {team} is not a public IP pool OCID: {pool}"
            ));
        }
        Ok(())
    }
}

impl PoolPolicy for TeamPool {
    fn select_pool(settings: &Settings, req: &SelectPoolRequest) -> Result<PoolResponse, String> {
        let Some(team) = req.namespace.label(&settings.team_label) else {
            return Ok(deny(format!(
                "namespace {} has no {} label, so it has no public IP pool",
                req.namespace.name, settings.team_label
            )));
        };
        let Some(pool) = settings.pools.get(team) else {
            return Ok(deny(format!("team {team} has no public IP pool")));
        };
        if !req.pool_allowed(pool) {
            return Ok(deny(format!(
                "pool {pool} of team {team} is not enabled in the operator"
            )));
        }
        Ok(match &req.reserved_ip.spec.public_ipv4_pool {
            Some(asked) if asked != pool => deny(format!(
                "team {team} must allocate from pool {pool}, not {asked}"
            )),
            _ => PoolResponse::Choose { pool: pool.clone() },
        })
    }
}

fn deny(reason: String) -> PoolResponse {
    PoolResponse::Deny { reason }
}

export_policy!(TeamPool => [select_pool]);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, SettingsResponse, testing};
    use serde_json::json;

    const POOL: &str = "ocid1.publicippool.oc1..payments";

    fn request(ns: Namespace, rip: ReservedIp) -> SelectPoolRequest {
        SelectPoolRequest {
            settings: json!({"teamLabel": "team", "pools": {"payments": POOL}}),
            reserved_ip: rip,
            namespace: ns,
            allowed_pools: None,
        }
    }

    #[test]
    fn team_label_chooses_the_pool() {
        let req = request(
            Namespace::new("shop").with_label("team", "payments"),
            ReservedIp::new("web", "shop"),
        );
        assert_eq!(
            testing::select_pool::<TeamPool>(&req),
            Ok(PoolResponse::Choose { pool: POOL.into() })
        );
    }

    #[test]
    fn no_team_or_unknown_team_is_denied() {
        let req = request(Namespace::new("shop"), ReservedIp::new("web", "shop"));
        assert!(matches!(
            testing::select_pool::<TeamPool>(&req),
            Ok(PoolResponse::Deny { .. })
        ));
        let req = request(
            Namespace::new("shop").with_label("team", "search"),
            ReservedIp::new("web", "shop"),
        );
        assert!(matches!(
            testing::select_pool::<TeamPool>(&req),
            Ok(PoolResponse::Deny { .. })
        ));
    }

    #[test]
    fn another_pool_in_the_spec_is_denied() {
        let req = request(
            Namespace::new("shop").with_label("team", "payments"),
            ReservedIp::new("web", "shop").with_pool("ocid1.publicippool.oc1..other"),
        );
        assert!(matches!(
            testing::select_pool::<TeamPool>(&req),
            Ok(PoolResponse::Deny { .. })
        ));
    }

    #[test]
    fn pool_not_enabled_in_the_operator_is_denied() {
        let mut req = request(
            Namespace::new("shop").with_label("team", "payments"),
            ReservedIp::new("web", "shop"),
        );
        req.allowed_pools = Some(vec!["ocid1.publicippool.oc1..other".into()]);
        assert!(matches!(
            testing::select_pool::<TeamPool>(&req),
            Ok(PoolResponse::Deny { .. })
        ));
    }

    #[test]
    fn settings_are_validated() {
        assert!(matches!(
            testing::validate_settings::<TeamPool>(
                json!({"teamLabel": "team", "pools": {"a": "nope"}})
            ),
            Ok(SettingsResponse::Invalid { .. })
        ));
        assert!(matches!(
            testing::validate_settings::<TeamPool>(json!({"pools": {}})),
            Ok(SettingsResponse::Invalid { .. })
        ));
    }
}
