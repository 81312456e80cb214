//! Resolving an assignment (a pod, a private IP address or OCID) to the OCI
//! private IP it means.
//!
//! A pod's IP is found on its node's instance: node `spec.providerID`
//! (`oci://<instance OCID>`) -> the instance's VNIC attachments -> the VNIC
//! whose subnet contains the pod IP -> ListPrivateIps(subnet, address). The
//! instance's VNICs and the subnets change rarely and are cached; the last
//! lookup is made every time, because on OKE a private IP is handed on to
//! the next pod (in a burst, pods on one VNIC share it: one ListPrivateIps of
//! the VNIC, begun after each of them asked, see `private_ips_at`). The
//! private IP found must sit on one of the node's own VNICs, so an address
//! that moved elsewhere is never mistaken for the pod's.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;

use futures::FutureExt;

use crate::api::crd::Assignment;
use crate::cache::gather::Gather;
use crate::decide::{ResolvedTarget, Target};
use crate::oci::{Counted, OciError, OciNetwork, PrivateIp, PrivateIpFilter};

mod addresses;
use crate::cidr::{contains, parse_cidr};
pub use addresses::usable_pod_ip;

/// How long an instance's VNIC list and subnets are trusted.
const CACHE_TTL: Duration = Duration::from_secs(600);
/// The longest a pod's lookup gathers with others on its VNIC.
const MAX_GATHER: Duration = Duration::from_secs(6);
/// The shortest: a few reads' time, so lookups asked while one is in flight,
/// or soon after (the passes of a new burst start over a moment), share the next.
const MIN_GATHER: Duration = Duration::from_millis(150);

#[derive(Debug, Clone)]
struct VnicInfo {
    vnic_id: String,
    subnet_id: String,
    cidr: Option<(Ipv4Addr, u8)>,
    public_allowed: bool,
}

#[derive(Debug, Clone)]
struct SubnetInfo {
    cidr: Option<(Ipv4Addr, u8)>,
    public_allowed: bool,
}

/// Resolves assignments; shared by all reconciles.
pub struct TargetResolver {
    oci: Arc<dyn OciNetwork>,
    compartment_id: String,
    /// Subnets searched for a `privateIPAddress` given without subnet or VNIC.
    subnet_ids: Vec<String>,
    instances: Mutex<HashMap<String, (Instant, Vec<VnicInfo>)>>,
    subnets: Mutex<HashMap<String, (Instant, SubnetInfo)>>,
    /// Nodes' primary private IPs, by instance OCID.
    node_ips: Mutex<HashMap<String, (Instant, PrivateIp)>>,
    /// The VNICs' private IP listings gathering, by VNIC OCID.
    vnic_listings: Gather<Result<Arc<Vec<PrivateIp>>, OciError>>,
    /// Pods being looked up now.
    resolving: AtomicUsize,
    /// New ReservedIPs' pods being read (or waiting for their turn), whose
    /// lookups follow.
    reading: AtomicUsize,
}

impl TargetResolver {
    pub fn new(oci: Arc<dyn OciNetwork>, compartment_id: String, subnet_ids: Vec<String>) -> Self {
        Self {
            oci,
            compartment_id,
            subnet_ids,
            instances: Mutex::default(),
            subnets: Mutex::default(),
            node_ips: Mutex::default(),
            vnic_listings: Gather::default(),
            resolving: AtomicUsize::new(0),
            reading: AtomicUsize::new(0),
        }
    }

