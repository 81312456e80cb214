//! The `ReservedIP` custom resource (`oci.k8s.logmein.com/v1alpha1`).
//!
//! The CRD in `config/crd/bases/` is generated from these types
//! (`k8s-oci-operator crd`), and a test fails when the checked-in file is
//! stale. Validation that Kubernetes can do at admission lives here as OpenAPI
//! patterns and CEL rules, so bad input is refused before the operator sees it.
//! Allocated data (addresses, OCIDs) lives only in `status`, never in `spec`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Prefix of the freeform tag keys the operator writes on every public IP it
/// owns; users may not set tags with it.
pub const OWNERSHIP_TAG_PREFIX: &str = "k8s-oci-operator-";

/// A dotted-quad IPv4 address, each octet 0-255 without leading zeros.
const IPV4_PATTERN: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$";

/// The pattern of an OCID of one resource type (`ocid1.<type>.<realm>.[region][.future].<unique>`).
/// A macro rather than a function: schemars needs a constant string.
macro_rules! ocid_pattern {
    ($kind:literal) => {
        concat!(
            r"^ocid1\.",
            $kind,
            r"\.[a-z0-9]+\.[a-z0-9-]*(\.[a-z0-9-]*)?\.[a-zA-Z0-9_-]+$"
        )
    };
}

/// A reserved OCI public IP, optionally assigned to a pod or a private IP.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "oci.k8s.logmein.com",
    version = "v1alpha1",
    kind = "ReservedIP",
    plural = "reservedips",
    singular = "reservedip",
    shortname = "rip",
    namespaced,
    category = "oci",
    doc = "A reserved OCI public IP that the operator allocates in its compartment and assigns to a pod or a private IP of this namespace, as spec asks. status.state says where the address is (allocated: held, assigned: on its target); the Ready condition says whether it is as spec asks and, if not, why.",
    status = "ReservedIPStatus",
    // The seed's columns first (NAME, STATE, PUBLIC IP, POD), then whether it
    // is as spec asks; `-o wide` adds why not and the private IP.
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Public IP","type":"string","jsonPath":".status.publicIPAddress"}"#,
    printcolumn = r#"{"name":"Pod","type":"string","jsonPath":".status.podName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason","priority":1}"#,
    printcolumn = r#"{"name":"Private IP","type":"string","jsonPath":".status.privateIPAddress","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    // `kubectl get rip --field-selector spec.assignment.podName=web-0`
    selectable = ".spec.assignment.podName",
    selectable = ".status.state"
)]
#[x_kube(
    validation = Rule::new("(has(self.publicIPv4Pool) ? self.publicIPv4Pool : '') == (has(oldSelf.publicIPv4Pool) ? oldSelf.publicIPv4Pool : '')")
        .message("publicIPv4Pool is immutable: create a new ReservedIP to draw from another pool"),
    validation = Rule::new("(has(self.publicIPv4Address) ? self.publicIPv4Address : '') == (has(oldSelf.publicIPv4Address) ? oldSelf.publicIPv4Address : '')")
        .message("publicIPv4Address is immutable: create a new ReservedIP for another address"),
)]
#[serde(rename_all = "camelCase")]
pub struct ReservedIPSpec {
    /// Freeform tags put on the OCI public IP. Keys: 1 to 100 ASCII
    /// letters, digits, `-` or `_`; those starting with `k8s-oci-operator-`
    /// (in any case) are reserved. Values: up to 256 characters, without
    /// control or format (invisible) characters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    // `api::tags` holds the same rules for the operator's own check.
    // Bounds keep the CEL rules below within the apiserver's cost budget.
    #[schemars(extend("maxProperties" = 40, "additionalProperties" = {"type": "string", "maxLength": 256}))]
    #[x_kube(
        validation = Rule::new("self.all(k, size(k) >= 1 && size(k) <= 100)").message("tag keys must be 1 to 100 characters"),
        validation = Rule::new("self.all(k, k.matches('^[A-Za-z0-9_-]+$'))").message("tag keys may contain only ASCII letters, digits, '-' and '_'"),
        validation = Rule::new("self.all(k, size(self[k]) <= 256)").message("tag values must be at most 256 characters"),
        validation = Rule::new("self.all(k, !k.lowerAscii().startsWith('k8s-oci-operator-'))").message("tag keys starting with k8s-oci-operator- (in any case) are reserved for the operator"),
        validation = Rule::new(r"self.all(k, !self[k].matches(r'[\p{Cc}\p{Cf}]'))").message("tag values may not contain control or format (invisible) characters"),
    )]
    pub tags: BTreeMap<String, String>,

    /// OCID of a BYOIP public IP pool to allocate from. Immutable.
    #[serde(
        default,
        rename = "publicIPv4Pool",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(
        regex(
            pattern = ocid_pattern!("publicippool")
        ),
        length(max = 255)
    )]
    pub public_ipv4_pool: Option<String>,

    /// A specific address: an existing reserved public IP with this address in
    /// the operator's compartment, which this ReservedIP takes over. Immutable.
    #[serde(
        default,
        rename = "publicIPv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(
        pattern = IPV4_PATTERN
    ))]
    pub public_ipv4_address: Option<String>,

    /// Where the public IP is assigned. Without it the IP stays allocated but unassigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<Assignment>,

    /// What happens to the OCI public IP when this ReservedIP is deleted:
    /// `Delete` releases it to OCI, `Retain` unassigns it, removes the
    /// operator's tags and keeps it in the compartment. Defaults to `Delete`
    /// for addresses the operator allocated and `Retain` for an existing
    /// address taken over through `publicIPv4Address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_policy: Option<ReclaimPolicy>,
}

