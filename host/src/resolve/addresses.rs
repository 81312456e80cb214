//! Pure checks on addresses: CIDR membership, and whether a pod's IP may
//! hold a public IP now.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::decide::Target;

pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (net, bits) = s.split_once('/')?;
    let bits: u8 = bits.parse().ok().filter(|b| *b <= 32)?;
    Some((net.parse().ok()?, bits))
}

pub fn contains(cidr: Option<(Ipv4Addr, u8)>, ip: Ipv4Addr) -> bool {
    let Some((net, bits)) = cidr else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(bits))
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// The pod's IPv4 address if the pod may hold a public IP now, else why not.
/// A pod marked for deletion is no target at once: its IP goes back to the
/// node's pool (and to the next pod, maybe another tenant's) at the end of
/// its grace period, and the public IP must be off it by then. Pure.
pub fn usable_pod_ip(pod: &Pod) -> Result<Ipv4Addr, Target> {
    let name = pod.name_any();
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(Target::Absent {
            reason: "PodTerminating",
            message: format!("pod {name} is being deleted"),
        });
    }
    let status = pod.status.as_ref();
    let ip = status.and_then(|s| s.pod_ip.as_deref()).unwrap_or_default();
    let Ok(addr) = ip.parse::<Ipv4Addr>() else {
        return Err(Target::Absent {
            reason: "PodNotReady",
            message: format!("pod {name} has no IPv4 address yet"),
        });
    };
    if status.and_then(|s| s.phase.as_deref()) != Some("Running") {
        return Err(Target::Absent {
            reason: "PodNotReady",
            message: format!("pod {name} is not running yet"),
        });
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str, ip: Option<&str>, terminating: bool) -> Pod {
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "uid": "u1"},
            "status": {"phase": phase, "podIP": ip}
        }))
        .expect("pod");
        if terminating {
            p.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ));
        }
        p
    }

    fn reason(r: Result<Ipv4Addr, Target>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(Target::Absent { reason, .. }) => reason,
            Err(_) => "other",
        }
    }

    #[test]
    fn a_terminating_pod_is_no_target() {
        // Still running with its IP, but marked for deletion: unassign now.
        assert_eq!(
            reason(usable_pod_ip(&pod("Running", Some("10.0.65.3"), true))),
            "PodTerminating"
        );
        assert_eq!(
            usable_pod_ip(&pod("Running", Some("10.0.65.3"), false)).ok(),
            Some(Ipv4Addr::new(10, 0, 65, 3))
        );
        assert_eq!(
            reason(usable_pod_ip(&pod("Pending", Some("10.0.65.3"), false))),
            "PodNotReady"
        );
        assert_eq!(
            reason(usable_pod_ip(&pod("Running", None, false))),
            "PodNotReady"
        );
        assert_eq!(
            reason(usable_pod_ip(&pod("Running", Some("fd00::1"), false))),
            "PodNotReady"
        );
    }

    #[test]
    fn cidr_membership() {
        let c = parse_cidr("10.0.64.0/18");
        assert!(contains(c, "10.0.65.7".parse().unwrap()));
        assert!(!contains(c, "10.0.128.1".parse().unwrap()));
        assert!(contains(
            parse_cidr("0.0.0.0/0"),
            "8.8.8.8".parse().unwrap()
        ));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(parse_cidr("nonsense"), None);
        assert!(!contains(None, "10.0.0.1".parse().unwrap()));
    }
}
