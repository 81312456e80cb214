//! The benchmark's world, in both halves that must agree: the emulator's seed
//! (instances, VNICs, one secondary private IP per pod address) and the fake
//! kwok nodes (providerID, pod CIDR).
//!
//! The sandbox's three /24 nodes hold 768 pods; the benchmark needs thousands,
//! so each node gets a /22 (1,024 addresses) from the pods subnet
//! 10.0.64.0/18. The first /22 (10.0.64.0) is skipped because it holds the
//! subnet's network address and virtual router, the last (10.0.124.0) because
//! it holds the pod VNICs' own addresses and the broadcast address: 14 nodes.

use k8s_openapi::api::core::v1::Node;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::settings::Settings;

pub const COMPARTMENT: &str = "ocid1.compartment.oc1..bench";
pub const CLUSTER_ID: &str = "bench";
pub const PODS_SUBNET: &str = "ocid1.subnet.oc1.bench.pods";
pub const NODES_SUBNET: &str = "ocid1.subnet.oc1.bench.nodes";
/// The key of tests/oci-emulator/testdata (TEST-ONLY), as in the sandbox seed.
const KEY_ID: &str = "ocid1.tenancy.oc1..sandbox/ocid1.user.oc1..sandbox/2a:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6";
pub const MAX_NODES: usize = 14;

/// Operations of the emulated API, split as the operator's limiter splits them.
pub const WRITE_OPS: [&str; 3] = ["CreatePublicIp", "UpdatePublicIp", "DeletePublicIp"];
const READ_OPS: [&str; 11] = [
    "GetPublicIp",
    "GetPublicIpByIpAddress",
    "GetPublicIpByPrivateIpId",
    "ListPublicIps",
    "ListPrivateIps",
    "GetPrivateIp",
    "GetVnic",
    "GetSubnet",
    "GetPublicIpPool",
    "ListVnicAttachments",
    "ListPublicIpPools",
];

/// The fake nodes, each with a /22 pod CIDR: first those of the pods that
/// ReservedIPs name, then those of the other pods.
#[derive(Debug, Clone, Copy)]
pub struct Topology {
    pub nodes: usize,
    /// Nodes before this index hold the pods ReservedIPs name.
    pub target_nodes: usize,
    target_per_node: usize,
    filler_per_node: usize,
}

impl Topology {
    /// Enough nodes for `targets` named pods and `fillers` others.
    pub fn new(targets: usize, fillers: usize, s: &Settings) -> Result<Self> {
        let target_nodes = targets.div_ceil(s.pods_per_node).max(1);
        let nodes = target_nodes + fillers.div_ceil(s.filler_pods_per_node);
        if nodes > MAX_NODES {
            return Err(Error::Settings(format!(
                "{targets} pods named by ReservedIPs at {} per node and {fillers} others at {} per node need {nodes} nodes; the pods subnet has room for {MAX_NODES}",
                s.pods_per_node, s.filler_pods_per_node
            )));
        }
        Ok(Self {
            nodes,
            target_nodes,
            target_per_node: s.pods_per_node,
            filler_per_node: s.filler_pods_per_node,
        })
    }

    /// The node of the `i`th pod named by a ReservedIP.
    pub fn target_node(&self, i: usize) -> String {
        Self::node_name(i / self.target_per_node)
    }

    /// The node of the `j`th other pod.
    pub fn filler_node(&self, j: usize) -> String {
        Self::node_name(self.target_nodes + j / self.filler_per_node)
    }

    /// Third octet of node `i`'s /22.
    fn octet(i: usize) -> usize {
        68 + 4 * i
    }

    pub fn node_name(i: usize) -> String {
        format!("bench-node-{i}")
    }

    pub fn pod_cidr(i: usize) -> String {
        format!("10.0.{}.0/22", Self::octet(i))
    }

