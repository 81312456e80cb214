//! Typed errors of the OCI client.
//!
//! Errors carry what an operator needs to decide and to report (operation,
//! HTTP status, OCI error code and message, opc-request-id) and never any key
//! material or the Authorization header.

use std::time::Duration;

/// An error from one OCI call, or from setting the client up. Clone: one
/// gathered read's error is every joiner's (`cache::gather`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum OciError {
    /// OCI answered with a non-success status and (usually) a `{code, message}` body.
    #[error(
        "{operation}: OCI answered {status} {code}: {message} (opc-request-id: {})",
        request_id.as_deref().unwrap_or("none")
    )]
    Service {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// No (complete) answer: connection refused or reset, timeout, broken body.
    #[error("{operation}: request failed after {} ms: {message}", elapsed.as_millis())]
    Transport {
        operation: &'static str,
        timeout: bool,
        elapsed: Duration,
        message: String,
    },
    /// A success status whose body we could not decode.
    #[error(
        "{operation}: could not decode OCI's answer ({status}): {message} (opc-request-id: {})",
        request_id.as_deref().unwrap_or("none")
    )]
    Decode {
        operation: &'static str,
        status: u16,
        message: String,
        request_id: Option<String>,
    },
    /// The request could not be signed (bad key, rotating credentials failed).
    #[error("{operation}: could not sign the request: {message}")]
    Signing {
        operation: &'static str,
        message: String,
    },
    /// Credentials or client configuration are unusable.
    #[error("OCI client configuration: {0}")]
    Config(String),
}

/// Result of an OCI call.
pub type OciResult<T> = Result<T, OciError>;

impl OciError {
    /// The OCI operation name (e.g. `CreatePublicIp`), if the error is from a call.
    pub fn operation(&self) -> Option<&'static str> {
        match self {
            Self::Service { operation, .. }
            | Self::Transport { operation, .. }
            | Self::Decode { operation, .. }
            | Self::Signing { operation, .. } => Some(operation),
            Self::Config(_) => None,
        }
    }

    /// HTTP status OCI answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Service { status, .. } | Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// OCI's error `code` (e.g. `NotAuthorizedOrNotFound`, `LimitExceeded`).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// OCI's `opc-request-id`, to quote when asking Oracle support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Service { request_id, .. } | Self::Decode { request_id, .. } => {
                request_id.as_deref()
            }
            _ => None,
        }
    }

    /// 404: the resource does not exist (or we may not see it; OCI does not say which).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// 429: OCI throttled us; back off before the next call.
    pub fn is_throttled(&self) -> bool {
        matches!(self, Self::Service { status: 429, .. })
    }

    /// 412: the if-match etag no longer matches; re-read and decide again.
    pub fn is_etag_mismatch(&self) -> bool {
        matches!(self, Self::Service { status: 412, .. })
    }

    /// 409 `Conflict`: on a create with a target or an assignment, the
    /// private IP already has a public IP. OCI's other 409 codes are not
    /// this: `IncorrectState` is transient (retried), `InvalidatedRetryToken`
    /// concerns the create's token, `NotAuthorizedOrResourceAlreadyExists`
    /// the caller's rights.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Service { status: 409, code, .. } if code == "Conflict")
    }

    /// 401: the signature or key was rejected.
    pub fn is_not_authenticated(&self) -> bool {
        matches!(self, Self::Service { status: 401, .. })
    }

    /// Worth retrying with backoff, as Oracle's SDK retry policy does: network
    /// errors and timeouts, 409 IncorrectState, LockConflict and
    /// ExternalServerIncorrectState (transient per OCI's API errors table),
    /// 429, and 500/502/503/504 (not 501).
    ///
    /// A transport error on a write may mean the change was applied anyway:
    /// retry creates with the same opc-retry-token and re-read before updates.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Service { status, code, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
                    || (*status == 409
                        && matches!(
                            code.as_str(),
                            "IncorrectState" | "LockConflict" | "ExternalServerIncorrectState"
                        ))
            }
            Self::Transport { .. } => true,
            Self::Decode { .. } | Self::Signing { .. } | Self::Config(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> OciError {
        OciError::Service {
            operation: "GetPublicIp",
            status,
            code: code.to_string(),
            message: "m".to_string(),
            request_id: Some("rid".to_string()),
        }
    }

    #[test]
    fn classifies_statuses() {
        assert!(service(404, "NotAuthorizedOrNotFound").is_not_found());
        assert!(!service(404, "NotAuthorizedOrNotFound").is_retryable());
        assert!(service(429, "TooManyRequests").is_throttled());
        assert!(service(429, "TooManyRequests").is_retryable());
        for status in [500, 502, 503, 504] {
            assert!(service(status, "InternalError").is_retryable(), "{status}");
        }
        assert!(!service(501, "NotImplemented").is_retryable());
        assert!(service(409, "IncorrectState").is_retryable());
        assert!(service(409, "LockConflict").is_retryable());
        assert!(service(409, "ExternalServerIncorrectState").is_retryable());
        assert!(!service(409, "InvalidatedRetryToken").is_retryable());
        assert!(!service(409, "IncorrectState").is_conflict());
        assert!(!service(409, "InvalidatedRetryToken").is_conflict());
        assert!(!service(409, "NotAuthorizedOrResourceAlreadyExists").is_conflict());
        assert!(!service(409, "Conflict").is_retryable());
        assert!(service(409, "Conflict").is_conflict());
        assert!(service(412, "NoEtagMatch").is_etag_mismatch());
        assert!(!service(400, "LimitExceeded").is_retryable());
        assert!(service(401, "NotAuthenticated").is_not_authenticated());
    }

    #[test]
    fn transport_errors_are_retryable() {
        let err = OciError::Transport {
            operation: "CreatePublicIp",
            timeout: true,
            elapsed: Duration::from_secs(1),
            message: "timed out".into(),
        };
        assert!(err.is_retryable());
        assert_eq!(err.status(), None);
        assert_eq!(err.operation(), Some("CreatePublicIp"));
    }

    #[test]
    fn display_names_operation_code_and_request_id() {
        let text = service(409, "Conflict").to_string();
        assert!(text.contains("GetPublicIp"));
        assert!(text.contains("409 Conflict"));
        assert!(text.contains("rid"));
    }
}
