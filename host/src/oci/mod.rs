//! The OCI networking calls the operator uses, behind one narrow trait.
//!
//! - [`OciNetwork`]: the calls, in terms of our own small models ([`model`]),
//!   so operator logic never sees SDK types and tests can fake the trait.
//! - [`HttpOciClient`]: the implementation over HTTP.
//! - [`OciCredentials`]: API key (config file, Secret fields or in memory) or
//!   instance principals, each with a request signer ([`sign`] is ours).
//! - [`OciError`]: typed errors with status, OCI code and opc-request-id.

mod auth;
mod error;
mod http;
mod legacy_pem;
mod limit;
pub mod model;
mod request;
#[cfg(feature = "oci-rust-sdk")]
mod sdk_signer;
pub mod sign;

pub use auth::{ApiKey, OciCredentials, SignerImplementation};
pub use error::{OciError, OciResult};
pub use http::{HttpOciClient, region_endpoint};
pub(crate) use limit::Counted;
pub use limit::{Limits, OciMetrics, Throttled};
pub use model::*;

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
}
