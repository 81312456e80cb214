//! Signing with a session token: what instance principals and OKE workload
//! identity have in common.
//!
//! The operator makes an ephemeral RSA key pair, has an issuer (the federation
//! endpoint, the OKE proxymux) bind a token to its public half, and signs
//! requests with `keyId="ST$<token>"` and the private half. Tokens expire
//! (about 20 minutes for instance principals), so:
//!
//! - a new key and token are fetched at half the token's lifetime, as OCI's
//!   SDKs do, by one caller while the others keep signing with the current
//!   token (still valid for the other half);
//! - a failed renewal does not fail requests while the current token is
//!   valid, and is retried after [`RETRY_AFTER`], not on every request;
//! - a 401 for the current token (revoked, or the clocks disagree) marks it
//!   stale: the next request renews first. [`super::HttpOciClient`] retries
//!   such a request once.
//!
//! Neither the key nor the token is ever logged: `Debug` shows neither, and
//! errors carry the issuer's message only.

use super::auth::{RequestSigner, sign_now};
use super::sign::SigningKey;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use reqwest::Method;
use reqwest::header::HeaderMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use url::Url;

/// After a failed renewal, how long before the next try (requests meanwhile
/// use the current token while it is valid, or fail with the last error).
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The `keyId` prefix of session tokens.
pub(crate) const TOKEN_KEY_ID_PREFIX: &str = "ST$";

/// An ephemeral RSA 2048 key pair for one session.
pub(crate) struct SessionKey {
    signing: SigningKey,
    /// SubjectPublicKeyInfo, DER.
    public_spki_der: Vec<u8>,
}

impl SessionKey {
    /// Generates a key pair. CPU-bound for a noticeable time (tens to hundreds
    /// of milliseconds): call it off the async threads.
    ///
    /// The `rsa` crate generates it because ring cannot generate RSA keys;
    /// signing then goes through ring. (RUSTSEC-2023-0071 concerns the `rsa`
    /// crate's private-key operations, decryption and signing, which we do not
    /// use it for.)
    pub(crate) fn generate() -> Result<Self, String> {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048)
            .map_err(|e| format!("cannot generate a session key: {e}"))?;
        let pkcs8 = private
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode the session key: {e}"))?;
        let public_spki_der = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| format!("cannot encode the session public key: {e}"))?
            .into_vec();
        let signing = SigningKey::from_pkcs8_der(pkcs8.as_bytes())
            .map_err(|e| format!("cannot load the session key: {e}"))?;
        Ok(Self {
            signing,
            public_spki_der,
        })
    }

    /// The public key as base64 DER without PEM armour (the federation
    /// endpoint's `publicKey`).
    pub(crate) fn public_key_base64(&self) -> String {
        BASE64.encode(&self.public_spki_der)
    }

    /// The public key as PEM (`BEGIN PUBLIC KEY`, the proxymux's `podKey`).
    pub(crate) fn public_key_pem(&self) -> String {
        let body = self.public_key_base64();
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        pem
    }
}

/// Binds a session key to a token: the federation endpoint (instance
/// principals) or the OKE proxymux (workload identity).
#[async_trait]
pub(crate) trait TokenIssuer: Send + Sync {
    /// A token (a JWT, without the `ST$` prefix) for `key`'s public half.
    /// Errors are plain text without key material or tokens.
    async fn issue(&self, key: &SessionKey) -> Result<String, String>;
}

/// A token and the key it was issued for.
struct Session {
    key: SigningKey,
    key_id: String,
    /// Renew from here on (half the lifetime).
    renew_at: Instant,
    /// Do not sign with it from here on.
    expires_at: Instant,
    /// A 401 named this token: renew before the next request.
    stale: AtomicBool,
}

impl Session {
    fn fresh(&self, now: Instant) -> bool {
        now < self.renew_at && !self.stale.load(Ordering::Acquire)
    }

    fn usable(&self, now: Instant) -> bool {
        now < self.expires_at && !self.stale.load(Ordering::Acquire)
    }
}

#[derive(Default)]
struct State {
    current: Option<Arc<Session>>,
    /// The last failed renewal: when, and why.
    failure: Option<(Instant, String)>,
}

