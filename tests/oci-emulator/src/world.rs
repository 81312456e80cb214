//! The emulated OCI world and the rules of every operation, without HTTP.
//!
//! All methods take the current `Instant` from the caller, so tests can drive
//! time. Lifecycle transitions that are due are applied by [`World::tick`],
//! which the API layer calls before every operation.

use crate::error::ApiError;
use crate::lifecycle::{self, Advanced, Timing};
use crate::model::*;
use crate::net::Cidr;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How long OCI honours an opc-retry-token.
const RETRY_TOKEN_VALIDITY: Duration = Duration::from_secs(24 * 60 * 60);

/// A remembered successful CreatePublicIp, for opc-retry-token replays.
#[derive(Debug, Clone)]
struct RetryRecord {
    request: Value,
    response: PublicIp,
    at: Instant,
    /// Set when a later operation (deleting the IP) invalidated the token.
    invalidated: bool,
}

/// Filters of ListPublicIps, already validated by the API layer.
#[derive(Debug, Clone)]
pub struct PublicIpFilter {
    pub compartment_id: String,
    pub scope: Scope,
    pub availability_domain: Option<String>,
    pub lifetime: Option<Lifetime>,
    pub public_ip_pool_id: Option<String>,
}

/// Filters of ListPrivateIps, already validated by the API layer.
#[derive(Debug, Clone, Default)]
pub struct PrivateIpFilter {
    pub subnet_id: Option<String>,
    pub vnic_id: Option<String>,
    pub ip_address: Option<String>,
    /// `ASSIGNED` or `AVAILABLE`.
    pub ip_state: Option<String>,
    pub lifetime: Option<Lifetime>,
}

/// Everything the emulator knows.
#[derive(Debug, Clone)]
pub struct World {
    pub tenancy_id: String,
    pub region: String,
    /// Known compartments; empty means "accept any compartment id".
    pub compartments: BTreeSet<String>,
    /// Service limit on RESERVED public IPs per compartment.
    pub reserved_limit: usize,
    /// Where Oracle-chosen (non-pool) public addresses come from.
    pub oracle_ranges: Vec<Cidr>,
    pub timing: Timing,
    pub vcns: BTreeMap<String, Vcn>,
    pub subnets: BTreeMap<String, Subnet>,
    pub instances: BTreeMap<String, Instance>,
    pub vnics: BTreeMap<String, Vnic>,
    pub vnic_attachments: BTreeMap<String, VnicAttachment>,
    pub private_ips: BTreeMap<String, PrivateIp>,
    pub public_ips: BTreeMap<String, PublicIp>,
    pub pools: BTreeMap<String, PublicIpPool>,
    /// Every period a public IP was attached to a private IP, in order, so a
    /// test can prove an IP never reached a target, not even briefly (state
    /// sampling would miss a short attachment).
    pub attachments: Vec<Attachment>,
    /// Every public IP CreatePublicIp made (not replays of a retry token), as
    /// created, so a test can count IPs made for one owner even after they
    /// are deleted and gone.
    pub creations: Vec<PublicIp>,
    /// Eventual consistency: for this long after CreatePublicIp, reads of the
    /// new IP (GetPublicIp, ListPublicIps) do not see it yet. Zero by default.
    pub read_lag: Duration,
    retry_tokens: HashMap<String, RetryRecord>,
}

/// A public IP attached to a private IP from `from` (the accepted request)
/// until `until` (when the unassign, move or delete that ended it completes;
/// `None` while it lasts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub public_ip_id: String,
    pub private_ip_id: String,
    pub from: Instant,
    pub until: Option<Instant>,
}

