//! Whether a pod's IP may hold a public IP now. Pure.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

/// The pod's IPv4 address if the pod may hold a public IP now, else why not.
/// A pod marked for deletion is no target at once: its IP goes back to the
/// node's pool (and to the next pod, maybe another tenant's) at the end of
/// its grace period, and the public IP must be off it by then. Pure.
pub fn usable_pod_ip(pod: &Pod) -> Result<Ipv4Addr, (&'static str, String)> {
    let name = pod.name_any();
    if pod.metadata.deletion_timestamp.is_some() {
        return Err(("PodTerminating", format!("pod {name} is being deleted")));
    }
    let status = pod.status.as_ref();
    let ip = status.and_then(|s| s.pod_ip.as_deref()).unwrap_or_default();
    let Ok(addr) = ip.parse::<Ipv4Addr>() else {
        return Err(("PodNotReady", format!("pod {name} has no IPv4 address yet")));
    };
    if status.and_then(|s| s.phase.as_deref()) != Some("Running") {
        return Err(("PodNotReady", format!("pod {name} is not running yet")));
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

    fn reason(r: Result<Ipv4Addr, (&'static str, String)>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err((reason, _)) => reason,
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
}
