//! The OCI networking calls the operator uses, behind one narrow trait.
//!
//! - [`OciNetwork`]: the calls, in terms of our own small models ([`model`]),
//!   so operator logic never sees SDK types and tests can fake the trait.
//! - [`HttpOciClient`]: the implementation over HTTP.
//! - [`OciCredentials`]: API key (config file, [`api_key_fields`] or in
//!   memory), a config profile's session token (`security_token`), instance
//!   principals or OKE workload identity, each with a request
//!   signer ([`sign`] is ours; `session` keeps session tokens fresh;
//!   `metadata`, `instance_principal` and `workload_identity` obtain them).
//! - [`region`]: regions and realms, by key or name, and their endpoints.
//! - [`OciError`]: typed errors with status, OCI code and opc-request-id.

pub mod api_key_fields;
mod auth;
mod error;
mod http;
mod instance_principal;
mod legacy_pem;
mod limit;
mod metadata;
pub mod model;
pub mod region;
mod request;
#[cfg(feature = "oci-rust-sdk")]
mod sdk_signer;
mod security_token;
mod session;
pub mod sign;
mod workload_identity;

pub use api_key_fields::{ApiKeyFieldError, ApiKeyFields};
pub use auth::{ApiKey, AuthEndpoints, OciCredentials, SignerImplementation};
pub use error::{OciError, OciResult};
pub use http::HttpOciClient;
pub(crate) use limit::Counted;
pub use limit::{Limits, OciMetrics, Throttled};
pub use metadata::{DEFAULT_METADATA_URL, RegionInfo};
pub use model::*;
pub use region::{Region, RegionError, region_endpoint};
pub use workload_identity::{DEFAULT_CA_PATH, DEFAULT_TOKEN_PATH};

use async_trait::async_trait;

/// The OCI Core Services calls the operator makes. All lists follow OCI's
/// pagination internally and return every item.
#[async_trait]
pub trait OciNetwork: Send + Sync {
    /// CreatePublicIp. `retry_token` (1-64 chars) makes the call idempotent:
    /// derive it from something stable (e.g. the resource UID), so a retry
    /// after a lost answer returns the IP created the first time.
    async fn create_public_ip(
        &self,
        details: &CreatePublicIpDetails,
        retry_token: &str,
    ) -> OciResult<PublicIp>;

    /// GetPublicIp.
    async fn get_public_ip(&self, id: &str) -> OciResult<PublicIp>;

    /// GetPublicIpByIpAddress (404 if no public IP has this address).
    async fn get_public_ip_by_ip_address(&self, ip_address: &str) -> OciResult<PublicIp>;

    /// GetPublicIpByPrivateIpId; `None` when nothing is assigned to the private IP.
    async fn get_public_ip_by_private_ip_id(
        &self,
        private_ip_id: &str,
    ) -> OciResult<Option<PublicIp>>;

    /// UpdatePublicIp: assign/move ([`UpdatePublicIpDetails::assign`]), unassign
    /// ([`UpdatePublicIpDetails::unassign`]), rename or retag. With `if_match`,
    /// OCI refuses (412) if the IP changed since that etag was read.
    async fn update_public_ip(
        &self,
        id: &str,
        details: &UpdatePublicIpDetails,
        if_match: Option<&str>,
    ) -> OciResult<PublicIp>;

    /// DeletePublicIp; a 404 is [`Deletion::AlreadyGone`], not an error.
    async fn delete_public_ip(&self, id: &str, if_match: Option<&str>) -> OciResult<Deletion>;

    /// ListPublicIps (all pages).
    async fn list_public_ips(&self, query: &ListPublicIpsQuery) -> OciResult<Vec<PublicIp>>;

    /// ListPrivateIps (all pages).
    async fn list_private_ips(&self, filter: &PrivateIpFilter) -> OciResult<Vec<PrivateIp>>;

    /// GetPrivateIp.
    async fn get_private_ip(&self, id: &str) -> OciResult<PrivateIp>;

    /// GetVnic.
    async fn get_vnic(&self, id: &str) -> OciResult<Vnic>;

    /// ListVnicAttachments of a compartment, optionally of one instance (all pages).
    async fn list_vnic_attachments(
        &self,
        compartment_id: &str,
        instance_id: Option<&str>,
    ) -> OciResult<Vec<VnicAttachment>>;

    /// GetSubnet.
    async fn get_subnet(&self, id: &str) -> OciResult<Subnet>;

    /// ListPublicIpPools of a compartment (all pages).
    async fn list_public_ip_pools(&self, compartment_id: &str) -> OciResult<Vec<PublicIpPool>>;

    /// GetPublicIpPool.
    async fn get_public_ip_pool(&self, id: &str) -> OciResult<PublicIpPool>;

    /// How long a write asked for now would wait for the client's own rate
    /// limit behind the writes already waiting (zero: no limit here). Not an
    /// OCI call: reads that are only needed for a write can gather for about
    /// that long for free.
    fn write_wait(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// How many writes asked for now would go at once: the client's burst
    /// while no write waits for its rate limit, else 0 (`usize::MAX`: no
    /// limit here). Not an OCI call: a read gathered for the writes that
    /// follow it need not wait for more passes than can write at once.
    fn writes_at_once(&self) -> usize {
        usize::MAX
    }
}
