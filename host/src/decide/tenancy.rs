//! What a namespace may do, and the rules no namespace can loosen. Pure.
//!
//! The platform team decides; tenants get safe defaults (the model of
//! Kubernetes' own answer to CVE-2020-8554, Service `externalIPs`). By
//! default a ReservedIP may be assigned to the pods of its own namespace and
//! nothing else, may allocate from OCI's pool only, and may hold at most the
//! operator's per-namespace cap. The platform team opens more per namespace
//! with annotations on the Namespace (tenants must not be allowed to edit
//! their Namespace object, which the recommended tenant Role ensures):
//!
//! | annotation | opens |
//! |---|---|
//! | [`PRIVATE_IP_TARGETS`] | `privateIPAddress` / `privateIPId` targets inside these CIDRs or subnets |
//! | [`NODE_IPS`] | targets that are a node's own IP (hostNetwork pods, VNIC primary IPs) |
//! | [`PUBLIC_IP_POOLS`] | these BYOIP pools in `publicIPv4Pool` |
//! | [`MAX_RESERVED_IPS`] | a cap other than the operator's default |
//! | [`WORKLOAD_IPS`] | ReservedIPs the operator creates for labelled pods and StatefulSets (`crate::workloads`) |
//!
//! Whatever the annotations say, a public IP never goes to a private IP a
//! pod of another namespace holds, nor to a pod of the operator's own
//! namespace. These rules apply before the policies, which can only refuse
//! more.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::cidr::{contains, parse_cidr};

/// Namespace annotation: comma-separated CIDRs (`10.0.66.0/24`) and subnet
/// OCIDs inside which `privateIPAddress` / `privateIPId` targets are allowed.
pub const PRIVATE_IP_TARGETS: &str = "oci.k8s.logmein.com/private-ip-targets";
/// Namespace annotation: `"true"` allows targets that are a node's own IP.
pub const NODE_IPS: &str = "oci.k8s.logmein.com/node-ips";
/// Namespace annotation: comma-separated BYOIP pool OCIDs the namespace may
/// name in `publicIPv4Pool`.
pub const PUBLIC_IP_POOLS: &str = "oci.k8s.logmein.com/public-ip-pools";
/// Namespace annotation: how many ReservedIPs of the namespace may hold a
/// public IP (overrides the operator's `--max-reserved-ips-per-namespace`).
pub const MAX_RESERVED_IPS: &str = "oci.k8s.logmein.com/max-reserved-ips";

/// Namespace annotation: `"true"` lets the operator create ReservedIPs for
/// the namespace's labelled pods and StatefulSets (`crate::workloads`).
/// Without it, whoever may create pods could obtain public IPs they may not
/// ask for directly.
pub const WORKLOAD_IPS: &str = "oci.k8s.logmein.com/workload-ips";

/// A private IP range a namespace may target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Cidr(Ipv4Addr, u8),
    Subnet(String),
}

/// What the platform team opened for one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    pub private_ip_targets: Vec<Allowed>,
    pub node_ips: bool,
    /// ReservedIPs may be created for labelled workloads ([`WORKLOAD_IPS`]).
    pub workload_ips: bool,
    pub pools: Vec<String>,
    /// `None`: the operator's default cap.
    pub max_reserved_ips: Option<u32>,
}

impl Grants {
    /// The grants a namespace's annotations make, and a message for each
    /// annotation that could not be read (it then opens nothing).
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> (Grants, Vec<String>) {
        let mut grants = Grants::default();
        let mut problems = Vec::new();
        let list = |key: &str| {
            annotations
                .get(key)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let mut targets = Vec::new();
        for item in list(PRIVATE_IP_TARGETS) {
            if item.starts_with("ocid1.subnet.") {
                targets.push(Allowed::Subnet(item));
            } else if let Some((net, bits)) = parse_cidr(&item) {
                targets.push(Allowed::Cidr(net, bits));
            } else {
                problems.push(format!(
                    "annotation {PRIVATE_IP_TARGETS}: '{item}' is neither a CIDR nor a subnet OCID"
                ));
                // One bad entry voids the list: a typo must not open more than meant.
                targets.clear();
                break;
            }
        }
        grants.private_ip_targets = targets;
        let mut flag = |key: &str| match annotations.get(key).map(|v| v.trim()) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                problems.push(format!(
                    "annotation {key}: '{other}' is not \"true\" or \"false\""
                ));
                false
            }
        };
        grants.node_ips = flag(NODE_IPS);
        grants.workload_ips = flag(WORKLOAD_IPS);
        grants.pools = list(PUBLIC_IP_POOLS);
        if let Some(v) = annotations.get(MAX_RESERVED_IPS) {
            match v.trim().parse::<u32>() {
                Ok(n) => grants.max_reserved_ips = Some(n),
                Err(_) => {
                    problems.push(format!(
                        "annotation {MAX_RESERVED_IPS}: '{v}' is not a whole number; using 0"
                    ));
                    // Fail closed: an unreadable cap allows nothing new.
                    grants.max_reserved_ips = Some(0);
                }
            }
        }
        (grants, problems)
    }

    fn allows_private_ip(&self, address: Option<Ipv4Addr>, subnet_id: Option<&str>) -> bool {
        self.private_ip_targets.iter().any(|a| match a {
            Allowed::Cidr(net, bits) => address.is_some_and(|ip| contains(Some((*net, *bits)), ip)),
            Allowed::Subnet(s) => subnet_id == Some(s.as_str()),
        })
    }
}