impl World {
    /// A world with no resources.
    pub fn empty(tenancy_id: &str, region: &str) -> Self {
        Self {
            tenancy_id: tenancy_id.to_string(),
            region: region.to_string(),
            compartments: BTreeSet::new(),
            reserved_limit: 50,
            oracle_ranges: Vec::new(),
            timing: Timing::default(),
            vcns: BTreeMap::new(),
            subnets: BTreeMap::new(),
            instances: BTreeMap::new(),
            vnics: BTreeMap::new(),
            vnic_attachments: BTreeMap::new(),
            private_ips: BTreeMap::new(),
            public_ips: BTreeMap::new(),
            pools: BTreeMap::new(),
            attachments: Vec::new(),
            creations: Vec::new(),
            read_lag: Duration::ZERO,
            retry_tokens: HashMap::new(),
        }
    }

    /// Starts an attachment period (after ending any open one of the IP).
    fn attach(&mut self, public_ip_id: &str, private_ip_id: &str, at: Instant) {
        self.detach(public_ip_id, at);
        self.attachments.push(Attachment {
            public_ip_id: public_ip_id.to_string(),
            private_ip_id: private_ip_id.to_string(),
            from: at,
            until: None,
        });
    }

    /// Ends the IP's open attachment period, if any, at `until`.
    fn detach(&mut self, public_ip_id: &str, until: Instant) {
        if let Some(open) = self
            .attachments
            .iter_mut()
            .rev()
            .find(|a| a.public_ip_id == public_ip_id && a.until.is_none())
        {
            open.until = Some(until);
        }
    }

    /// Applies every lifecycle transition due at `now`.
    pub fn tick(&mut self, now: Instant) {
        let timing = self.timing;
        self.public_ips
            .retain(|_, ip| lifecycle::advance(ip, now, &timing) != Advanced::Vanished);
        self.retry_tokens
            .retain(|_, record| now.saturating_duration_since(record.at) < RETRY_TOKEN_VALIDITY);
    }

    // ----- public IPs -------------------------------------------------------

