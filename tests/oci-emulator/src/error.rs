//! Errors the emulated API answers with: an HTTP status and OCI's `{code, message}`.

use serde::Serialize;

/// An OCI API error. Codes and statuses follow OCI's documented error list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 404 for an id or address that does not exist (OCI does not say whether
    /// it exists and we may not see it, or does not exist at all).
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            404,
            "NotAuthorizedOrNotFound",
            format!("Authorization failed or requested resource not found: {what}"),
        )
    }

    /// 404 for a path the API does not have.
    pub fn no_route(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("No such operation: {method} {path}"),
        )
    }

    /// 400 for a resource referenced by the request (privateIpId, publicIpPoolId) that does not exist.
    pub fn related_not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            "RelatedResourceNotAuthorizedOrNotFound",
            format!("Related resource not found or not authorized: {what}"),
        )
    }

    pub fn missing(parameter: &str) -> Self {
        Self::new(
            400,
            "MissingParameter",
            format!("Missing required parameter: {parameter}"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameter", message)
    }

    pub fn cannot_parse(message: impl Into<String>) -> Self {
        Self::new(400, "CannotParseRequest", message)
    }

    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(400, "LimitExceeded", message)
    }

    /// 409 Conflict: not transient, retrying the same request will not help.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, "Conflict", message)
    }

    /// 409 IncorrectState: transient, the resource is busy; retry later.
    pub fn incorrect_state(message: impl Into<String>) -> Self {
        Self::new(409, "IncorrectState", message)
    }

    pub fn invalidated_retry_token(message: impl Into<String>) -> Self {
        Self::new(409, "InvalidatedRetryToken", message)
    }

    pub fn etag_mismatch(id: &str) -> Self {
        Self::new(
            412,
            "NoEtagMatch",
            format!("The resource {id} has changed since the etag given in if-match"),
        )
    }

    pub fn not_authenticated(detail: impl std::fmt::Display) -> Self {
        Self::new(
            401,
            "NotAuthenticated",
            format!(
                "The required information to complete authentication was not provided or was incorrect ({detail})"
            ),
        )
    }

    pub fn too_many_requests() -> Self {
        Self::new(429, "TooManyRequests", "Too many requests for the tenant")
    }

    pub fn internal() -> Self {
        Self::new(
            500,
            "InternalServerError",
            "Internal server error (injected)",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(503, "ServiceUnavailable", "Service unavailable (injected)")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "NotAllowed", message)
    }
}
