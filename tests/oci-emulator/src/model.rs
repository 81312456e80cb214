//! The emulated resources. Each struct serializes to OCI's own JSON form
//! (camelCase, OCI's field names and enum values); bookkeeping the API does
//! not show is `#[serde(skip)]`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Instant;

pub type FreeformTags = BTreeMap<String, String>;
pub type DefinedTags = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Lifetime {
    Ephemeral,
    Reserved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PublicIpState {
    Provisioning,
    Available,
    Assigning,
    Assigned,
    Unassigning,
    Unassigned,
    Terminating,
    Terminated,
}

impl PublicIpState {
    /// States in which the IP holds its private IP (the one-per-private-IP rule).
    pub fn holds_target(self) -> bool {
        matches!(self, Self::Assigning | Self::Assigned)
    }

    /// States in which an update of privateIpId or a delete is accepted.
    pub fn is_stable(self) -> bool {
        matches!(self, Self::Available | Self::Unassigned | Self::Assigned)
    }
}

/// `scope` of a public IP: reserved IPs are regional, ephemeral ones belong to
/// the availability domain of their private IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    Region,
    AvailabilityDomain,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIp {
    pub id: String,
    pub ip_address: String,
    pub lifetime: Lifetime,
    pub lifecycle_state: PublicIpState,
    pub assigned_entity_id: Option<String>,
    pub assigned_entity_type: Option<String>,
    /// Deprecated in OCI; null while ASSIGNING, set once ASSIGNED.
    pub private_ip_id: Option<String>,
    pub compartment_id: String,
    pub display_name: Option<String>,
    pub freeform_tags: FreeformTags,
    pub defined_tags: DefinedTags,
    pub scope: Scope,
    pub availability_domain: Option<String>,
    pub public_ip_pool_id: Option<String>,
    pub time_created: String,
    #[serde(skip)]
    pub etag: String,
    /// When the current transitional state completes (or, for TERMINATED,
    /// when the IP vanishes). `None` for stable states.
    #[serde(skip)]
    pub due: Option<Instant>,
    /// When CreatePublicIp made it (for the read lag); `None` for seeded IPs.
    #[serde(skip)]
    pub created: Option<Instant>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateIp {
    pub id: String,
    pub ip_address: String,
    pub is_primary: bool,
    pub subnet_id: String,
    pub vnic_id: String,
    pub compartment_id: String,
    pub availability_domain: String,
    pub display_name: String,
    pub hostname_label: Option<String>,
    pub ip_state: String,
    /// EPHEMERAL: made with its VNIC (the emulator has no reserved private IPs).
    pub lifetime: Lifetime,
    pub freeform_tags: FreeformTags,
    pub defined_tags: DefinedTags,
    pub time_created: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Vnic {
    pub id: String,
    pub availability_domain: String,
    pub compartment_id: String,
    pub display_name: String,
    pub hostname_label: Option<String>,
    pub is_primary: bool,
    pub lifecycle_state: String,
    pub mac_address: String,
    pub private_ip: String,
    /// The public IP address on the VNIC's primary private IP; filled in when
    /// the VNIC is shown, from the public IPs.
    pub public_ip: Option<String>,
    pub subnet_id: String,
    pub skip_source_dest_check: bool,
    pub freeform_tags: FreeformTags,
    pub defined_tags: DefinedTags,
    pub time_created: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VnicAttachment {
    pub id: String,
    pub availability_domain: String,
    pub compartment_id: String,
    pub display_name: String,
    pub instance_id: String,
    pub lifecycle_state: String,
    pub nic_index: u32,
    pub subnet_id: String,
    pub vnic_id: String,
    pub time_created: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub id: String,
    pub availability_domain: String,
    pub compartment_id: String,
    pub display_name: String,
    pub lifecycle_state: String,
    pub region: String,
    pub shape: String,
    pub time_created: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Vcn {
    pub id: String,
    pub cidr_block: String,
    pub cidr_blocks: Vec<String>,
    pub compartment_id: String,
    pub display_name: String,
    pub lifecycle_state: String,
    pub time_created: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub id: String,
    /// `None`: a regional subnet.
    pub availability_domain: Option<String>,
    pub cidr_block: String,
    pub compartment_id: String,
    pub display_name: String,
    pub dns_label: Option<String>,
    pub lifecycle_state: String,
    pub prohibit_internet_ingress: bool,
    pub prohibit_public_ip_on_vnic: bool,
    /// The VCN's default route table: OCI's Subnet always names one.
    pub route_table_id: String,
    pub vcn_id: String,
    pub virtual_router_ip: String,
    pub virtual_router_mac: String,
    pub time_created: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIpPool {
    pub id: String,
    pub cidr_blocks: Vec<String>,
    pub compartment_id: String,
    pub display_name: String,
    pub lifecycle_state: String,
    pub time_created: String,
}

/// `PublicIpPoolSummary`: what ListPublicIpPools shows (no cidrBlocks).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIpPoolSummary {
    pub id: String,
    pub compartment_id: String,
    pub display_name: String,
    pub lifecycle_state: String,
    pub time_created: String,
}

impl From<&PublicIpPool> for PublicIpPoolSummary {
    fn from(pool: &PublicIpPool) -> Self {
        Self {
            id: pool.id.clone(),
            compartment_id: pool.compartment_id.clone(),
            display_name: pool.display_name.clone(),
            lifecycle_state: pool.lifecycle_state.clone(),
            time_created: pool.time_created.clone(),
        }
    }
}

/// Body of CreatePublicIp.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePublicIpDetails {
    pub compartment_id: Option<String>,
    pub lifetime: Option<String>,
    pub private_ip_id: Option<String>,
    pub public_ip_pool_id: Option<String>,
    pub display_name: Option<String>,
    pub freeform_tags: Option<FreeformTags>,
    pub defined_tags: Option<DefinedTags>,
}

/// Body of UpdatePublicIp: absent (or null) fields stay unchanged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePublicIpDetails {
    pub display_name: Option<String>,
    pub freeform_tags: Option<FreeformTags>,
    pub defined_tags: Option<DefinedTags>,
    /// `""` unassigns; an id assigns or moves.
    pub private_ip_id: Option<String>,
}

/// Current UTC time in OCI's timestamp format.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
