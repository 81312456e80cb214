//! Releasing one public IP, the one way it is done: on a ReservedIP's
//! delete and for an orphan of the sweep. Every step is taken on a fresh
//! read and with its etag, so an IP that changed hands or state meanwhile is
//! refused by OCI instead of released.

use crate::api::crd::ReclaimPolicy;
use crate::decide::release::{ReleaseStep, next};
use crate::oci::{OciError, OciNetwork, PublicIp, UpdatePublicIpDetails};

/// Where a release stands after one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// Nothing was done: gone already, or not ours.
    Skipped,
    /// Not finished: OCI is changing the IP (or unassigning it for us).
    Pending(String),
    /// Deleted, or (`kept`) unassigned and untagged. `address` for events,
    /// when the release read it.
    Done { address: Option<String>, kept: bool },
}

/// Releases public IP `id` of a ReservedIP of `namespace`: deletes it, or
/// when it is kept (`policy`, and the IP's own tags: see
/// `decide::release::keeps`), unassigns it and removes the operator's tags.
/// `ours` tells whether an IP's tags name the owner being released. With
/// `at_rest_etag` (the etag of the IP last read ours, at rest and not taken
/// over) a delete is tried in one call; OCI refuses it if the IP changed
/// since, and the release goes on from a fresh read.
pub async fn release(
    oci: &dyn OciNetwork,
    id: &str,
    ours: impl Fn(&PublicIp) -> bool,
    (policy, namespace): (Option<ReclaimPolicy>, &str),
    at_rest_etag: Option<&str>,
) -> Result<Released, OciError> {
    let keep_asked = policy == Some(ReclaimPolicy::Retain);
    if let (false, Some(etag)) = (keep_asked, at_rest_etag) {
        match oci.delete_public_ip(id, Some(etag)).await {
            Ok(_) => {
                return Ok(Released::Done {
                    address: None,
                    kept: false,
                });
            }
            Err(e) if e.is_etag_mismatch() => {}
            Err(e) => return Err(e),
        }
    }
    let ip = match oci.get_public_ip(id).await {
        Ok(ip) => ip,
        Err(e) if e.is_not_found() => return Ok(Released::Skipped),
        Err(e) => return Err(e),
    };
    let address = ip.ip_address.clone().unwrap_or_default();
    match next(&ip, ours(&ip), policy, namespace) {
        ReleaseStep::Skip => Ok(Released::Skipped),
        ReleaseStep::Wait => Ok(Released::Pending(format!(
            "public IP {address} is {}",
            ip.lifecycle_state.as_str()
        ))),
        ReleaseStep::Unassign => {
            oci.update_public_ip(id, &UpdatePublicIpDetails::unassign(), ip.etag.as_deref())
                .await?;
            Ok(Released::Pending(format!(
                "unassigning public IP {address}, which is kept"
            )))
        }
        ReleaseStep::Untag { tags } => {
            let details = UpdatePublicIpDetails {
                freeform_tags: Some(tags),
                ..Default::default()
            };
            oci.update_public_ip(id, &details, ip.etag.as_deref())
                .await?;
            Ok(Released::Done {
                address: Some(address),
                kept: true,
            })
        }
        ReleaseStep::Delete => {
            oci.delete_public_ip(id, ip.etag.as_deref()).await?;
            Ok(Released::Done {
                address: Some(address),
                kept: false,
            })
        }
    }
}