    /// CreatePublicIp. `body` is the request JSON as sent (kept to compare
    /// replays of the same opc-retry-token).
    pub fn create_public_ip(
        &mut self,
        now: Instant,
        body: &Value,
        retry_token: Option<&str>,
    ) -> Result<PublicIp, ApiError> {
        if let Some(token) = retry_token {
            if token.is_empty() || token.len() > 64 {
                return Err(ApiError::invalid(
                    "opc-retry-token must be 1 to 64 characters",
                ));
            }
            if let Some(record) = self.retry_tokens.get(token) {
                if record.invalidated {
                    return Err(ApiError::invalidated_retry_token(
                        "The retry token was invalidated by a later operation on the resource it created",
                    ));
                }
                if record.request == *body {
                    return Ok(record.response.clone());
                }
                return Err(ApiError::invalidated_retry_token(
                    "The retry token was already used with a different request body",
                ));
            }
        }

        let details: CreatePublicIpDetails = serde_json::from_value(body.clone())
            .map_err(|e| ApiError::cannot_parse(format!("Invalid CreatePublicIpDetails: {e}")))?;
        let compartment_id = details
            .compartment_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ApiError::missing("compartmentId"))?;
        self.check_compartment(&compartment_id)?;
        let lifetime = match details.lifetime.as_deref() {
            None => return Err(ApiError::missing("lifetime")),
            Some("RESERVED") => Lifetime::Reserved,
            Some("EPHEMERAL") => Lifetime::Ephemeral,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "lifetime must be EPHEMERAL or RESERVED, got {other:?}"
                )));
            }
        };
        let target = match details.private_ip_id.as_deref().filter(|p| !p.is_empty()) {
            Some(id) => Some(
                self.private_ips
                    .get(id)
                    .ok_or_else(|| ApiError::related_not_found(format!("private IP {id}")))?
                    .clone(),
            ),
            None => None,
        };
        let pool = match details.public_ip_pool_id.as_deref() {
            Some(id) => Some(
                self.pools
                    .get(id)
                    .ok_or_else(|| ApiError::related_not_found(format!("public IP pool {id}")))?
                    .clone(),
            ),
            None => None,
        };

        match lifetime {
            Lifetime::Ephemeral => {
                let Some(target) = &target else {
                    return Err(ApiError::missing("privateIpId"));
                };
                if !target.is_primary {
                    return Err(ApiError::invalid(
                        "An ephemeral public IP can only be assigned to a primary private IP",
                    ));
                }
                if pool.is_some() {
                    return Err(ApiError::invalid(
                        "An ephemeral public IP cannot come from a public IP pool",
                    ));
                }
            }
            Lifetime::Reserved => {
                let in_use = self
                    .public_ips
                    .values()
                    .filter(|ip| {
                        ip.lifetime == Lifetime::Reserved
                            && ip.compartment_id == compartment_id
                            && ip.lifecycle_state != PublicIpState::Terminated
                    })
                    .count();
                if in_use >= self.reserved_limit {
                    return Err(ApiError::limit_exceeded(format!(
                        "The limit of {} reserved public IPs in compartment {compartment_id} has been reached",
                        self.reserved_limit
                    )));
                }
            }
        }
        if let Some(target) = &target {
            self.check_can_hold(target, None)?;
        }
        let ip_address = self.allocate_address(pool.as_ref())?;

        let (scope, availability_domain) = match (lifetime, &target) {
            (Lifetime::Ephemeral, Some(t)) => (
                Scope::AvailabilityDomain,
                Some(t.availability_domain.clone()),
            ),
            _ => (Scope::Region, None),
        };
        let mut ip = PublicIp {
            id: format!(
                "ocid1.publicip.oc1.{}.{}",
                self.region,
                uuid::Uuid::new_v4().simple()
            ),
            ip_address,
            lifetime,
            lifecycle_state: PublicIpState::Provisioning,
            assigned_entity_id: target.as_ref().map(|t| t.id.clone()),
            assigned_entity_type: None,
            private_ip_id: None,
            compartment_id,
            display_name: details.display_name,
            freeform_tags: details.freeform_tags.unwrap_or_default(),
            defined_tags: details.defined_tags.unwrap_or_default(),
            scope,
            availability_domain,
            public_ip_pool_id: pool.map(|p| p.id),
            time_created: now_rfc3339(),
            etag: String::new(),
            due: None,
            created: Some(now),
        };
        let state = if target.is_some() {
            PublicIpState::Assigning
        } else {
            PublicIpState::Provisioning
        };
        lifecycle::enter(&mut ip, state, now, &self.timing);
        if let Some(target) = &ip.assigned_entity_id {
            self.attach(&ip.id, &target.clone(), now);
        }
        self.public_ips.insert(ip.id.clone(), ip.clone());
        self.creations.push(ip.clone());
        if let Some(token) = retry_token {
            self.retry_tokens.insert(
                token.to_string(),
                RetryRecord {
                    request: body.clone(),
                    response: ip.clone(),
                    at: now,
                    invalidated: false,
                },
            );
        }
        Ok(ip)
    }

    /// Whether reads at `now` see `ip` yet (see [`World::read_lag`]).
    pub fn readable(&self, ip: &PublicIp, now: Instant) -> bool {
        ip.created
            .is_none_or(|created| now.saturating_duration_since(created) >= self.read_lag)
    }

    pub fn get_public_ip(&self, id: &str) -> Result<PublicIp, ApiError> {
        self.public_ips
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("public IP {id}")))
    }

    pub fn get_public_ip_by_ip_address(&self, address: &str) -> Result<PublicIp, ApiError> {
        self.public_ips
            .values()
            .find(|ip| ip.ip_address == address)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("public IP with address {address}")))
    }

    /// The public IP assigned (or being assigned) to a private IP.
    pub fn get_public_ip_by_private_ip_id(
        &self,
        private_ip_id: &str,
    ) -> Result<PublicIp, ApiError> {
        self.holder_of(private_ip_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("public IP for private IP {private_ip_id}")))
    }

    /// UpdatePublicIp: rename, retag, assign, move or unassign.
    pub fn update_public_ip(
        &mut self,
        now: Instant,
        id: &str,
        details: UpdatePublicIpDetails,
        if_match: Option<&str>,
    ) -> Result<PublicIp, ApiError> {
        let current = self.get_public_ip(id)?;
        check_etag(&current, if_match)?;
        if matches!(
            current.lifecycle_state,
            PublicIpState::Terminating | PublicIpState::Terminated
        ) {
            return Err(ApiError::incorrect_state(format!(
                "Public IP {id} is {:?}",
                current.lifecycle_state
            )));
        }
        let assignment = match details.private_ip_id.as_deref() {
            None => Assignment::Keep,
            Some(target) => self.plan_assignment(&current, target)?,
        };
        let timing = self.timing;
        let ip = self
            .public_ips
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("public IP {id}")))?;
        match assignment {
            Assignment::Keep => {}
            Assignment::Unassign => {
                lifecycle::enter(ip, PublicIpState::Unassigning, now, &timing);
                let done = ip.due.unwrap_or(now);
                self.detach(id, done);
            }
            Assignment::AssignTo(target) => {
                ip.assigned_entity_id = Some(target.clone());
                lifecycle::enter(ip, PublicIpState::Assigning, now, &timing);
                self.attach(id, &target, now);
            }
        }
        let ip = self
            .public_ips
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("public IP {id}")))?;
        let mut changed = false;
        if let Some(name) = details.display_name {
            changed |= ip.display_name.as_ref() != Some(&name);
            ip.display_name = Some(name);
        }
        if let Some(tags) = details.freeform_tags {
            changed |= ip.freeform_tags != tags;
            ip.freeform_tags = tags;
        }
        if let Some(tags) = details.defined_tags {
            changed |= ip.defined_tags != tags;
            ip.defined_tags = tags;
        }
        if changed {
            ip.etag = lifecycle::new_etag();
        }
        Ok(ip.clone())
    }

    /// Decides what a privateIpId in an update means for `ip`.
    fn plan_assignment(&self, ip: &PublicIp, target: &str) -> Result<Assignment, ApiError> {
        let current_target = ip
            .assigned_entity_id
            .as_deref()
            .filter(|_| ip.lifecycle_state.holds_target());
        if current_target == Some(target) {
            return Ok(Assignment::Keep);
        }
        if ip.lifetime == Lifetime::Ephemeral {
            return Err(ApiError::invalid(
                "An ephemeral public IP cannot be moved or unassigned; delete it instead",
            ));
        }
        if !ip.lifecycle_state.is_stable() {
            return Err(ApiError::incorrect_state(format!(
                "Public IP {} is {:?}; try again when the operation in progress completes",
                ip.id, ip.lifecycle_state
            )));
        }
        if target.is_empty() {
            return Ok(if ip.lifecycle_state == PublicIpState::Assigned {
                Assignment::Unassign
            } else {
                Assignment::Keep
            });
        }
        let private_ip = self
            .private_ips
            .get(target)
            .ok_or_else(|| ApiError::related_not_found(format!("private IP {target}")))?;
        // A refused move leaves the IP where it was, as OCI does: the
        // target is checked before anything changes.
        self.check_can_hold(private_ip, Some(&ip.id))?;
        Ok(Assignment::AssignTo(target.to_string()))
    }

    /// DeletePublicIp. Deleting an IP already on its way out is accepted.
    pub fn delete_public_ip(
        &mut self,
        now: Instant,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ApiError> {
        let timing = self.timing;
        let ip = self
            .public_ips
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(format!("public IP {id}")))?;
        check_etag(ip, if_match)?;
        match ip.lifecycle_state {
            PublicIpState::Terminating | PublicIpState::Terminated => return Ok(()),
            PublicIpState::Provisioning | PublicIpState::Assigning | PublicIpState::Unassigning => {
                return Err(ApiError::incorrect_state(format!(
                    "Public IP {id} is {:?}; try again when the operation in progress completes",
                    ip.lifecycle_state
                )));
            }
            PublicIpState::Available | PublicIpState::Assigned | PublicIpState::Unassigned => {}
        }
        lifecycle::enter(ip, PublicIpState::Terminating, now, &timing);
        let done = ip.due.unwrap_or(now);
        self.detach(id, done);
        for record in self.retry_tokens.values_mut() {
            if record.response.id == id {
                record.invalidated = true;
            }
        }
        Ok(())
    }

    pub fn list_public_ips(&self, filter: &PublicIpFilter) -> Vec<PublicIp> {
        self.public_ips
            .values()
            .filter(|ip| ip.compartment_id == filter.compartment_id && ip.scope == filter.scope)
            .filter(|ip| {
                filter.availability_domain.is_none()
                    || ip.availability_domain == filter.availability_domain
            })
            .filter(|ip| filter.lifetime.is_none_or(|l| ip.lifetime == l))
            .filter(|ip| {
                filter.public_ip_pool_id.is_none()
                    || ip.public_ip_pool_id == filter.public_ip_pool_id
            })
            .cloned()
            .collect()
    }

    // ----- private IPs, VNICs, subnets, pools -------------------------------

    pub fn list_private_ips(&self, filter: &PrivateIpFilter) -> Vec<PrivateIp> {
        let mut found: Vec<PrivateIp> = self
            .private_ips
            .values()
            .filter(|p| filter.subnet_id.as_ref().is_none_or(|s| &p.subnet_id == s))
            .filter(|p| filter.vnic_id.as_ref().is_none_or(|v| &p.vnic_id == v))
            .filter(|p| {
                filter
                    .ip_address
                    .as_ref()
                    .is_none_or(|a| &p.ip_address == a)
            })
            .filter(|p| filter.ip_state.as_ref().is_none_or(|s| &p.ip_state == s))
            .filter(|p| filter.lifetime.is_none_or(|l| p.lifetime == l))
            .cloned()
            .collect();
        // Address order, as OCI lists them.
        found.sort_by_key(|p| p.ip_address.parse::<Ipv4Addr>().ok());
        found
    }

    pub fn get_private_ip(&self, id: &str) -> Result<PrivateIp, ApiError> {
        self.private_ips
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("private IP {id}")))
    }

    pub fn get_vnic(&self, id: &str) -> Result<Vnic, ApiError> {
        self.vnics
            .get(id)
            .map(|v| self.render_vnic(v))
            .ok_or_else(|| ApiError::not_found(format!("VNIC {id}")))
    }

    pub fn list_vnic_attachments(
        &self,
        compartment_id: &str,
        availability_domain: Option<&str>,
        instance_id: Option<&str>,
        vnic_id: Option<&str>,
    ) -> Vec<VnicAttachment> {
        self.vnic_attachments
            .values()
            .filter(|a| a.compartment_id == compartment_id)
            .filter(|a| availability_domain.is_none_or(|ad| a.availability_domain == ad))
            .filter(|a| instance_id.is_none_or(|i| a.instance_id == i))
            .filter(|a| vnic_id.is_none_or(|v| a.vnic_id == v))
            .cloned()
            .collect()
    }

    pub fn get_subnet(&self, id: &str) -> Result<Subnet, ApiError> {
        self.subnets
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("subnet {id}")))
    }

    pub fn list_public_ip_pools(
        &self,
        compartment_id: &str,
        display_name: Option<&str>,
    ) -> Vec<PublicIpPoolSummary> {
        self.pools
            .values()
            .filter(|p| p.compartment_id == compartment_id)
            .filter(|p| display_name.is_none_or(|n| p.display_name == n))
            .map(PublicIpPoolSummary::from)
            .collect()
    }

    pub fn get_public_ip_pool(&self, id: &str) -> Result<PublicIpPool, ApiError> {
        self.pools
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("public IP pool {id}")))
    }

    pub fn check_compartment(&self, compartment_id: &str) -> Result<(), ApiError> {
        if self.compartments.is_empty() || self.compartments.contains(compartment_id) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("compartment {compartment_id}")))
        }
    }

    /// Everything, in OCI's JSON form, for `GET /_emulator/state`.
    pub fn state_json(&self) -> Value {
        let vnics: Vec<Vnic> = self.vnics.values().map(|v| self.render_vnic(v)).collect();
        json!({
            "tenancyId": self.tenancy_id,
            "region": self.region,
            "reservedPublicIpLimit": self.reserved_limit,
            "timing": self.timing,
            "publicIps": self.public_ips.values().collect::<Vec<_>>(),
            "privateIps": self.private_ips.values().collect::<Vec<_>>(),
            "vnics": vnics,
            "vnicAttachments": self.vnic_attachments.values().collect::<Vec<_>>(),
            "instances": self.instances.values().collect::<Vec<_>>(),
            "subnets": self.subnets.values().collect::<Vec<_>>(),
            "vcns": self.vcns.values().collect::<Vec<_>>(),
            "publicIpPools": self.pools.values().collect::<Vec<_>>(),
        })
    }

    // ----- rules and helpers ------------------------------------------------

    /// The public IP holding `private_ip_id` (ASSIGNING or ASSIGNED), if any.
    fn holder_of(&self, private_ip_id: &str) -> Option<&PublicIp> {
        self.public_ips.values().find(|ip| {
            ip.assigned_entity_id.as_deref() == Some(private_ip_id)
                && ip.lifecycle_state.holds_target()
        })
    }

    /// A public IP may go on `target` only if its subnet allows public IPs and
    /// no other public IP (reserved or ephemeral) holds it. `moving` is the IP
    /// being moved, which does not count against itself.
    fn check_can_hold(&self, target: &PrivateIp, moving: Option<&str>) -> Result<(), ApiError> {
        let subnet = self
            .subnets
            .get(&target.subnet_id)
            .ok_or_else(|| ApiError::related_not_found(format!("subnet {}", target.subnet_id)))?;
        if subnet.prohibit_public_ip_on_vnic {
            return Err(ApiError::invalid(format!(
                "Private IP {} is in subnet {} which prohibits public IPs on VNICs",
                target.id, subnet.id
            )));
        }
        if let Some(holder) = self.holder_of(&target.id)
            && Some(holder.id.as_str()) != moving
        {
            return Err(ApiError::conflict(format!(
                "Private IP {} already has public IP {} ({:?}) assigned",
                target.id, holder.id, holder.lifetime
            )));
        }
        Ok(())
    }

    /// The first free address of `pool`, or of the Oracle ranges without a pool.
    fn allocate_address(&self, pool: Option<&PublicIpPool>) -> Result<String, ApiError> {
        let used: HashSet<&str> = self
            .public_ips
            .values()
            .map(|ip| ip.ip_address.as_str())
            .collect();
        let candidates: Vec<Cidr> = match pool {
            Some(pool) => pool
                .cidr_blocks
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
            None => self.oracle_ranges.clone(),
        };
        for cidr in candidates {
            let range = match pool {
                Some(_) => cidr.addresses(),
                None => cidr.host_addresses(),
            };
            if let Some(free) = range
                .iter()
                .map(|a| a.to_string())
                .find(|a| !used.contains(a.as_str()))
            {
                return Ok(free);
            }
        }
        Err(match pool {
            // UNCONFIRMED: the code OCI uses for an exhausted pool.
            Some(pool) => ApiError::limit_exceeded(format!(
                "Public IP pool {} has no free addresses",
                pool.id
            )),
            None => ApiError::new(
                500,
                "InternalServerError",
                "The emulator's Oracle public address ranges are exhausted",
            ),
        })
    }

    /// A VNIC as GetVnic shows it: with the public IP of its primary private IP.
    fn render_vnic(&self, vnic: &Vnic) -> Vnic {
        let mut shown = vnic.clone();
        shown.public_ip = self
            .private_ips
            .values()
            .find(|p| p.vnic_id == vnic.id && p.is_primary)
            .and_then(|p| {
                self.public_ips.values().find(|ip| {
                    ip.private_ip_id.as_deref() == Some(p.id.as_str())
                        && ip.lifecycle_state == PublicIpState::Assigned
                })
            })
            .map(|ip| ip.ip_address.clone());
        shown
    }
}

