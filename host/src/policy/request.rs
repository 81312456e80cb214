//! What a decision asks the policies: the ReservedIP and its namespace, and
//! the request bodies of each decision as the ABI documents them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::abi::{Namespace, ReservedIp, ReservedIpSpec, Target};
use super::error::PolicyError;

/// The ReservedIP and namespace a decision is about.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReservedIpInput {
    pub reserved_ip: ReservedIp,
    pub namespace: Namespace,
}

impl ReservedIpInput {
    /// From the resource and its namespace's labels.
    pub fn new(
        resource: &crate::api::crd::ReservedIP,
        namespace_labels: BTreeMap<String, String>,
    ) -> Result<Self, PolicyError> {
        let namespace = resource.metadata.namespace.clone().unwrap_or_default();
        // Through JSON, so every spec field (current and future) reaches
        // policies with its API name.
        let spec: ReservedIpSpec = serde_json::from_value(serde_json::to_value(&resource.spec)?)?;
        Ok(ReservedIpInput {
            reserved_ip: ReservedIp {
                name: resource.metadata.name.clone().unwrap_or_default(),
                namespace: namespace.clone(),
                labels: resource.metadata.labels.clone().unwrap_or_default(),
                spec,
            },
            namespace: Namespace {
                name: namespace,
                labels: namespace_labels,
            },
        })
    }
}

#[derive(Serialize)]
pub(super) struct Common<'a> {
    #[serde(rename = "reservedIP")]
    pub(super) reserved_ip: &'a ReservedIp,
    pub(super) namespace: &'a Namespace,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PoolBody<'a> {
    #[serde(flatten)]
    pub(super) common: Common<'a>,
    pub(super) allowed_pools: Option<&'a [String]>,
}

#[derive(Serialize)]
pub(super) struct EligibilityBody<'a> {
    #[serde(flatten)]
    pub(super) common: Common<'a>,
    pub(super) target: &'a Target,
}

pub(super) fn common(req: &ReservedIpInput) -> Common<'_> {
    Common {
        reserved_ip: &req.reserved_ip,
        namespace: &req.namespace,
    }
}