/// A [`RequestSigner`] that keeps a session token fresh (see the module docs).
pub(crate) struct SessionSigner {
    issuer: Box<dyn TokenIssuer>,
    state: RwLock<State>,
    /// One renewal at a time; the others wait for its result.
    renewing: tokio::sync::Mutex<()>,
}

impl SessionSigner {
    pub(crate) fn new(issuer: Box<dyn TokenIssuer>) -> Self {
        Self {
            issuer,
            state: RwLock::new(State::default()),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The session to sign with now, renewing it when due.
    pub(crate) async fn session(&self) -> Result<Arc<SessionView>, String> {
        if let Some(session) = self.current_if(|s, now| s.fresh(now)) {
            return Ok(session);
        }
        let _one_at_a_time = match self.renewing.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                // Someone is renewing: meanwhile a valid token will do.
                if let Some(session) = self.current_if(|s, now| s.usable(now)) {
                    return Ok(session);
                }
                self.renewing.lock().await
            }
        };
        // Renewed by someone else while we waited?
        if let Some(session) = self.current_if(|s, now| s.fresh(now)) {
            return Ok(session);
        }
        let recent_failure = self
            .read()
            .failure
            .as_ref()
            .filter(|(at, _)| at.elapsed() < RETRY_AFTER)
            .map(|(_, why)| why.clone());
        let outcome = match recent_failure {
            Some(why) => Err(why),
            None => self.renew().await,
        };
        match outcome {
            Ok(session) => Ok(session),
            Err(why) => match self.current_if(|s, now| s.usable(now)) {
                // The current token has up to half its life left: keep
                // working while the issuer recovers.
                Some(session) => Ok(session),
                None => Err(why),
            },
        }
    }

    fn current_if(&self, keep: impl Fn(&Session, Instant) -> bool) -> Option<Arc<SessionView>> {
        let state = self.read();
        let session = state.current.as_ref()?;
        keep(session, Instant::now()).then(|| Arc::new(SessionView(session.clone())))
    }

    async fn renew(&self) -> Result<Arc<SessionView>, String> {
        let started = Instant::now();
        let result = async {
            let key = tokio::task::spawn_blocking(SessionKey::generate)
                .await
                .map_err(|e| format!("session key generation did not finish: {e}"))??;
            let token = self.issuer.issue(&key).await?;
            let lifetime = token_lifetime(&token, SystemTime::now())?;
            Ok::<_, String>(Session {
                key: key.signing,
                key_id: format!("{TOKEN_KEY_ID_PREFIX}{token}"),
                renew_at: started + lifetime / 2,
                // A tenth short of exp: a request signed now must still
                // be valid when it arrives, whatever the clocks say.
                expires_at: started + lifetime.mul_f64(0.9),
                stale: AtomicBool::new(false),
            })
        }
        .await;
        let mut state = self.write();
        match result {
            Ok(session) => {
                tracing::info!(
                    valid_for_s = session
                        .expires_at
                        .saturating_duration_since(started)
                        .as_secs(),
                    "OCI session token renewed"
                );
                let session = Arc::new(session);
                state.current = Some(session.clone());
                state.failure = None;
                Ok(Arc::new(SessionView(session)))
            }
            Err(why) => {
                tracing::warn!(error = %why, "OCI session token renewal failed");
                state.failure = Some((Instant::now(), why.clone()));
                Err(why)
            }
        }
    }

    /// A request signed with `key_id` got 401. If that is the current
    /// token, it is marked stale. `true`: signing again uses (or will fetch)
    /// another token, so one retry may succeed.
    pub(crate) fn refused(&self, key_id: &str) -> bool {
        let mut state = self.write();
        match state.current.as_ref() {
            Some(current) if current.key_id == key_id => {
                tracing::warn!("OCI refused the session token (401): renewing it");
                current.stale.store(true, Ordering::Release);
                // A 401 is news: renew now even after a recent failure.
                state.failure = None;
                true
            }
            // An older token: the current one is another.
            Some(_) => key_id.starts_with(TOKEN_KEY_ID_PREFIX),
            None => false,
        }
    }
}

/// A session as signers see it: the key and its keyId, nothing to change.
pub(crate) struct SessionView(Arc<Session>);