/// The target of an assignment: exactly one of `podName`, `podSelector`,
/// `nodeName`, `privateIPAddress` or `privateIPId`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(
    validation = Rule::new("[has(self.podName), has(self.podSelector), has(self.nodeName), has(self.privateIPAddress), has(self.privateIPId)].filter(x, x).size() == 1")
        .message("set exactly one of podName, podSelector, nodeName, privateIPAddress or privateIPId"),
    validation = Rule::new("!has(self.podSelector) || (has(self.podSelector.matchLabels) && size(self.podSelector.matchLabels) > 0) || (has(self.podSelector.matchExpressions) && size(self.podSelector.matchExpressions) > 0)")
        .message("podSelector must select by at least one label (an empty selector would take any pod of the namespace)"),
    validation = Rule::new("!has(self.replaceEphemeral) || has(self.nodeName)")
        .message("replaceEphemeral only applies to nodeName"),
    validation = Rule::new("(!has(self.subnetId) && !has(self.vnicId)) || has(self.privateIPAddress)")
        .message("subnetId and vnicId only narrow down privateIPAddress"),
    validation = Rule::new("!(has(self.subnetId) && has(self.vnicId))")
        .message("set at most one of subnetId or vnicId"),
)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// A pod in the ReservedIP's namespace. The IP follows the pod when it is
    /// recreated with a new IP, and is unassigned while the pod is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(max = 253)
    )]
    pub pod_name: Option<String>,

    /// Pods of the ReservedIP's namespace with these labels: the IP is on
    /// one of them that is ready, stays there while it is, and moves to
    /// another ready one when it stops being ready or goes (active/passive
    /// services, singletons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,

    /// A node: the IP goes on its primary private IP (the instance's primary
    /// VNIC), for hostNetwork workloads and fixed egress addresses. Needs
    /// the namespace grant `oci.k8s.logmein.com/node-ips`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
        length(max = 253)
    )]
    pub node_name: Option<String>,

    /// With `nodeName`: when the node's primary private IP has an ephemeral
    /// public IP, delete it to make room for this one. Without it the
    /// operator never touches an ephemeral IP, and reports the conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_ephemeral: Option<bool>,

    /// A private IP address in the VCN.
    #[serde(
        default,
        rename = "privateIPAddress",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(
        pattern = IPV4_PATTERN
    ))]
    pub private_ip_address: Option<String>,

    /// OCID of the subnet of `privateIPAddress`, when the address alone is ambiguous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = ocid_pattern!("subnet")),
        length(max = 255)
    )]
    pub subnet_id: Option<String>,

    /// OCID of the VNIC holding `privateIPAddress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = ocid_pattern!("vnic")),
        length(max = 255)
    )]
    pub vnic_id: Option<String>,

    /// OCID of the private IP itself.
    #[serde(
        default,
        rename = "privateIPId",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(
        regex(
            pattern = ocid_pattern!("privateip")
        ),
        length(max = 255)
    )]
    pub private_ip_id: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReclaimPolicy {
    Delete,
    Retain,
}

