//! What one pass over a ReservedIP saw: the input of every decision.
//!
//! The controller fills an [`Observation`] by reading OCI and the cluster
//! (`controller::observe`); the decisions (`decide::pass`) never do I/O.
//! Reads stop as soon as the decisions no longer need more: a public IP that
//! cannot be held makes looking up the target pointless, so
//! [`Observation::target`] and [`Observation::policy`] are `None` then.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::ownership::Owner;
use super::target::Target;
use super::tenancy::Tenancy;
use crate::api::crd::{PolicyVerdict, ReservedIPSpec, ReservedIPStatus};
use crate::oci::{OciError, PublicIp};

/// Everything a pass over one ReservedIP decides from.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// The ReservedIP, as its ownership tags name it.
    pub owner: Owner<'a>,
    /// The operator's compartment (where IPs are created and taken over).
    pub compartment_id: &'a str,
    pub spec: &'a ReservedIPSpec,
    pub generation: Option<i64>,
    /// The status the pass starts from (read fresh from the API server when
    /// about to allocate: a lagging cache must never cause a second create).
    pub status: ReservedIPStatus,
    /// The public IP, as [`what_to_read`] said to look for it.
    pub public_ip: PublicIpSeen,
    /// The assignment resolved; `None` when not looked up.
    pub target: Option<Result<Target, Failure>>,
    /// What the policies decided (or why they could not); `None` when not asked.
    pub policy: Option<Result<Gate, String>>,
    /// The namespace's grants and what the cluster says of the target.
    pub tenancy: Tenancy,
    pub timing: Timing,
    pub now: Timestamp,
    /// A fresh `opc-retry-token`, used only if status has none yet.
    pub new_token: String,
}

/// How soon to look again, from the operator's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// While OCI is changing an IP.
    pub poll: Duration,
    /// An IP at rest, for drift.
    pub resync: Duration,
    /// How long a recorded IP must answer 404 before it counts as deleted.
    pub missing_grace: Duration,
}

/// Where to look for the public IP of a ReservedIP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Status names it: read it (from the shared listing when recent).
    ById(String),
    /// The spec asks for an existing address: look it up by address.
    ByAddress(String),
    /// A create was started but its answer never recorded (a crash, a lost
    /// answer): list the compartment (the pool, if one) for our tags.
    ByTags { pool: Option<String> },
    /// Nothing is held or being created.
    Nothing,
}

/// Where to look for the public IP, from status and spec.
pub fn what_to_read(status: &ReservedIPStatus, spec: &ReservedIPSpec) -> Read {
    if let Some(id) = &status.public_ip_id {
        Read::ById(id.clone())
    } else if let Some(address) = &spec.public_ipv4_address {
        Read::ByAddress(address.clone())
    } else if status.allocation_token.is_some() {
        Read::ByTags {
            pool: spec.public_ipv4_pool.clone(),
        }
    } else {
        Read::Nothing
    }
}

/// What the read of [`what_to_read`] found.
// One value per pass (see `Decision`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum PublicIpSeen {
    /// Nothing to read, or no IP with our tags.
    Nothing,
    /// An IP (possibly terminating or terminated: that is for the decisions).
    Found { ip: PublicIp, how: How },
    /// OCI answers 404 for the IP status names.
    NotFound { id: String },
    /// No public IP has the address the spec asks for.
    AddressNotFound,
    /// The read failed.
    Failed(Failure),
}

/// How a found IP was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// GetPublicIp: fresh, with an etag.
    Read,
    /// From the shared listing: up to a minute old, no etag; never acted on.
    Listed,
    /// From a listing begun after the pass asked (IPs in transition, looked
    /// at together): fresh, but no etag; never acted on either.
    Gathered,
    /// Found by our tags after an unfinished create.
    Recovered,
    /// GetPublicIpByIpAddress for `publicIPv4Address`.
    ByAddress,
}

/// What the policies decided for one pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gate {
    /// The tags the IP should carry (before the operator's ownership tags).
    pub tags: BTreeMap<String, String>,
    /// The pool to allocate from.
    pub pool: Option<String>,
    /// Set when a policy refuses the IP itself (tags or pool denied): `(policy, reason)`.
    pub refused: Option<(String, String)>,
    /// Set when a policy refuses the assignment target: `(policy, reason)`.
    pub target_refused: Option<(String, String)>,
    pub verdicts: Vec<PolicyVerdict>,
}

/// A failed OCI call, as the decisions and the user need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The condition reason: OCI's own code (`OCILimitExceeded`), so users
    /// and alerts can tell a full compartment from a transient 500.
    pub reason: String,
    /// OCI's code, if it answered with one.
    pub code: Option<String>,
    /// 409: the target already has a public IP (on create or assign).
    pub conflict: bool,
    /// What went wrong, for messages (with the opc-request-id).
    pub message: String,
}

impl Failure {
    pub fn from_oci(e: &OciError) -> Self {
        let code = e.code().filter(|c| !c.is_empty());
        let reason = match code {
            _ if e.is_throttled() => "OCIThrottled".to_string(),
            // Only a plain code goes into a reason (CamelCase, no spaces).
            Some(code) if code.chars().all(|c| c.is_ascii_alphanumeric()) => format!("OCI{code}"),
            _ => "OCIError".to_string(),
        };
        let message = match code.and_then(what_to_do) {
            Some(hint) => format!("{e} ({hint})"),
            None => e.to_string(),
        };
        Self {
            reason,
            code: code.map(str::to_string),
            conflict: e.is_conflict(),
            message,
        }
    }

