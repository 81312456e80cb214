//! The operator's own view of OCI networking resources.
//!
//! Only the fields the operator reads or writes are modelled. Every struct
//! tolerates unknown fields (serde's default) and every field OCI may omit is an
//! `Option`, so a new OCI release or an older emulator never breaks decoding.
//! Enums carry an `Unknown` catch-all for values added by OCI later.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `freeformTags`: plain string key/value pairs.
pub type FreeformTags = BTreeMap<String, String>;
/// `definedTags`: namespace -> key -> value (OCI allows any JSON value).
pub type DefinedTags = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

/// `lifetime` of a public IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Lifetime {
    Ephemeral,
    Reserved,
    /// A value this build does not know; never sent.
    #[serde(other)]
    Unknown,
}

/// `lifecycleState` of a public IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    #[serde(other)]
    Unknown,
}

impl PublicIpState {
    /// True while OCI is still working on the IP: wait and look again.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            Self::Provisioning | Self::Assigning | Self::Unassigning | Self::Terminating
        )
    }

    /// True when the IP is not attached to anything and can be assigned.
    /// OCI reports a freed reserved IP as AVAILABLE or UNASSIGNED.
    pub fn is_free(self) -> bool {
        matches!(self, Self::Available | Self::Unassigned)
    }

    /// True once the IP is being or has been deleted.
    pub fn is_gone(self) -> bool {
        matches!(self, Self::Terminating | Self::Terminated)
    }

    /// OCI's name of the state, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Available => "AVAILABLE",
            Self::Assigning => "ASSIGNING",
            Self::Assigned => "ASSIGNED",
            Self::Unassigning => "UNASSIGNING",
            Self::Unassigned => "UNASSIGNED",
            Self::Terminating => "TERMINATING",
            Self::Terminated => "TERMINATED",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// A public IP (`PublicIp` in OCI's API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIp {
    pub id: String,
    pub compartment_id: Option<String>,
    pub ip_address: Option<String>,
    pub lifetime: Lifetime,
    pub lifecycle_state: PublicIpState,
    /// The private IP (or NAT gateway) the IP is assigned or being assigned to.
    pub assigned_entity_id: Option<String>,
    /// `PRIVATE_IP` or `NAT_GATEWAY`.
    pub assigned_entity_type: Option<String>,
    /// Deprecated by OCI and null while ASSIGNING; prefer `assigned_entity_id`.
    pub private_ip_id: Option<String>,
    pub display_name: Option<String>,
    #[serde(default)]
    pub freeform_tags: FreeformTags,
    #[serde(default)]
    pub defined_tags: DefinedTags,
    /// `REGION` or `AVAILABILITY_DOMAIN`.
    pub scope: Option<String>,
    pub availability_domain: Option<String>,
    pub public_ip_pool_id: Option<String>,
    pub time_created: Option<String>,
    /// The `etag` response header of the call that returned this value (not
    /// part of the JSON body); pass it as if-match to update or delete.
    #[serde(skip)]
    pub etag: Option<String>,
}

#[cfg(test)]
impl PublicIp {
    /// A reserved IP for unit tests: in `state`, on `private_ip` if any, with `tags`.
    pub(crate) fn for_test(
        state: PublicIpState,
        private_ip: Option<&str>,
        tags: FreeformTags,
    ) -> Self {
        PublicIp {
            id: "ocid1.publicip.oc1..x".into(),
            compartment_id: None,
            ip_address: Some("192.0.2.1".into()),
            lifetime: Lifetime::Reserved,
            lifecycle_state: state,
            assigned_entity_id: private_ip.map(str::to_string),
            assigned_entity_type: private_ip.map(|_| "PRIVATE_IP".to_string()),
            private_ip_id: private_ip.map(str::to_string),
            display_name: None,
            freeform_tags: tags,
            defined_tags: Default::default(),
            scope: None,
            availability_domain: None,
            public_ip_pool_id: None,
            time_created: None,
            etag: None,
        }
    }
}

/// Body of CreatePublicIp.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePublicIpDetails {
    pub compartment_id: String,
    /// Required by OCI; `None` only to let `Default` exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<Lifetime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip_pool_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeform_tags: Option<FreeformTags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defined_tags: Option<DefinedTags>,
}

impl CreatePublicIpDetails {
    /// A RESERVED public IP in `compartment_id`, not yet assigned.
    pub fn reserved(compartment_id: impl Into<String>) -> Self {
        Self {
            compartment_id: compartment_id.into(),
            lifetime: Some(Lifetime::Reserved),
            ..Self::default()
        }
    }
}

/// Body of UpdatePublicIp. OCI treats the PUT as a patch: `None` fields are
/// left out of the JSON and stay unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePublicIpDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeform_tags: Option<FreeformTags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defined_tags: Option<DefinedTags>,
    /// `Some(id)` assigns or moves the IP; `Some("")` unassigns it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_ip_id: Option<String>,
}

