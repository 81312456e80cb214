//! The instance metadata service (IMDS v2) of the OCI instance we run on:
//! the instance's identity certificates (instance principals) and its
//! region and realm.

use super::session::with_causes;
use serde::Deserialize;
use std::time::Duration;

/// Where IMDS v2 answers on every OCI instance.
pub const DEFAULT_METADATA_URL: &str = "http://169.254.169.254/opc/v2";

/// IMDS answers from the hypervisor: if it has not answered in this long,
/// it will not.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A client of the instance metadata service.
#[derive(Clone)]
pub(crate) struct InstanceMetadata {
    http: reqwest::Client,
    base: String,
}

/// `instance/regionInfo`: the region and the realm's domain, so endpoints of
/// any realm can be derived without a table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RegionInfo {
    /// E.g. `us-ashburn-1`.
    pub region_identifier: String,
    /// E.g. `oraclecloud.com` (realm oc1).
    pub realm_domain_component: String,
    #[serde(default)]
    pub realm_key: String,
    #[serde(default)]
    pub region_key: String,
}

impl InstanceMetadata {
    /// A client of the service at `base` (e.g. [`DEFAULT_METADATA_URL`]).
    pub(crate) fn new(base: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // IMDS is link-local: a proxy cannot reach it.
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| format!("cannot build the metadata client: {e}"))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    /// GET `<base>/<path>` with the header IMDS v2 requires; the body as text.
    pub(crate) async fn get(&self, path: &str) -> Result<String, String> {
        let url = format!("{}/{path}", self.base);
        let response = self
            .http
            .get(&url)
            .header("authorization", "Bearer Oracle")
            .send()
            .await
            .map_err(|e| {
                format!(
                    "the instance metadata service does not answer at {url}: {} \
                     (instance principals work only on an OCI instance)",
                    with_causes(&e)
                )
            })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("reading {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "the instance metadata service answered {status} for {url}"
            ));
        }
        Ok(body)
    }

    /// The instance's region and realm.
    pub(crate) async fn region_info(&self) -> Result<RegionInfo, String> {
        let text = self.get("instance/regionInfo").await?;
        serde_json::from_str(&text)
            .map_err(|e| format!("instance/regionInfo is not what OCI documents: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_info_reads_as_imds_writes_it() {
        let info: RegionInfo = serde_json::from_str(
            r#"{"realmKey":"oc1","realmDomainComponent":"oraclecloud.com","regionKey":"IAD","regionIdentifier":"us-ashburn-1"}"#,
        )
        .unwrap();
        assert_eq!(info.region_identifier, "us-ashburn-1");
        assert_eq!(info.realm_domain_component, "oraclecloud.com");
    }
}