/// What an update does to the assignment of a public IP.
enum Assignment {
    Keep,
    Unassign,
    AssignTo(String),
}

fn check_etag(ip: &PublicIp, if_match: Option<&str>) -> Result<(), ApiError> {
    match if_match {
        Some(etag) if etag != ip.etag && etag != "*" => Err(ApiError::etag_mismatch(&ip.id)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Seed;

    const SEED: &str = r#"
compartments: [c1]
reservedPublicIpLimit: 3
oraclePublicRanges: [192.0.2.0/29]
timing: {provisioningMs: 10, assigningMs: 10, unassigningMs: 10, terminatingMs: 10, terminatedRetentionMs: 10}
vcns: [{id: vcn, cidrBlock: 10.0.0.0/16}]
subnets:
  - {id: pub, vcnId: vcn, cidrBlock: 10.0.0.0/24}
  - {id: priv, vcnId: vcn, cidrBlock: 10.0.1.0/24, prohibitPublicIpOnVnic: true}
instances:
  - id: i1
    vnics:
      - id: v1
        subnetId: pub
        primaryPrivateIp: 10.0.0.10
        primaryPrivateIpId: primary
        ephemeralPublicIp: auto
        secondaryPrivateIps:
          - {ipAddress: 10.0.0.20, id: a}
          - {ipAddress: 10.0.0.21, id: b}
  - id: i2
    vnics:
      - {id: v2, subnetId: priv, primaryPrivateIp: 10.0.1.10, primaryPrivateIpId: hidden}
"#;

    fn world(now: Instant) -> World {
        Seed::parse(SEED)
            .expect("parses")
            .build(now)
            .expect("builds")
    }

    fn reserved(target: Option<&str>) -> Value {
        match target {
            Some(t) => json!({"compartmentId": "c1", "lifetime": "RESERVED", "privateIpId": t}),
            None => json!({"compartmentId": "c1", "lifetime": "RESERVED"}),
        }
    }

    fn assign(target: &str) -> UpdatePublicIpDetails {
        UpdatePublicIpDetails {
            private_ip_id: Some(target.to_string()),
            ..UpdatePublicIpDetails::default()
        }
    }

    #[test]
    fn one_public_ip_per_private_ip() {
        let now = Instant::now();
        let mut world = world(now);
        let error = world.create_public_ip(now, &reserved(Some("primary")), None);
        assert_eq!(error.map(|_| ()).unwrap_err().code, "Conflict");
        world
            .create_public_ip(now, &reserved(Some("a")), None)
            .expect("first");
        let error = world.create_public_ip(now, &reserved(Some("a")), None);
        assert_eq!(error.map(|_| ()).unwrap_err().code, "Conflict");
        let error = world.create_public_ip(now, &reserved(Some("hidden")), None);
        assert_eq!(error.map(|_| ()).unwrap_err().code, "InvalidParameter");
    }

    #[test]
    fn attachments_record_every_period_a_public_ip_held_a_private_ip() {
        let t0 = Instant::now();
        let mut world = world(t0);
        let ms = |n| t0 + Duration::from_millis(n);
        let ip = world
            .create_public_ip(t0, &reserved(Some("a")), None)
            .expect("create on a");
        world.tick(ms(20));
        world
            .update_public_ip(ms(20), &ip.id, assign("b"), None)
            .expect("move to b");
        world.tick(ms(40));
        world
            .update_public_ip(ms(40), &ip.id, assign(""), None)
            .expect("unassign");
        world.tick(ms(60));
        world
            .delete_public_ip(ms(60), &ip.id, None)
            .expect("delete");
        let periods: Vec<_> = world
            .attachments
            .iter()
            .filter(|a| a.public_ip_id == ip.id)
            .map(|a| (a.private_ip_id.as_str(), a.from, a.until))
            .collect();
        // The unassign ends b's period when it completes (10 ms later).
        assert_eq!(
            periods,
            vec![("a", t0, Some(ms(20))), ("b", ms(20), Some(ms(50)))]
        );
    }

    #[test]
    fn a_refused_move_leaves_the_ip_where_it_was() {
        let start = Instant::now();
        let mut world = world(start);
        let moving = world
            .create_public_ip(start, &reserved(Some("a")), None)
            .expect("a");
        world
            .create_public_ip(start, &reserved(Some("b")), None)
            .expect("b");
        let later = start + Duration::from_millis(20);
        world.tick(later);
        let before = world.get_public_ip(&moving.id).expect("exists");
        assert_eq!(before.lifecycle_state, PublicIpState::Assigned);
        let error = world
            .update_public_ip(later, &moving.id, assign("b"), None)
            .expect_err("b is taken");
        assert_eq!(error.code, "Conflict");
        let after = world.get_public_ip(&moving.id).expect("exists");
        assert_eq!(after.lifecycle_state, PublicIpState::Assigned);
        assert_eq!(after.assigned_entity_id.as_deref(), Some("a"));
        assert_eq!(after.etag, before.etag, "nothing changed");
    }

    #[test]
    fn limit_and_address_exhaustion() {
        let now = Instant::now();
        let mut world = world(now);
        // 192.0.2.0/29 has 6 host addresses; one went to the ephemeral IP.
        for _ in 0..3 {
            world
                .create_public_ip(now, &reserved(None), None)
                .expect("within limit");
        }
        let error = world
            .create_public_ip(now, &reserved(None), None)
            .expect_err("limit");
        assert_eq!(error.code, "LimitExceeded");
        world.reserved_limit = 10;
        world
            .create_public_ip(now, &reserved(None), None)
            .expect("address 5");
        world
            .create_public_ip(now, &reserved(None), None)
            .expect("address 6");
        let error = world
            .create_public_ip(now, &reserved(None), None)
            .expect_err("no address");
        assert_eq!(error.status, 500);
    }

    #[test]
    fn retry_tokens_replay_and_conflict() {
        let now = Instant::now();
        let mut world = world(now);
        let first = world
            .create_public_ip(now, &reserved(None), Some("t"))
            .expect("first");
        let replay = world
            .create_public_ip(now, &reserved(None), Some("t"))
            .expect("replay");
        assert_eq!(first.id, replay.id);
        let error = world
            .create_public_ip(now, &reserved(Some("a")), Some("t"))
            .expect_err("other body");
        assert_eq!(error.code, "InvalidatedRetryToken");
        // Tokens expire after 24 hours.
        let tomorrow = now + RETRY_TOKEN_VALIDITY + Duration::from_secs(1);
        world.tick(tomorrow);
        let again = world
            .create_public_ip(tomorrow, &reserved(None), Some("t"))
            .expect("new IP");
        assert_ne!(again.id, first.id);
    }

    #[test]
    fn etags_guard_updates_and_deletes() {
        let now = Instant::now();
        let mut world = world(now);
        let ip = world
            .create_public_ip(now, &reserved(None), None)
            .expect("create");
        let later = now + Duration::from_millis(20);
        world.tick(later);
        let error = world.delete_public_ip(later, &ip.id, Some(&ip.etag));
        assert_eq!(
            error.unwrap_err().code,
            "NoEtagMatch",
            "the transition changed the etag"
        );
        let current = world.get_public_ip(&ip.id).expect("get");
        world
            .delete_public_ip(later, &ip.id, Some(&current.etag))
            .expect("delete");
        world
            .delete_public_ip(later, &ip.id, None)
            .expect("idempotent");
    }
}
