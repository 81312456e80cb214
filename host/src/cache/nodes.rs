//! The nodes pods run on, as the pod lookups need them: name and
//! `providerID` (the instance), kept for a minute.
//!
//! Every pod lookup read its node from the API server; in a burst that is
//! one read per ReservedIP, all for the same few nodes, while the API server
//! is busiest. A node's instance changes only if the node is replaced under
//! the same name. A lookup that used the replaced instance in the minute
//! after cannot find the pod's address on it (OCI holds one private IP per
//! address in a subnet, and the new instance has it), so it reports the
//! private IP not found and is retried: later, never wrong.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeSpec};
use kube::api::ObjectMeta;
use kube::{Api, Client, ResourceExt};

/// How long a node read is used.
const TTL: Duration = Duration::from_secs(60);

/// See the module docs. Shared by all passes.
#[derive(Default)]
pub struct Nodes {
    read: Mutex<HashMap<String, (Instant, Node)>>,
}

impl Nodes {
    /// Node `name`, read within the last minute; `None` when it does not
    /// exist (that answer is not kept).
    pub async fn get(&self, client: &Client, name: &str) -> Result<Option<Node>, kube::Error> {
        if let Some((at, node)) = self.lock().get(name)
            && at.elapsed() < TTL
        {
            return Ok(Some(node.clone()));
        }
        let Some(node) = Api::<Node>::all(client.clone()).get_opt(name).await? else {
            self.lock().remove(name);
            return Ok(None);
        };
        let kept = stripped(&node);
        let mut read = self.lock();
        read.retain(|_, (at, _)| at.elapsed() < TTL);
        read.insert(name.to_string(), (Instant::now(), kept.clone()));
        Ok(Some(kept))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Node)>> {
        // Single inserts and removes: consistent across a panic.
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the lookups use of a node (a full one carries its images and
/// conditions, kilobytes each).
fn stripped(node: &Node) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(node.name_any()),
            uid: node.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            provider_id: node.spec.as_ref().and_then(|s| s.provider_id.clone()),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_node_has_its_name_uid_and_instance_only() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                uid: Some("u1".into()),
                labels: Some([("a".to_string(), "b".to_string())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                provider_id: Some("oci://ocid1.instance.oc1..i".into()),
                pod_cidr: Some("10.0.0.0/24".into()),
                ..NodeSpec::default()
            }),
            status: Some(Default::default()),
        };
        let kept = stripped(&node);
        assert_eq!(kept.name_any(), "n1");
        assert_eq!(kept.metadata.uid.as_deref(), Some("u1"));
        assert!(kept.metadata.labels.is_none() && kept.status.is_none());
        let spec = kept.spec.unwrap_or_default();
        assert_eq!(
            spec.provider_id.as_deref(),
            Some("oci://ocid1.instance.oc1..i")
        );
        assert!(spec.pod_cidr.is_none());
    }
}