    /// The fake nodes, shaped like tests/cluster/manifests/nodes.yaml.
    pub fn node_objects(&self) -> Result<Vec<Node>> {
        let per_node = self.target_per_node.max(self.filler_per_node) + 2;
        (0..self.nodes)
            .map(|i| {
                let name = Self::node_name(i);
                let cidr = Self::pod_cidr(i);
                let node = json!({
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                        },
                    },
                    "spec": {
                        "providerID": format!("oci://ocid1.instance.oc1.bench.node{i}"),
                        "podCIDR": cidr,
                        "podCIDRs": [cidr],
                    },
                    "status": {
                        "addresses": [
                            {"type": "InternalIP", "address": format!("10.0.0.{}", 10 + i)},
                            {"type": "Hostname", "address": name},
                        ],
                        "allocatable": {"cpu": "64", "memory": "512Gi", "pods": per_node.to_string()},
                        "capacity": {"cpu": "64", "memory": "512Gi", "pods": per_node.to_string()},
                    },
                });
                Ok(serde_json::from_value(node)?)
            })
            .collect()
    }

    /// The emulator's seed: topology, key, timing and fault rules in one document.
    pub fn seed(&self, s: &Settings) -> Value {
        let instances: Vec<Value> = (0..self.nodes)
            .map(|i| {
                let o = Self::octet(i);
                json!({
                    "id": format!("ocid1.instance.oc1.bench.node{i}"),
                    "displayName": format!("node{i}"),
                    "vnics": [
                        {
                            "id": format!("ocid1.vnic.oc1.bench.node{i}-primary"),
                            "subnetId": NODES_SUBNET,
                            "primaryPrivateIp": format!("10.0.0.{}", 10 + i),
                            "ephemeralPublicIp": "auto",
                        },
                        {
                            "id": format!("ocid1.vnic.oc1.bench.node{i}-pods"),
                            "subnetId": PODS_SUBNET,
                            "primaryPrivateIp": format!("10.0.127.{}", 10 + i),
                            "secondaryPrivateIps": [{"range": format!("10.0.{o}.0-10.0.{}.255", o + 3)}],
                        },
                    ],
                })
            })
            .collect();
        json!({
            "tenancyId": "ocid1.tenancy.oc1..sandbox",
            "region": "us-sandbox-1",
            "compartments": [COMPARTMENT],
            // Room for every ReservedIP the scenarios create, and addresses to match.
            "reservedPublicIpLimit": 100_000,
            "oraclePublicRanges": ["198.18.0.0/16"],
            "keys": [{"keyId": KEY_ID, "publicKeyFile": s.public_key}],
            "vcns": [{"id": "ocid1.vcn.oc1.bench.vcn", "cidrBlock": "10.0.0.0/16", "displayName": "bench"}],
            "subnets": [
                {"id": NODES_SUBNET, "vcnId": "ocid1.vcn.oc1.bench.vcn", "cidrBlock": "10.0.0.0/24", "prohibitPublicIpOnVnic": false},
                {"id": PODS_SUBNET, "vcnId": "ocid1.vcn.oc1.bench.vcn", "cidrBlock": "10.0.64.0/18", "prohibitPublicIpOnVnic": false},
            ],
            "instances": instances,
            "timing": {
                "provisioningMs": s.provisioning_ms,
                "assigningMs": s.assigning_ms,
                "unassigningMs": s.unassigning_ms,
                "terminatingMs": s.terminating_ms,
                "terminatedRetentionMs": 60_000,
            },
            "faults": faults(s),
        })
    }
}

/// A rule per operation: an operation with its own rule uses only that rule,
/// and each operation gets its own token bucket, as OCI limits per API.
fn faults(s: &Settings) -> Value {
    let rule = |latency: u64, rate: f64| json!({"latencyMs": latency, "rateLimit": {"perSecond": rate, "burst": rate}});
    let mut operations = serde_json::Map::new();
    for op in WRITE_OPS {
        operations.insert(op.into(), rule(s.write_latency_ms, s.write_rate));
    }
    for op in READ_OPS {
        operations.insert(op.into(), rule(s.read_latency_ms, s.read_rate));
    }
    json!({"default": rule(s.read_latency_ms, s.read_rate), "operations": operations})
}