impl SessionView {
    #[cfg(test)]
    pub(crate) fn key_id(&self) -> &str {
        &self.0.key_id
    }
}

#[async_trait]
impl RequestSigner for SessionSigner {
    async fn sign(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<(), String> {
        let session = self.session().await?;
        sign_now(
            &session.0.key_id,
            &session.0.key,
            method,
            url,
            headers,
            body,
        )
    }

    fn unauthorized(&self, signed: &HeaderMap) -> bool {
        signed_key_id(signed).is_some_and(|key_id| self.refused(&key_id))
    }
}

/// The keyId of a signed request's `authorization` header.
pub(crate) fn signed_key_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let start = value.find("keyId=\"")? + "keyId=\"".len();
    let end = value[start..].find('"')? + start;
    Some(value[start..end].to_string())
}

/// An error with its causes (`a: b: c`): reqwest's own text leaves out
/// why a request failed (refused connection, untrusted certificate).
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// How long a token is valid from `now`, from its `exp` claim (the token is
/// not verified: OCI verifies it; we only need to know when to renew).
pub(crate) fn token_lifetime(token: &str, now: SystemTime) -> Result<Duration, String> {
    let exp = token_expiry(token)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970")?;
    let lifetime = Duration::from_secs(exp).saturating_sub(now);
    if lifetime.is_zero() {
        return Err(format!(
            "the session token expired on arrival (exp {exp}, clock {}): check the clock",
            now.as_secs()
        ));
    }
    Ok(lifetime)
}

