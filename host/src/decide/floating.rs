//! `assignment.podSelector`: which of the matching pods holds the floating
//! IP. Pure.
//!
//! The IP stays on the pod it is on while that pod is ready: a floating IP
//! that moved whenever a "better" pod appeared would break the connections
//! of a healthy active instance. Only when that pod stops being ready (or
//! goes) does it move, to the ready pod that has existed longest (then by
//! name), so every pass over the same pods makes the same choice.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use crate::resolve::usable_pod_ip;

/// Whether a pod may hold a floating IP: running with an address, not being
/// deleted, and Ready (its probes pass).
pub fn is_ready(pod: &Pod) -> bool {
    usable_pod_ip(pod).is_ok()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod the IP should be on, among those the selector matched.
/// `current`: the UID of the pod status records it on, if any.
pub fn choose<'a>(current: Option<&str>, pods: &'a [Pod]) -> Option<&'a Pod> {
    let ready = || pods.iter().filter(|p| is_ready(p));
    if let Some(uid) = current
        && let Some(pod) = ready().find(|p| p.uid().as_deref() == Some(uid))
    {
        return Some(pod);
    }
    ready().min_by(|a, b| {
        let created = |p: &Pod| p.creation_timestamp().map(|t| t.0);
        created(a)
            .cmp(&created(b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    })
}

/// Why no pod can hold the IP, for the condition.
pub fn none_ready(selector: &str, matched: usize) -> (&'static str, String) {
    if matched == 0 {
        (
            "NoPodSelected",
            format!("no pod of the namespace matches podSelector {selector}"),
        )
    } else {
        (
            "NoReadyPod",
            format!("none of the {matched} pods matching podSelector {selector} is ready"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, created: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name, "uid": format!("uid-{name}"), "creationTimestamp": created },
            "status": {
                "phase": "Running",
                "podIP": "10.0.65.3",
                "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }],
            },
        }))
        .expect("pod")
    }

    fn chosen(current: Option<&str>, pods: &[Pod]) -> Option<String> {
        choose(current, pods).map(|p| p.name_any())
    }

    #[test]
    fn the_oldest_ready_pod_is_chosen_first() {
        let pods = [
            pod("b", "2026-01-01T00:00:02Z", true),
            pod("a", "2026-01-01T00:00:03Z", true),
            pod("c", "2026-01-01T00:00:01Z", false),
        ];
        assert_eq!(chosen(None, &pods).as_deref(), Some("b"));
    }

    #[test]
    fn the_ip_stays_on_its_pod_while_it_is_ready() {
        let pods = [
            pod("old", "2026-01-01T00:00:01Z", true),
            pod("current", "2026-01-01T00:00:09Z", true),
        ];
        assert_eq!(
            chosen(Some("uid-current"), &pods).as_deref(),
            Some("current")
        );
    }

    #[test]
    fn it_moves_when_its_pod_stops_being_ready_or_goes() {
        let pods = [
            pod("current", "2026-01-01T00:00:01Z", false),
            pod("next", "2026-01-01T00:00:05Z", true),
        ];
        assert_eq!(chosen(Some("uid-current"), &pods).as_deref(), Some("next"));
        assert_eq!(chosen(Some("uid-gone"), &pods).as_deref(), Some("next"));
        let mut terminating = pod("next", "2026-01-01T00:00:05Z", true);
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        assert_eq!(chosen(None, &[pods[0].clone(), terminating]), None);
    }

    #[test]
    fn a_pod_without_a_ready_condition_is_not_ready() {
        let mut p = pod("a", "2026-01-01T00:00:01Z", true);
        p.status.as_mut().expect("status").conditions = None;
        assert!(!is_ready(&p));
        assert_eq!(none_ready("app=db", 1).0, "NoReadyPod");
        assert_eq!(none_ready("app=db", 0).0, "NoPodSelected");
    }
}