/// What a pass saw of the ReservedIP's namespace and target: the input of
/// the checks below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tenancy {
    pub grants: Grants,
    /// The namespace's annotations that could not be read (they open nothing).
    pub problems: Vec<String>,
    /// The operator's own namespace: its pods are never a target.
    pub operator_namespace: Option<String>,
    /// The operator's per-namespace cap (`None`: no cap unless annotated).
    pub default_cap: Option<u32>,
    /// How many other ReservedIPs of the namespace hold or are allocating a
    /// public IP; `None` when not counted (this one holds or is creating one).
    pub holding: Option<usize>,
    pub facts: TargetFacts,
}

impl Tenancy {
    /// The checks' view for a ReservedIP of `namespace`.
    pub fn tenant<'a>(&'a self, namespace: &'a str) -> Tenant<'a> {
        Tenant {
            namespace,
            operator_namespace: self.operator_namespace.as_deref(),
            grants: &self.grants,
        }
    }

    /// A refusal's message, with the annotations that could not be read
    /// (the likely reason a door the platform team meant to open is shut).
    pub fn explain(&self, (reason, message): Refusal) -> Refusal {
        if self.problems.is_empty() {
            return (reason, message);
        }
        (reason, format!("{message} ({})", self.problems.join("; ")))
    }
}

/// What the cluster says about a resolved target, beyond what OCI says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetFacts {
    /// The target is a pod (by `podName`); `host_network`: it uses its
    /// node's own IP.
    pub pod: Option<PodFacts>,
    /// Namespaces of the pods that hold the target's address now (for
    /// `privateIPAddress` / `privateIPId` targets).
    pub pods_at_address: Vec<String>,
    /// The target is a node's own IP, named by `nodeName`.
    pub node: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub host_network: bool,
}

/// The namespace a ReservedIP lives in, and where the operator runs.
#[derive(Debug, Clone, Copy)]
pub struct Tenant<'a> {
    pub namespace: &'a str,
    /// The operator's own namespace, if known: its pods are never a target.
    pub operator_namespace: Option<&'a str>,
    pub grants: &'a Grants,
}

