//! Session tokens, one store for every way of getting one (X.509 federation
//! of the instance principal, OKE's proxymux for workloads, and a user's
//! session as `oci session authenticate` gets one, issued by the test
//! harness through `EmulatorHandle::issue_session_token`): issue, look up
//! for signature checks (`keyId="ST$<token>"`), expire, revoke.
//!
//! A token is JWT-shaped, `base64url(header).base64url(claims).base64url(64
//! random bytes)`: clients read its claims (`exp` to plan the refresh) but
//! never check the signature part, so random bytes stand in for one. The
//! store, not the token, is the truth: a token is valid while the store says
//! so.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use rand::RngCore as _;
use rsa::RsaPublicKey;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `iss` of every token, as OCI's identity service names itself.
const ISSUER: &str = "authService.oracle.com";

/// Which flow a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PrincipalType {
    /// X.509 federation with the instance certificate.
    Instance,
    /// The proxymux (OKE workload identity).
    Resource,
    /// A user's session (`oci session authenticate`): a config profile's
    /// `security_token_file`.
    User,
}

impl PrincipalType {
    /// The `ptype` claim.
    pub fn claim(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Resource => "resource",
            Self::User => "user",
        }
    }

    /// The claim naming the tenancy (`tenant` or `res_tenant`).
    fn tenancy_claim(self) -> &'static str {
        match self {
            Self::Instance | Self::User => "tenant",
            Self::Resource => "res_tenant",
        }
    }
}

/// Who a session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalType,
    /// The `sub` claim: the instance OCID, or the workload's ServiceAccount.
    pub subject: String,
    pub tenancy_id: String,
}

/// Why a token cannot sign; the 401's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("unknown session token")]
    Unknown,
    #[error("session token expired")]
    Expired,
    #[error("session token revoked")]
    Revoked,
}

#[derive(Debug)]
struct Session {
    public_key: RsaPublicKey,
    expires_at: SystemTime,
    revoked: bool,
    principal: Principal,
}

/// Every token issued since start, by token (without `ST$`). Tokens are never
/// forgotten, so an old one is "expired" or "revoked", not "unknown".
#[derive(Debug)]
pub struct SessionStore {
    ttl: Duration,
    sessions: HashMap<String, Session>,
}

impl SessionStore {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            sessions: HashMap::new(),
        }
    }

    /// Lifetime of tokens issued from now on.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Changes the lifetime of tokens issued from now on (zero issues tokens
    /// that are already expired).
    pub fn set_ttl(&mut self, ttl: Duration) {
        self.ttl = ttl;
    }

    /// Issues a token for `principal`, whose requests `public_key` verifies.
    pub fn issue(
        &mut self,
        principal: Principal,
        public_key: RsaPublicKey,
        now: SystemTime,
    ) -> String {
        let ttl = self.ttl;
        self.issue_for(principal, public_key, now, ttl)
    }

    /// Issues a token valid for `ttl`, whatever the store's lifetime.
    pub fn issue_for(
        &mut self,
        principal: Principal,
        public_key: RsaPublicKey,
        now: SystemTime,
        ttl: Duration,
    ) -> String {
        let expires_at = now + ttl;
        let token = encode(&principal, unix_seconds(now), unix_seconds(expires_at));
        self.sessions.insert(
            token.clone(),
            Session {
                public_key,
                expires_at,
                revoked: false,
                principal,
            },
        );
        token
    }

    /// The public key of a usable token (without `ST$`).
    pub fn public_key(&self, token: &str, now: SystemTime) -> Result<&RsaPublicKey, SessionError> {
        let session = self.sessions.get(token).ok_or(SessionError::Unknown)?;
        if session.revoked {
            return Err(SessionError::Revoked);
        }
        if now >= session.expires_at {
            return Err(SessionError::Expired);
        }
        Ok(&session.public_key)
    }

    /// Revokes every token issued so far; returns how many were still unrevoked.
    pub fn revoke_all(&mut self) -> usize {
        let mut revoked = 0;
        for session in self.sessions.values_mut().filter(|s| !s.revoked) {
            session.revoked = true;
            revoked += 1;
        }
        revoked
    }

    /// Tokens issued since start.
    pub fn issued(&self) -> usize {
        self.sessions.len()
    }

    /// Tokens issued since start through one flow.
    pub fn issued_for(&self, kind: PrincipalType) -> usize {
        self.sessions
            .values()
            .filter(|s| s.principal.kind == kind)
            .count()
    }
}

/// Seconds since the epoch; a clock before 1970 counts as 0.
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Header, claims and 64 random bytes, each base64url without padding.
fn encode(principal: &Principal, issued_at: u64, expires_at: u64) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "emulator"});
    let mut claims = json!({
        "sub": principal.subject,
        "iss": ISSUER,
        "aud": "oci",
        "iat": issued_at,
        "exp": expires_at,
        "jti": uuid::Uuid::new_v4().to_string(),
        "ptype": principal.kind.claim(),
    });
    claims[principal.kind.tenancy_claim()] = Value::String(principal.tenancy_id.clone());
    let mut signature = [0u8; 64];
    rand::thread_rng().fill_bytes(&mut signature);
    format!(
        "{}.{}.{}",
        BASE64URL.encode(header.to_string()),
        BASE64URL.encode(claims.to_string()),
        BASE64URL.encode(signature)
    )
}