impl UpdatePublicIpDetails {
    /// Assign (or move) the public IP to `private_ip_id`.
    pub fn assign(private_ip_id: impl Into<String>) -> Self {
        Self {
            private_ip_id: Some(private_ip_id.into()),
            ..Self::default()
        }
    }

    /// Unassign the public IP (OCI's convention: an empty privateIpId).
    pub fn unassign() -> Self {
        Self {
            private_ip_id: Some(String::new()),
            ..Self::default()
        }
    }
}

/// Outcome of DeletePublicIp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// OCI accepted the delete (204).
    Deleted,
    /// OCI answered 404: the IP was already gone (or never visible to us).
    AlreadyGone,
}

/// Filters of ListPublicIps. `scope` is required by OCI; `REGION` lists reserved
/// IPs, `AVAILABILITY_DOMAIN` (with `availability_domain`) lists ephemeral ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPublicIpsQuery {
    pub compartment_id: String,
    pub scope: String,
    pub availability_domain: Option<String>,
    pub lifetime: Option<Lifetime>,
    pub public_ip_pool_id: Option<String>,
}

impl ListPublicIpsQuery {
    /// Regional (reserved) public IPs of a compartment.
    pub fn region(compartment_id: impl Into<String>) -> Self {
        Self {
            compartment_id: compartment_id.into(),
            scope: "REGION".to_string(),
            availability_domain: None,
            lifetime: None,
            public_ip_pool_id: None,
        }
    }
}

/// How to select private IPs in ListPrivateIps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateIpFilter {
    /// The private IP with this address in this subnet (at most one).
    AddressInSubnet {
        subnet_id: String,
        ip_address: String,
    },
    /// All private IPs of a VNIC.
    Vnic { vnic_id: String },
}

/// A private IP (`PrivateIp`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateIp {
    pub id: String,
    pub ip_address: Option<String>,
    pub is_primary: Option<bool>,
    pub subnet_id: Option<String>,
    pub vnic_id: Option<String>,
    pub compartment_id: Option<String>,
    pub availability_domain: Option<String>,
    pub display_name: Option<String>,
    pub hostname_label: Option<String>,
}

/// A VNIC (`Vnic`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vnic {
    pub id: String,
    pub compartment_id: Option<String>,
    pub availability_domain: Option<String>,
    pub subnet_id: Option<String>,
    pub is_primary: Option<bool>,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub lifecycle_state: Option<String>,
    pub display_name: Option<String>,
    pub mac_address: Option<String>,
}

/// A VNIC attachment (`VnicAttachment`, Compute API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VnicAttachment {
    pub id: String,
    pub instance_id: Option<String>,
    pub vnic_id: Option<String>,
    pub subnet_id: Option<String>,
    pub nic_index: Option<i64>,
    pub lifecycle_state: Option<String>,
    pub compartment_id: Option<String>,
    pub availability_domain: Option<String>,
}

/// A subnet (`Subnet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subnet {
    pub id: String,
    pub cidr_block: Option<String>,
    pub compartment_id: Option<String>,
    pub vcn_id: Option<String>,
    pub display_name: Option<String>,
    pub availability_domain: Option<String>,
    /// True for private subnets: no public IPs on their VNICs.
    pub prohibit_public_ip_on_vnic: Option<bool>,
    pub lifecycle_state: Option<String>,
}

/// A public IP pool (`PublicIpPool` / `PublicIpPoolSummary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIpPool {
    pub id: String,
    pub compartment_id: Option<String>,
    pub display_name: Option<String>,
    /// Present on GetPublicIpPool; OCI's list summaries omit it.
    pub cidr_blocks: Option<Vec<String>>,
    pub lifecycle_state: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ip_tolerates_unknown_fields_and_values() {
        let json = r#"{"id":"ocid1.publicip.oc1..a","lifetime":"RESERVED",
            "lifecycleState":"SOMETHING_NEW","newField":1,"ipAddress":"192.0.2.1"}"#;
        let ip: PublicIp = serde_json::from_str(json).expect("decodes");
        assert_eq!(ip.lifecycle_state, PublicIpState::Unknown);
        assert_eq!(ip.lifetime, Lifetime::Reserved);
        assert!(ip.freeform_tags.is_empty());
        assert_eq!(ip.etag, None);
    }

    #[test]
    fn update_details_serialize_as_patch() {
        let json = serde_json::to_value(UpdatePublicIpDetails::unassign()).expect("encodes");
        assert_eq!(json, serde_json::json!({"privateIpId": ""}));
        let json = serde_json::to_value(UpdatePublicIpDetails::default()).expect("encodes");
        assert_eq!(json, serde_json::json!({}));
    }

    #[test]
    fn create_details_use_oci_names() {
        let mut details = CreatePublicIpDetails::reserved("c1");
        details.private_ip_id = Some("p1".into());
        let json = serde_json::to_value(details).expect("encodes");
        assert_eq!(
            json,
            serde_json::json!({"compartmentId":"c1","lifetime":"RESERVED","privateIpId":"p1"})
        );
    }
}