/// Where a ReservedIP is in its lifecycle. `allocated` and `assigned` are the
/// resting states; the others are transient or need attention.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// Accepted, nothing allocated yet.
    #[default]
    Pending,
    /// A public IP is being created or taken over.
    Allocating,
    /// Allocated and not assigned (no assignment, or its target is not there).
    Allocated,
    /// Being assigned or moved to its target.
    Assigning,
    /// Assigned to its target.
    Assigned,
    /// Being unassigned.
    Unassigning,
    /// Being released (the ReservedIP is being deleted).
    Releasing,
    /// Cannot make progress until something is fixed; see the conditions.
    Failed,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReservedIPStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    /// The public address.
    #[serde(
        default,
        rename = "publicIPAddress",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ip_address: Option<String>,
    /// OCID of the OCI public IP this ReservedIP owns.
    #[serde(
        default,
        rename = "publicIPId",
        skip_serializing_if = "Option::is_none"
    )]
    pub public_ip_id: Option<String>,
    /// The private IP the public IP is assigned to.
    #[serde(
        default,
        rename = "privateIPAddress",
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ip_address: Option<String>,
    /// OCID of that private IP.
    #[serde(
        default,
        rename = "privateIPId",
        skip_serializing_if = "Option::is_none"
    )]
    pub private_ip_id: Option<String>,
    /// The pod the public IP is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// UID of that pod: a recreated pod with the same name is a new target.
    #[serde(default, rename = "podUID", skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// The `opc-retry-token` of the create call, recorded before the call is
    /// made, so a crash between the call and this status write is recovered
    /// (the same token returns the same public IP) instead of allocating twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_token: Option<String>,
    /// True when the public IP existed before and was taken over through
    /// `publicIPv4Address` (it is retained on delete unless `reclaimPolicy: Delete`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Allocated` and `Assigned`, one of each type at most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// What each WebAssembly policy decided for this ReservedIP in the last
    /// reconcile (which policy set tags, chose the pool, denied the target).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyVerdict>,
}

impl ReservedIPStatus {
    /// Whether the ReservedIP holds a public IP or is creating one (its
    /// allocation marker is written): what counts under a namespace's cap.
    pub fn claims_an_ip(&self) -> bool {
        self.public_ip_id.is_some() || self.allocation_token.is_some()
    }
}

/// One policy's contribution to one decision.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVerdict {
    /// `tagDefaults`, `pool` or `eligibility`.
    pub decision: String,
    /// The policy's name (its ConfigMap or file).
    pub policy: String,
    /// The module version that decided (first hex digits of its SHA-256).
    pub version: String,
    /// What it decided (e.g. `tags`, `chosePool`, `allowed`, `denied`, `failed`).
    pub outcome: String,
    pub message: String,
    /// True for a policy in audit mode: what it would have decided, not
    /// applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audit: bool,
}

/// The CRD as YAML, exactly as checked in under `config/crd/bases/`.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    use kube::CustomResourceExt;
    let header =
        "# Generated by `k8s-oci-operator crd` (make crd) from host/src/api/crd.rs. Do not edit.\n";
    Ok(format!(
        "{header}{}",
        serde_yaml::to_string(&ReservedIP::crd())?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_crd_is_up_to_date() {
        let path =
            crate::checkout_dir().join("../config/crd/bases/oci.k8s.logmein.com_reservedips.yaml");
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == crd_yaml().expect("CRD serialises"),
            "{} is stale: run `make crd` and commit the result",
            path.display()
        );
    }

    #[test]
    fn seed_manifest_parses() {
        let rip: ReservedIP = serde_yaml::from_str(
            "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: my-reserved-ip\nspec:\n  tags:\n    owner: My team\n  assignment:\n    podName: some-pod\n",
        )
        .expect("seed manifest");
        assert_eq!(
            rip.spec.tags.get("owner").map(String::as_str),
            Some("My team")
        );
        assert_eq!(
            rip.spec.assignment.and_then(|a| a.pod_name).as_deref(),
            Some("some-pod")
        );
    }
}