    /// Counts a new ReservedIP's pod read while the guard lives: its lookup
    /// may follow, so the first VNIC listing of a burst need not wait for
    /// more than are coming.
    pub(crate) fn pod_lookup(&self) -> Counted<'_> {
        Counted::new(&self.reading)
    }

    /// The target of a pod. `known` is what status recorded last time: the
    /// same pod (UID) at the same IP still has the same private IP, so no
    /// OCI call is needed for it.
    pub async fn resolve_pod(
        &self,
        pod: &Pod,
        node: Option<&Node>,
        known: Option<&ResolvedTarget>,
    ) -> Result<Target, OciError> {
        let name = pod.name_any();
        let addr = match usable_pod_ip(pod) {
            Ok(addr) => addr,
            Err((reason, message)) => return Ok(absent(reason, message)),
        };
        let ip = addr.to_string();
        let ip = ip.as_str();
        let uid = pod.uid().unwrap_or_default();
        if let Some(k) = known
            && k.private_ip_address == ip
            && k.pod.as_ref().is_some_and(|(n, u)| *n == name && *u == uid)
        {
            return Ok(Target::PrivateIp(k.clone()));
        }
        let Some(node) = node else {
            return Ok(absent(
                "PodNotReady",
                format!("pod {name} is not on a node yet"),
            ));
        };
        let instance_id = match instance_of(node) {
            Ok(id) => id,
            Err((reason, message)) => return Ok(refused(reason, message)),
        };

        let mut vnics = self.instance_vnics(instance_id, false).await?;
        if !vnics.iter().any(|v| contains(v.cidr, addr)) {
            // OKE attaches pod VNICs on demand: look again before giving up.
            vnics = self.instance_vnics(instance_id, true).await?;
        }
        let Some(vnic) = vnics.iter().find(|v| contains(v.cidr, addr)) else {
            return Ok(refused(
                "PodIPNotInVCN",
                format!(
                    "pod IP {ip} is in none of the subnets of instance {instance_id}; pod IPs must come from VCN subnets (or use hostNetwork)"
                ),
            ));
        };
        if !vnic.public_allowed {
            return Ok(refused(
                "PrivateSubnet",
                format!(
                    "pod IP {ip} is in private subnet {}, which cannot hold public IPs",
                    vnic.subnet_id
                ),
            ));
        }
        let in_subnet: Vec<&VnicInfo> = vnics.iter().filter(|v| contains(v.cidr, addr)).collect();
        let found = self.private_ips_at(ip, &vnic.subnet_id, &in_subnet).await?;
        let on_node: Vec<&PrivateIp> = found
            .iter()
            .filter(|p| {
                p.vnic_id
                    .as_deref()
                    .is_some_and(|v| vnics.iter().any(|n| n.vnic_id == v))
            })
            .collect();
        match on_node.as_slice() {
            [p] => Ok(Target::PrivateIp(ResolvedTarget {
                private_ip_id: p.id.clone(),
                private_ip_address: ip.to_string(),
                pod: Some((name, uid)),
                subnet_id: p.subnet_id.clone(),
                primary: p.is_primary == Some(true),
            })),
            _ => Ok(absent(
                "PrivateIPNotFound",
                format!("OCI has no private IP {ip} on the VNICs of instance {instance_id} (yet)"),
            )),
        }
    }

    /// The private IPs with address `ip` in subnet `subnet_id` (`vnics`:
    /// the node's VNICs in it). Alone, one ListPrivateIps by address. When
    /// other pods are being looked up too, or writes wait for the rate limit
    /// (a burst), the VNICs' listings are gathered, for about as long as the
    /// write that follows would wait anyway: one listing then answers for
    /// every pod on the VNIC that asked before it began (one that no other
    /// pass joined reads by address after all).
    async fn private_ips_at(
        &self,
        ip: &str,
        subnet_id: &str,
        vnics: &[&VnicInfo],
    ) -> Result<Vec<PrivateIp>, OciError> {
        let me = Counted::new(&self.resolving);
        let queued_writes = self.oci.write_wait();
        let by_address = PrivateIpFilter::AddressInSubnet {
            subnet_id: subnet_id.to_string(),
            ip_address: ip.to_string(),
        };
        if vnics.is_empty() || (me.others == 0 && queued_writes.is_zero()) {
            return self.oci.list_private_ips(&by_address).await;
        }
        // Until shortly before the writes already queued are done: the
        // writes of this gathering follow them without a gap.
        let wait = (queued_writes * 3 / 4).clamp(MIN_GATHER, MAX_GATHER);
        // New ReservedIPs' pods being read. (Not counted above: whether a
        // pod being read has its address yet, and a lookup follows, is not
        // known; counted there, a pass alone would list the whole VNIC,
        // two pages in the benchmark, where one call by address does.)
        let coming = self.reading.load(Ordering::Relaxed);
        let listings = vnics.iter().map(|v| {
            // The first of a burst begins once as many joined as can write
            // at once: their writes go as soon as it is answered (time lost
            // while the rate limit's bucket sits full is never made up),
            // and the others, whose writes wait for the rate anyway, gather
            // for the next (as long as the writes queued, or a while).
            // (No more than are known to come: this pass and the new
            // ReservedIPs' pods being read.)
            let at_once = match self.vnic_listings.in_flight(&v.vnic_id) {
                false => self.oci.writes_at_once().min(coming + 1),
                true => 0,
            };
            let enough = if at_once == 0 { usize::MAX } else { at_once };
            let oci = Arc::clone(&self.oci);
            let vnic_id = v.vnic_id.clone();
            let alone = by_address.clone();
            let read = move |joined| {
                async move {
                    if joined != 1 {
                        let filter = PrivateIpFilter::Vnic { vnic_id };
                        return oci.list_private_ips(&filter).await.map(Arc::new);
                    }
                    // No other pass joined after all (a straggler of a
                    // burst): one call by address rather than the VNIC's
                    // pages, kept to this VNIC like the listing would be.
                    let found = oci.list_private_ips(&alone).await?;
                    Ok(Arc::new(
                        found
                            .into_iter()
                            .filter(|p| p.vnic_id.as_deref() == Some(vnic_id.as_str()))
                            .collect(),
                    ))
                }
                .boxed()
            };
            self.vnic_listings.join(&v.vnic_id, wait, enough, read)
        });
        let mut found = Vec::new();
        for listed in futures::future::join_all(listings).await {
            found.extend(
                listed?
                    .iter()
                    .filter(|p| p.ip_address.as_deref() == Some(ip))
                    .cloned(),
            );
        }
        Ok(found)
    }

    /// The target of a `nodeName` assignment: the node's primary private IP
    /// (on its instance's primary VNIC). It never changes while the
    /// instance lives, so it is cached with the instance's VNICs.
    pub async fn resolve_node(&self, node: &Node) -> Result<Target, OciError> {
        let name = node.name_any();
        let instance_id = match instance_of(node) {
            Ok(id) => id,
            Err((reason, message)) => return Ok(refused(reason, message)),
        };
        let cached = lock(&self.node_ips)
            .get(instance_id)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, p)| p.clone());
        if let Some(p) = cached {
            return self.checked(p).await;
        }
        for vnic in self.instance_vnics(instance_id, false).await? {
            if self.oci.get_vnic(&vnic.vnic_id).await?.is_primary != Some(true) {
                continue;
            }
            let filter = PrivateIpFilter::Vnic {
                vnic_id: vnic.vnic_id.clone(),
            };
            let primary = self
                .oci
                .list_private_ips(&filter)
                .await?
                .into_iter()
                .find(|p| p.is_primary == Some(true));
            if let Some(p) = primary {
                lock(&self.node_ips).insert(instance_id.to_string(), (Instant::now(), p.clone()));
                return self.checked(p).await;
            }
        }
        Ok(absent(
            "PrivateIPNotFound",
            format!(
                "OCI shows no primary private IP on instance {instance_id} of node {name} (yet)"
            ),
        ))
    }

    /// The target of a `privateIPAddress` or `privateIPId` assignment.
    pub async fn resolve_private_ip(&self, a: &Assignment) -> Result<Target, OciError> {
        if let Some(id) = &a.private_ip_id {
            return match self.oci.get_private_ip(id).await {
                Ok(p) => self.checked(p).await,
                Err(e) if e.is_not_found() => Ok(refused(
                    "PrivateIPNotFound",
                    format!("private IP {id} does not exist"),
                )),
                Err(e) => Err(e),
            };
        }
        let Some(ip) = a.private_ip_address.as_deref() else {
            return Ok(Target::Unassigned);
        };
        let addr: Ipv4Addr = match ip.parse() {
            Ok(a) => a,
            Err(_) => {
                return Ok(refused(
                    "InvalidAddress",
                    format!("'{ip}' is not an IPv4 address"),
                ));
            }
        };
        let candidates: Vec<PrivateIp> = if let Some(vnic_id) = &a.vnic_id {
            let all = self
                .oci
                .list_private_ips(&PrivateIpFilter::Vnic {
                    vnic_id: vnic_id.clone(),
                })
                .await?;
            all.into_iter()
                .filter(|p| p.ip_address.as_deref() == Some(ip))
                .collect()
        } else {
            let subnets = match &a.subnet_id {
                Some(s) => vec![s.clone()],
                None => {
                    let mut within = Vec::new();
                    for s in &self.subnet_ids {
                        if contains(self.subnet(s).await?.cidr, addr) {
                            within.push(s.clone());
                        }
                    }
                    within
                }
            };
            if subnets.is_empty() {
                return Ok(refused(
                    "SubnetUnknown",
                    format!(
                        "{ip} is in none of the operator's configured subnets; set assignment.subnetId or assignment.vnicId"
                    ),
                ));
            }
            let mut found = Vec::new();
            for s in subnets {
                let filter = PrivateIpFilter::AddressInSubnet {
                    subnet_id: s,
                    ip_address: ip.to_string(),
                };
                found.extend(self.oci.list_private_ips(&filter).await?);
            }
            found
        };
        match candidates.len() {
            0 => Ok(absent(
                "PrivateIPNotFound",
                format!("OCI has no private IP {ip} where the assignment says"),
            )),
            1 => {
                self.checked(candidates.into_iter().next().expect("one candidate"))
                    .await
            }
            n => Ok(refused(
                "PrivateIPAmbiguous",
                format!(
                    "{n} private IPs have address {ip}; set assignment.subnetId or assignment.vnicId"
                ),
            )),
        }
    }

    /// Refuses private IPs in private subnets; resolves the rest.
    async fn checked(&self, p: PrivateIp) -> Result<Target, OciError> {
        if let Some(subnet_id) = &p.subnet_id
            && !self.subnet(subnet_id).await?.public_allowed
        {
            return Ok(refused(
                "PrivateSubnet",
                format!("private IP {} is in private subnet {subnet_id}", p.id),
            ));
        }
        Ok(Target::PrivateIp(ResolvedTarget {
            private_ip_address: p.ip_address.clone().unwrap_or_default(),
            pod: None,
            subnet_id: p.subnet_id.clone(),
            primary: p.is_primary == Some(true),
            private_ip_id: p.id,
        }))
    }

    async fn instance_vnics(
        &self,
        instance_id: &str,
        refresh: bool,
    ) -> Result<Vec<VnicInfo>, OciError> {
        if !refresh
            && let Some((at, v)) = lock(&self.instances).get(instance_id)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(v.clone());
        }
        let attachments = self
            .oci
            .list_vnic_attachments(&self.compartment_id, Some(instance_id))
            .await?;
        let mut vnics = Vec::new();
        for att in attachments {
            if att
                .lifecycle_state
                .as_deref()
                .is_some_and(|s| s != "ATTACHED")
            {
                continue;
            }
            let Some(vnic_id) = att.vnic_id else { continue };
            let subnet_id = match att.subnet_id {
                Some(s) => s,
                None => match self.oci.get_vnic(&vnic_id).await?.subnet_id {
                    Some(s) => s,
                    None => continue,
                },
            };
            let subnet = self.subnet(&subnet_id).await?;
            vnics.push(VnicInfo {
                vnic_id,
                subnet_id,
                cidr: subnet.cidr,
                public_allowed: subnet.public_allowed,
            });
        }
        lock(&self.instances).insert(instance_id.to_string(), (Instant::now(), vnics.clone()));
        Ok(vnics)
    }

    async fn subnet(&self, id: &str) -> Result<SubnetInfo, OciError> {
        if let Some((at, s)) = lock(&self.subnets).get(id)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(s.clone());
        }
        let s = self.oci.get_subnet(id).await?;
        let info = SubnetInfo {
            cidr: s.cidr_block.as_deref().and_then(parse_cidr),
            public_allowed: s.prohibit_public_ip_on_vnic != Some(true),
        };
        lock(&self.subnets).insert(id.to_string(), (Instant::now(), info.clone()));
        Ok(info)
    }
}

/// The OCI instance of a node, from its `spec.providerID`
/// (`oci://<instance OCID>`), or the refusal that says it has none.
fn instance_of(node: &Node) -> Result<&str, (&'static str, String)> {
    let provider = node
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .unwrap_or_default();
    provider
        .strip_prefix("oci://")
        .filter(|i| i.starts_with("ocid1.instance."))
        .ok_or_else(|| {
            (
                "NodeNotOnOCI",
                format!(
                    "node {} has providerID '{provider}', not oci://<instance OCID>",
                    node.name_any()
                ),
            )
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a cache, not an invariant: keep using it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn absent(reason: &'static str, message: String) -> Target {
    Target::Absent { reason, message }
}

fn refused(reason: &'static str, message: String) -> Target {
    Target::Refused { reason, message }
}

#[cfg(test)]
mod tests;