/// A refusal: a condition reason and a message that says what to change
/// (and never names another namespace).
pub type Refusal = (&'static str, String);

/// Whether `tenant` may put a public IP on this resolved target. `primary`:
/// OCI says the private IP is its VNIC's primary IP (a node's own address).
pub fn check_target(
    tenant: &Tenant<'_>,
    address: &str,
    subnet_id: Option<&str>,
    primary: bool,
    facts: &TargetFacts,
) -> Result<(), Refusal> {
    let host_network = facts.pod.as_ref().is_some_and(|p| p.host_network);
    if let (Some(own), Some(pod)) = (tenant.operator_namespace, &facts.pod)
        && pod.namespace == own
    {
        return Err(operator_pod());
    }
    let node_ip = || {
        if (primary || host_network) && !tenant.grants.node_ips {
            return Err((
                "NodeIPNotAllowed",
                format!(
                    "{address} is a node's own IP (hostNetwork pod or VNIC primary IP); the platform team allows node IPs with the namespace annotation {NODE_IPS}=\"true\""
                ),
            ));
        }
        Ok(())
    };
    if facts.node {
        // A node's primary IP: the node-IPs door, and nothing else, opens it.
        return if tenant.grants.node_ips {
            Ok(())
        } else {
            Err((
                "NodeIPNotAllowed",
                format!(
                    "{address} is a node's own IP (nodeName); the platform team allows node IPs with the namespace annotation {NODE_IPS}=\"true\""
                ),
            ))
        };
    }
    if facts.pod.is_some() {
        // A pod of the ReservedIP's own namespace (podName is looked up there only).
        return node_ip();
    }
    if tenant.grants.private_ip_targets.is_empty() {
        return Err((
            "PrivateIPTargetNotAllowed",
            format!(
                "this namespace may assign public IPs to its own pods only (assignment.podName); the platform team allows private IP targets with the namespace annotation {PRIVATE_IP_TARGETS}"
            ),
        ));
    }
    if !tenant
        .grants
        .allows_private_ip(address.parse().ok(), subnet_id)
    {
        return Err((
            "PrivateIPNotAllowed",
            format!(
                "private IP {address} is outside the CIDRs and subnets the namespace annotation {PRIVATE_IP_TARGETS} allows"
            ),
        ));
    }
    node_ip()?;
    for ns in &facts.pods_at_address {
        if tenant.operator_namespace == Some(ns.as_str()) {
            return Err(operator_pod());
        }
        if ns != tenant.namespace {
            return Err((
                "PrivateIPHeldByOtherNamespace",
                format!("private IP {address} is held by a pod of another namespace"),
            ));
        }
    }
    Ok(())
}

fn operator_pod() -> Refusal {
    (
        "OperatorPod",
        "the target is a pod of the operator's own namespace, which never gets a public IP".into(),
    )
}

/// Whether `tenant` may name `pool` in `publicIPv4Pool`.
pub fn check_pool(tenant: &Tenant<'_>, pool: &str) -> Result<(), Refusal> {
    if tenant.grants.pools.iter().any(|p| p == pool) {
        return Ok(());
    }
    Err((
        "PoolNotAllowed",
        format!(
            "this namespace may not allocate from BYOIP pool {pool}; the platform team allows pools with the namespace annotation {PUBLIC_IP_POOLS}"
        ),
    ))
}

/// Whether one more ReservedIP of the namespace may hold a public IP when
/// `holding` already do (this one not among them).
pub fn check_quota(
    tenant: &Tenant<'_>,
    default_cap: Option<u32>,
    holding: usize,
) -> Result<(), Refusal> {
    let Some(cap) = tenant.grants.max_reserved_ips.or(default_cap) else {
        return Ok(());
    };
    if holding < cap as usize {
        return Ok(());
    }
    Err((
        "NamespaceQuotaExceeded",
        format!(
            "{holding} ReservedIPs of this namespace already hold public IPs, the namespace's cap is {cap}; delete one, or ask the platform team to raise the cap (namespace annotation {MAX_RESERVED_IPS})"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(pairs: &[(&str, &str)]) -> (Grants, Vec<String>) {
        let a = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Grants::from_annotations(&a)
    }

    fn tenant(g: &Grants) -> Tenant<'_> {
        Tenant {
            namespace: "team-b",
            operator_namespace: Some("oci-operator"),
            grants: g,
        }
    }

    fn address_target(at: &[&str]) -> TargetFacts {
        TargetFacts {
            pod: None,
            pods_at_address: at.iter().map(|s| s.to_string()).collect(),
            node: false,
        }
    }

    fn pod(ns: &str, host_network: bool) -> TargetFacts {
        TargetFacts {
            pod: Some(PodFacts {
                namespace: ns.into(),
                host_network,
            }),
            pods_at_address: vec![],
            node: false,
        }
    }

    fn reason(r: Result<(), Refusal>) -> &'static str {
        r.err().map(|(r, _)| r).unwrap_or("ok")
    }

    /// The refusal (or "ok") for a target given without a subnet.
    fn at(t: &Tenant<'_>, address: &str, primary: bool, facts: &TargetFacts) -> &'static str {
        reason(check_target(t, address, None, primary, facts))
    }

    #[test]
    fn by_default_only_own_pods() {
        let g = Grants::default();
        let t = tenant(&g);
        assert_eq!(at(&t, "10.0.65.3", false, &pod("team-b", false)), "ok");
        assert_eq!(
            at(&t, "10.0.66.9", false, &address_target(&[])),
            "PrivateIPTargetNotAllowed"
        );
        assert_eq!(
            at(&t, "10.0.0.5", false, &pod("team-b", true)),
            "NodeIPNotAllowed",
            "a hostNetwork pod sits on its node's IP"
        );
        assert_eq!(
            at(&t, "10.0.0.5", true, &pod("team-b", false)),
            "NodeIPNotAllowed",
            "OCI's primary IP of a VNIC is a node's"
        );
    }

    #[test]
    fn a_node_target_needs_the_node_ips_grant_and_no_other() {
        let node = TargetFacts {
            node: true,
            ..TargetFacts::default()
        };
        let g = Grants::default();
        assert_eq!(
            at(&tenant(&g), "10.0.0.11", true, &node),
            "NodeIPNotAllowed"
        );
        // Private IP ranges do not open a node.
        let (g, _) = grants(&[(PRIVATE_IP_TARGETS, "10.0.0.0/16")]);
        assert_eq!(
            at(&tenant(&g), "10.0.0.11", true, &node),
            "NodeIPNotAllowed"
        );
        let (g, _) = grants(&[(NODE_IPS, "true")]);
        assert_eq!(at(&tenant(&g), "10.0.0.11", true, &node), "ok");
    }

    #[test]
    fn workload_ips_are_opened_by_their_own_annotation() {
        assert!(!grants(&[]).0.workload_ips);
        assert!(grants(&[(WORKLOAD_IPS, "true")]).0.workload_ips);
        let (g, problems) = grants(&[(WORKLOAD_IPS, "yes")]);
        assert!(!g.workload_ips, "an unreadable value opens nothing");
        assert!(problems[0].contains(WORKLOAD_IPS));
    }

    #[test]
    fn granted_ranges_open_private_ip_targets_but_never_others_pods() {
        let (g, problems) = grants(&[(
            PRIVATE_IP_TARGETS,
            "10.0.66.0/24, ocid1.subnet.oc1.sandbox.extra",
        )]);
        assert!(problems.is_empty());
        let t = tenant(&g);
        let ok = |addr, subnet| reason(check_target(&t, addr, subnet, false, &address_target(&[])));
        assert_eq!(ok("10.0.66.9", None), "ok");
        assert_eq!(
            ok("10.0.99.9", Some("ocid1.subnet.oc1.sandbox.extra")),
            "ok"
        );
        assert_eq!(ok("10.0.65.9", None), "PrivateIPNotAllowed");
        assert_eq!(
            at(&t, "10.0.66.9", false, &address_target(&["team-a"])),
            "PrivateIPHeldByOtherNamespace"
        );
        assert_eq!(
            at(&t, "10.0.66.9", false, &address_target(&["team-b"])),
            "ok"
        );
        assert_eq!(
            at(&t, "10.0.66.9", false, &address_target(&["oci-operator"])),
            "OperatorPod"
        );
        assert_eq!(
            at(&t, "10.0.66.9", true, &address_target(&[])),
            "NodeIPNotAllowed",
            "a range grant does not open node IPs"
        );
        assert_eq!(
            at(
                &tenant(&Grants::default()),
                "10.0.66.9",
                true,
                &address_target(&[])
            ),
            "PrivateIPTargetNotAllowed",
            "without a grant, the first thing to say"
        );
        let (g, _) = grants(&[(PRIVATE_IP_TARGETS, "10.0.0.0/16"), (NODE_IPS, "true")]);
        assert_eq!(
            at(&tenant(&g), "10.0.0.5", true, &address_target(&[])),
            "ok"
        );
    }

    #[test]
    fn the_operators_pods_are_never_a_target() {
        let (g, _) = grants(&[(NODE_IPS, "true")]);
        assert_eq!(
            at(&tenant(&g), "10.0.65.3", false, &pod("oci-operator", false)),
            "OperatorPod"
        );
    }

    #[test]
    fn unreadable_annotations_open_nothing() {
        let (g, problems) = grants(&[
            (PRIVATE_IP_TARGETS, "10.0.66.0/24,10.0.0.0/99"),
            (NODE_IPS, "yes"),
            (MAX_RESERVED_IPS, "lots"),
        ]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(g.private_ip_targets.is_empty());
        assert!(!g.node_ips);
        assert_eq!(g.max_reserved_ips, Some(0));
    }

    #[test]
    fn pools_and_quota() {
        let (g, _) = grants(&[(PUBLIC_IP_POOLS, "ocid1.publicippool.oc1.x.a")]);
        let t = tenant(&g);
        assert_eq!(reason(check_pool(&t, "ocid1.publicippool.oc1.x.a")), "ok");
        assert_eq!(
            reason(check_pool(&t, "ocid1.publicippool.oc1.x.b")),
            "PoolNotAllowed"
        );
        assert_eq!(reason(check_quota(&t, Some(2), 1)), "ok");
        assert_eq!(
            reason(check_quota(&t, Some(2), 2)),
            "NamespaceQuotaExceeded"
        );
        assert_eq!(reason(check_quota(&t, None, 500)), "ok", "no cap set");
        let (g, _) = grants(&[(MAX_RESERVED_IPS, "5")]);
        assert_eq!(reason(check_quota(&tenant(&g), Some(2), 4)), "ok");
    }
}