/// Why a token's claims could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("a token has three dot-separated parts")]
    Shape,
    #[error("the claims are not base64url")]
    Base64,
    #[error("the claims are not a JSON object")]
    Json,
}

/// The claims (middle part) of a JWT-shaped token, as clients read them.
pub fn claims(token: &str) -> Result<Value, ClaimsError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ClaimsError::Shape);
    };
    let bytes = BASE64URL.decode(payload).map_err(|_| ClaimsError::Base64)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| ClaimsError::Json)?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(ClaimsError::Json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPrivateKey;

    fn key() -> RsaPublicKey {
        // Small: only its identity matters here, not its strength.
        RsaPrivateKey::new(&mut rand::thread_rng(), 512)
            .expect("key")
            .to_public_key()
    }

    fn instance() -> Principal {
        Principal {
            kind: PrincipalType::Instance,
            subject: "ocid1.instance.oc1..i".into(),
            tenancy_id: "ocid1.tenancy.oc1..t".into(),
        }
    }

    fn resource() -> Principal {
        Principal {
            kind: PrincipalType::Resource,
            subject: "system:serviceaccount:ns:sa".into(),
            tenancy_id: "ocid1.tenancy.oc1..t".into(),
        }
    }

    #[test]
    fn tokens_are_jwt_shaped_with_the_claims_clients_read() {
        let mut store = SessionStore::new(Duration::from_secs(1200));
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = store.issue(instance(), key(), now);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&BASE64URL.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "JWT", "kid": "emulator"})
        );
        assert_eq!(BASE64URL.decode(parts[2]).expect("b64").len(), 64);
        let claims = claims(&token).expect("claims");
        assert_eq!(claims["sub"], "ocid1.instance.oc1..i");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_001_200);
        assert_eq!(claims["ptype"], "instance");
        assert_eq!(claims["tenant"], "ocid1.tenancy.oc1..t");
        assert!(claims.get("res_tenant").is_none());
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

        let workload = super::claims(&store.issue(resource(), key(), now)).expect("claims");
        assert_eq!(workload["ptype"], "resource");
        assert_eq!(workload["res_tenant"], "ocid1.tenancy.oc1..t");
        assert!(workload.get("tenant").is_none());
        assert_ne!(workload["jti"], claims["jti"]);
    }

    #[test]
    fn tokens_expire_after_the_ttl_in_force_when_issued() {
        let mut store = SessionStore::new(Duration::from_secs(60));
        let now = SystemTime::now();
        let public = key();
        let token = store.issue(instance(), public.clone(), now);
        store.set_ttl(Duration::from_secs(1));
        let short = store.issue(instance(), key(), now);
        assert_eq!(store.public_key(&token, now), Ok(&public));
        let later = now + Duration::from_secs(1);
        assert_eq!(store.public_key(&short, later), Err(SessionError::Expired));
        assert!(store.public_key(&token, later).is_ok());
        assert_eq!(
            store.public_key(&token, now + Duration::from_secs(60)),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn revocation_covers_tokens_issued_so_far_only() {
        let mut store = SessionStore::new(Duration::from_secs(60));
        let now = SystemTime::now();
        let a = store.issue(instance(), key(), now);
        let b = store.issue(resource(), key(), now);
        assert_eq!(store.revoke_all(), 2);
        assert_eq!(store.revoke_all(), 0);
        let c = store.issue(resource(), key(), now);
        assert_eq!(store.public_key(&a, now), Err(SessionError::Revoked));
        assert_eq!(store.public_key(&b, now), Err(SessionError::Revoked));
        assert!(store.public_key(&c, now).is_ok());
        assert_eq!(store.public_key("a.b.c", now), Err(SessionError::Unknown));
        assert_eq!(store.issued(), 3);
        assert_eq!(store.issued_for(PrincipalType::Instance), 1);
        assert_eq!(store.issued_for(PrincipalType::Resource), 2);
    }

    #[test]
    fn user_sessions_have_their_own_lifetime() {
        let mut store = SessionStore::new(Duration::from_secs(1200));
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let user = Principal {
            kind: PrincipalType::User,
            subject: "ocid1.user.oc1..u".into(),
            tenancy_id: "ocid1.tenancy.oc1..t".into(),
        };
        let token = store.issue_for(user, key(), now, Duration::from_secs(60));
        let claims = claims(&token).expect("claims");
        assert_eq!(claims["ptype"], "user");
        assert_eq!(claims["tenant"], "ocid1.tenancy.oc1..t");
        assert_eq!(claims["exp"], 1_700_000_060);
        assert!(store.public_key(&token, now).is_ok());
        assert_eq!(
            store.public_key(&token, now + Duration::from_secs(60)),
            Err(SessionError::Expired)
        );
        assert_eq!(store.issued_for(PrincipalType::User), 1);
    }

    #[test]
    fn claims_of_garbage_are_errors() {
        assert_eq!(claims("abc"), Err(ClaimsError::Shape));
        assert_eq!(claims("a.b.c.d"), Err(ClaimsError::Shape));
        assert_eq!(claims("a.!!.c"), Err(ClaimsError::Base64));
        let not_object = format!("a.{}.c", BASE64URL.encode("[1]"));
        assert_eq!(claims(&not_object), Err(ClaimsError::Json));
    }
}