/// The `exp` claim of a session token (seconds since 1970), unverified.
pub(crate) fn token_expiry(token: &str) -> Result<u64, String> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or("the session token is not a JWT")?;
    let payload = BASE64URL
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the session token's payload is not base64url")?;
    #[derive(serde::Deserialize)]
    struct Claims {
        exp: u64,
    }
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|_| "the session token has no numeric exp claim")?;
    Ok(claims.exp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    fn jwt(exp: u64) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let part = |v: serde_json::Value| BASE64URL.encode(v.to_string());
        let jti = NEXT.fetch_add(1, Ordering::SeqCst);
        format!(
            "{}.{}.c2ln",
            part(serde_json::json!({"alg": "RS256"})),
            part(serde_json::json!({"exp": exp, "sub": "x", "jti": jti}))
        )
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    /// Issues tokens valid for `ttl_s`, or fails while `failing` is set.
    struct Issuer {
        ttl_s: u64,
        /// Tokens issued; attempts are counted in `attempts`.
        issued: Arc<AtomicUsize>,
        attempts: Arc<AtomicUsize>,
        failing: Arc<Mutex<Option<String>>>,
    }

    #[async_trait]
    impl TokenIssuer for Issuer {
        async fn issue(&self, _key: &SessionKey) -> Result<String, String> {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if let Some(why) = self.failing.lock().unwrap().clone() {
                return Err(why);
            }
            self.issued.fetch_add(1, Ordering::SeqCst);
            Ok(jwt(unix_now() + self.ttl_s))
        }
    }

    type Failing = Arc<Mutex<Option<String>>>;

    fn signer(ttl_s: u64) -> (SessionSigner, Arc<AtomicUsize>, Failing) {
        let (signer, issued, _, failing) = signer_counting_attempts(ttl_s);
        (signer, issued, failing)
    }

    fn signer_counting_attempts(
        ttl_s: u64,
    ) -> (SessionSigner, Arc<AtomicUsize>, Arc<AtomicUsize>, Failing) {
        let issued = Arc::new(AtomicUsize::new(0));
        let attempts = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(Mutex::new(None));
        let signer = SessionSigner::new(Box::new(Issuer {
            ttl_s,
            issued: issued.clone(),
            attempts: attempts.clone(),
            failing: failing.clone(),
        }));
        (signer, issued, attempts, failing)
    }

    #[test]
    fn lifetime_comes_from_exp() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            token_lifetime(&jwt(1_600), now),
            Ok(Duration::from_secs(600))
        );
        assert!(
            token_lifetime(&jwt(900), now)
                .unwrap_err()
                .contains("expired")
        );
        assert!(
            token_lifetime("abc", now)
                .unwrap_err()
                .contains("not a JWT")
        );
        assert!(
            token_lifetime("a.!!.c", now)
                .unwrap_err()
                .contains("base64url")
        );
        let no_exp = format!("a.{}.c", BASE64URL.encode("{\"sub\":\"x\"}"));
        assert!(token_lifetime(&no_exp, now).unwrap_err().contains("exp"));
    }

    #[test]
    fn key_id_is_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            "Signature version=\"1\",keyId=\"ST$abc.def\",algorithm=\"rsa-sha256\""
                .parse()
                .unwrap(),
        );
        assert_eq!(signed_key_id(&headers).as_deref(), Some("ST$abc.def"));
        assert_eq!(signed_key_id(&HeaderMap::new()), None);
    }

    #[test]
    fn public_key_pem_wraps_the_der() {
        let key = SessionKey::generate().unwrap();
        let pem = key.public_key_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(body, key.public_key_base64());
    }

    #[tokio::test]
    async fn one_renewal_serves_a_burst() {
        let (signer, issued, _) = signer(600);
        let signer = Arc::new(signer);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let signer = signer.clone();
            tasks.push(tokio::spawn(async move {
                signer.session().await.map(|s| s.key_id().to_string())
            }));
        }
        let mut ids = Vec::new();
        for task in tasks {
            ids.push(task.await.unwrap().unwrap());
        }
        assert_eq!(issued.load(Ordering::SeqCst), 1);
        assert!(ids.iter().all(|id| id == &ids[0] && id.starts_with("ST$")));
    }

    // Paused time: the sleeps below advance tokio's clock, which schedules
    // renewals; the tokens' exp (wall clock) only gives their lifetime.
    #[tokio::test(start_paused = true)]
    async fn renews_at_half_life() {
        // A 600 s token: the same one before 300 s, a new one after.
        let (signer, issued, _) = signer(600);
        let first = signer.session().await.unwrap().key_id().to_string();
        tokio::time::sleep(Duration::from_secs(290)).await;
        assert_eq!(signer.session().await.unwrap().key_id(), first);
        assert_eq!(issued.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(15)).await;
        let second = signer.session().await.unwrap().key_id().to_string();
        assert_ne!(second, first);
        assert_eq!(issued.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_keeps_a_valid_token_and_is_not_retried_per_request() {
        let (signer, issued, attempts, failing) = signer_counting_attempts(600);
        let first = signer.session().await.unwrap().key_id().to_string();
        tokio::time::sleep(Duration::from_secs(305)).await;
        *failing.lock().unwrap() = Some("federation endpoint down".into());
        for _ in 0..10 {
            assert_eq!(signer.session().await.unwrap().key_id(), first);
        }
        assert_eq!(issued.load(Ordering::SeqCst), 1);
        // One failed try for the ten requests, not ten.
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        // Past expiry: the error, not the dead token.
        tokio::time::sleep(Duration::from_secs(300)).await;
        let error = signer.session().await.err().unwrap();
        assert_eq!(error, "federation endpoint down");
        *failing.lock().unwrap() = None;
        tokio::time::sleep(RETRY_AFTER).await;
        assert_ne!(signer.session().await.unwrap().key_id(), first);
    }

    #[tokio::test]
    async fn a_401_for_the_current_token_renews_once() {
        let (signer, issued, _) = signer(600);
        let first = signer.session().await.unwrap().key_id().to_string();
        assert!(!signer.refused("tenancy/user/fingerprint"));
        assert!(signer.refused(&first));
        let second = signer.session().await.unwrap().key_id().to_string();
        assert_ne!(second, first);
        // A late 401 of the old token does not throw away the new one.
        assert!(signer.refused(&first));
        assert_eq!(signer.session().await.unwrap().key_id(), second);
        assert_eq!(issued.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn no_session_means_no_retry() {
        let (signer, _, failing) = signer(600);
        *failing.lock().unwrap() = Some("metadata service unreachable".into());
        assert_eq!(
            signer.session().await.err().unwrap(),
            "metadata service unreachable"
        );
        assert!(!signer.refused("ST$whatever"));
    }
}