    /// A read from the Kubernetes API that failed (no OCI code, no conflict).
    pub fn cluster(reason: &str, message: String) -> Self {
        Self {
            reason: reason.to_string(),
            code: None,
            conflict: false,
            message,
        }
    }
}

/// What a user can do about OCI's documented error codes of the calls the
/// operator makes (the API reference's "API Errors"), for status messages.
/// `None`: the code explains itself or the operator handles it (`Conflict`
/// is a taken target, `InvalidatedRetryToken` a create to recover,
/// `IncorrectState` and 429/5xx are retried).
fn what_to_do(code: &str) -> Option<&'static str> {
    Some(match code {
        "LimitExceeded" => {
            "the region's limit of reserved public IPs (service limit reserved-public-ip-count) or the pool's capacity is reached: release unused IPs or ask OCI for a higher limit"
        }
        "QuotaExceeded" => {
            "a compartment quota allows no more reserved public IPs: release unused IPs or raise the quota"
        }
        "InvalidParameter" => {
            "OCI refused a value of the request; for an assignment: a reserved public IP can only go to a private IP in a public subnet"
        }
        "RelatedResourceNotAuthorizedOrNotFound" => {
            "the target private IP or the pool does not exist, or the operator's IAM policy does not let it use them (use private-ips, use public-ip-pools)"
        }
        "NotAuthorizedOrNotFound" => {
            "the public IP does not exist, or the operator's IAM policy does not allow this call (manage public-ips in the compartment)"
        }
        "NotAuthorizedOrResourceAlreadyExists" | "NotAuthorized" | "NotAllowed" => {
            "the operator's IAM policy does not allow this call: see `k8s-oci-operator check` for the statements it needs"
        }
        "NotAuthenticated" => {
            "OCI did not accept the request's signature or session token: run `k8s-oci-operator check`"
        }
        "MissingParameter" | "CannotParseRequest" => {
            "OCI could not read the request: please report it with the opc-request-id"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::crd::ReservedIPSpec;

    fn service(status: u16, code: &str) -> OciError {
        OciError::Service {
            operation: "CreatePublicIp",
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("r1".into()),
        }
    }

    #[test]
    fn failure_reasons_carry_ocis_code() {
        assert_eq!(
            Failure::from_oci(&service(400, "LimitExceeded")).reason,
            "OCILimitExceeded"
        );
        assert_eq!(
            Failure::from_oci(&service(429, "TooManyRequests")).reason,
            "OCIThrottled"
        );
        assert_eq!(
            Failure::from_oci(&service(500, "odd code!")).reason,
            "OCIError"
        );
        let conflict = Failure::from_oci(&service(409, "Conflict"));
        assert!(conflict.conflict);
        assert!(conflict.message.contains("r1"), "{}", conflict.message);
    }

    /// Each code OCI documents for these calls: its reason, whether it is a
    /// taken target, and what the message tells the user to do.
    #[test]
    fn each_documented_code_is_handled_by_its_code() {
        let cases: &[(u16, &str, bool, Option<&str>)] = &[
            (
                400,
                "LimitExceeded",
                false,
                Some("reserved-public-ip-count"),
            ),
            (400, "QuotaExceeded", false, Some("quota")),
            (400, "InvalidParameter", false, Some("public subnet")),
            (400, "MissingParameter", false, Some("report it")),
            (400, "CannotParseRequest", false, Some("report it")),
            (
                400,
                "RelatedResourceNotAuthorizedOrNotFound",
                false,
                Some("use private-ips"),
            ),
            (401, "NotAuthenticated", false, Some("check")),
            (
                404,
                "NotAuthorizedOrNotFound",
                false,
                Some("manage public-ips"),
            ),
            (409, "Conflict", true, None),
            (409, "IncorrectState", false, None),
            (409, "InvalidatedRetryToken", false, None),
            (
                409,
                "NotAuthorizedOrResourceAlreadyExists",
                false,
                Some("IAM policy"),
            ),
            (412, "NoEtagMatch", false, None),
        ];
        for (status, code, conflict, hint) in cases {
            let failure = Failure::from_oci(&service(*status, code));
            assert_eq!(failure.reason, format!("OCI{code}"));
            assert_eq!(failure.code.as_deref(), Some(*code));
            assert_eq!(failure.conflict, *conflict, "{code}");
            match hint {
                Some(hint) => assert!(
                    failure.message.contains(hint),
                    "{code}: {}",
                    failure.message
                ),
                None => assert!(
                    failure.message.ends_with("r1)"),
                    "{code}: {}",
                    failure.message
                ),
            }
        }
    }

    #[test]
    fn the_public_ip_is_looked_for_where_status_and_spec_say() {
        let spec = ReservedIPSpec {
            public_ipv4_address: Some("198.51.100.7".into()),
            public_ipv4_pool: Some("pool".into()),
            ..Default::default()
        };
        let mut status = ReservedIPStatus::default();
        assert_eq!(
            what_to_read(&status, &spec),
            Read::ByAddress("198.51.100.7".into())
        );
        assert_eq!(
            what_to_read(&status, &ReservedIPSpec::default()),
            Read::Nothing
        );
        status.allocation_token = Some("t".into());
        let pooled = ReservedIPSpec {
            public_ipv4_pool: Some("pool".into()),
            ..Default::default()
        };
        assert_eq!(
            what_to_read(&status, &pooled),
            Read::ByTags {
                pool: Some("pool".into())
            },
            "an unfinished create is recovered by tags before anything else is created"
        );
        status.public_ip_id = Some("ip1".into());
        assert_eq!(
            what_to_read(&status, &spec),
            Read::ById("ip1".into()),
            "status names the IP: read it, whatever the spec"
        );
    }
}
