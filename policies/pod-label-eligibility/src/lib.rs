//! Example policy: only labelled pods, and private IPs inside listed ranges,
//! may receive a public IP.
//!
//! Settings:
//! ```json
//! {"podLabel": "example.com/public-ip", "podLabelValue": "true", "privateIPCidrs": ["10.0.0.0/16"]}
//! ```
//! `podLabelValue` is optional (any value then). Without `privateIPCidrs`,
//! assignments to private IPs are denied.

use std::net::Ipv4Addr;

use k8s_oci_operator_policy_sdk::{
    EligibilityPolicy, EligibilityRequest, EligibilityResponse, Policy, Target, export_policy,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    pub pod_label: String,
    #[serde(default)]
    pub pod_label_value: Option<String>,
    #[serde(default, rename = "privateIPCidrs")]
    pub private_ip_cidrs: Vec<String>,
}

pub struct PodLabel;

impl Policy for PodLabel {
    type Settings = Settings;

    fn validate_settings(settings: &Settings) -> Result<(), String> {
        if settings.pod_label.is_empty() {
            return Err("podLabel must not be empty".into());
        }
        for cidr in &settings.private_ip_cidrs {
            parse_cidr(cidr)?;
        }
        Ok(())
    }
}

impl EligibilityPolicy for PodLabel {
    fn eligibility(
        settings: &Settings,
        req: &EligibilityRequest,
    ) -> Result<EligibilityResponse, String> {
        let allowed = match &req.target {
            Target::Pod { name, .. } => {
                let value = req.target.pod_label(&settings.pod_label);
                match (&settings.pod_label_value, value) {
                    (_, None) => Err(format!("pod {name} has no label {}", settings.pod_label)),
                    (Some(want), Some(got)) if want != got => Err(format!(
                        "pod {name} has {}={got}, not {want}",
                        settings.pod_label
                    )),
                    _ => Ok(()),
                }
            }
            Target::PrivateIp { address, .. } => private_ip_allowed(settings, address.as_deref()),
        };
        Ok(match allowed {
            Ok(()) => EligibilityResponse::Allow,
            Err(reason) => EligibilityResponse::Deny { reason },
        })
    }
}

fn private_ip_allowed(settings: &Settings, address: Option<&str>) -> Result<(), String> {
    let Some(address) = address else {
        return Err("the private IP's address is unknown".into());
    };
    let ip: Ipv4Addr = address
        .parse()
        .map_err(|_| format!("{address} is not an IPv4 address"))?;
    for cidr in &settings.private_ip_cidrs {
        let (net, bits) = parse_cidr(cidr)?;
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        if u32::from(ip) & mask == u32::from(net) & mask {
            return Ok(());
        }
    }
    Err(format!(
        "private IP {address} is outside the allowed ranges"
    ))
}

fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u32), String> {
    let invalid = || format!("{cidr} is not an IPv4 CIDR");
    let (net, bits) = cidr.split_once('/').ok_or_else(invalid)?;
    let net: Ipv4Addr = net.parse().map_err(|_| invalid())?;
    let bits: u32 = bits.parse().map_err(|_| invalid())?;
    if bits > 32 {
        return Err(invalid());
    }
    Ok((net, bits))
}

export_policy!(PodLabel => [eligibility]);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_oci_operator_policy_sdk::{Namespace, ReservedIp, SettingsResponse, testing};
    use serde_json::json;

    fn request(target: Target) -> EligibilityRequest {
        EligibilityRequest {
            settings: json!({"podLabel": "public-ip", "podLabelValue": "true", "privateIPCidrs": ["10.0.0.0/16"]}),
            reserved_ip: ReservedIp::new("web", "shop"),
            namespace: Namespace::new("shop"),
            target,
        }
    }

    #[test]
    fn labelled_pod_is_allowed() {
        let req = request(Target::pod("web-0").with_pod_label("public-ip", "true"));
        assert_eq!(
            testing::eligibility::<PodLabel>(&req),
            Ok(EligibilityResponse::Allow)
        );
    }

    #[test]
    fn unlabelled_or_wrong_value_pod_is_denied() {
        for target in [
            Target::pod("web-0"),
            Target::pod("web-0").with_pod_label("public-ip", "false"),
        ] {
            assert!(matches!(
                testing::eligibility::<PodLabel>(&request(target)),
                Ok(EligibilityResponse::Deny { .. })
            ));
        }
    }

    #[test]
    fn private_ips_only_inside_listed_ranges() {
        let inside = Target::PrivateIp {
            address: Some("10.0.3.4".into()),
            id: None,
            subnet_id: None,
            pod_namespace: None,
            node_ip: false,
        };
        let outside = Target::PrivateIp {
            address: Some("10.1.0.1".into()),
            id: None,
            subnet_id: None,
            pod_namespace: None,
            node_ip: false,
        };
        assert_eq!(
            testing::eligibility::<PodLabel>(&request(inside)),
            Ok(EligibilityResponse::Allow)
        );
        assert!(matches!(
            testing::eligibility::<PodLabel>(&request(outside)),
            Ok(EligibilityResponse::Deny { .. })
        ));
    }

    #[test]
    fn bad_cidr_is_invalid_settings() {
        assert!(matches!(
            testing::validate_settings::<PodLabel>(
                json!({"podLabel": "a", "privateIPCidrs": ["10.0.0.0/40"]})
            ),
            Ok(SettingsResponse::Invalid { .. })
        ));
    }
}
