//! Starting the emulator: the listeners (the API's plain HTTP one and the
//! proxymux's TLS one), connections, and the shared state behind every
//! request.

use crate::auth_services::{self, AuthUrls};
use crate::calls::CallLog;
use crate::faults::{FaultConfig, Faults};
use crate::identity::{IdentityConfig, IdentityError, IdentityMaterial};
use crate::lifecycle::Timing;
use crate::proxymux::{self, TlsError};
use crate::seed::{Seed, SeedError};
use crate::sessions::{Principal, PrincipalType, SessionStore};
use crate::signature::{KeyError, KeySpec, KeyStore};
use crate::world::World;
use crate::{admin, api};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The `sub` of user session tokens ([`EmulatorHandle::issue_session_token`]).
pub const SESSION_USER_ID: &str = "ocid1.user.oc1..session";

/// Largest request body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

pub type HttpResponse = Response<Full<Bytes>>;

/// Returned by a handler to close the connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped on purpose (fault injection)")]
pub struct Dropped;

/// Errors starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("start-up was interrupted: {0}")]
    Interrupted(String),
}

/// How to start the emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Where to listen; port 0 picks a free port (the default, on 127.0.0.1).
    pub listen: SocketAddr,
    /// The world at start, including keys, timing and faults if it names them.
    pub seed: Seed,
    /// Keys registered in addition to the seed's.
    pub keys: Vec<KeySpec>,
    /// Overrides the seed's timing.
    pub timing: Option<Timing>,
    /// Overrides the seed's faults.
    pub faults: Option<FaultConfig>,
    /// Reject unsigned or badly signed requests with 401 (as OCI does).
    pub verify_signatures: bool,
    /// How far the signed date may be from the emulator's clock.
    pub max_clock_skew: Duration,
    /// Makes probabilistic faults reproducible.
    pub random_seed: Option<u64>,
    /// The auth services: instance, tenancy, region, sessions, proxymux.
    pub identity: IdentityConfig,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: Seed::default(),
            keys: Vec::new(),
            timing: None,
            faults: None,
            verify_signatures: true,
            max_clock_skew: Duration::from_secs(5 * 60),
            random_seed: None,
            identity: IdentityConfig::default(),
        }
    }
}

impl EmulatorConfig {
    /// Listens on an ephemeral 127.0.0.1 port with `seed`.
    pub fn with_seed(seed: Seed) -> Self {
        Self {
            seed,
            ..Self::default()
        }
    }

    /// Sets the lifecycle timing.
    pub fn timing(mut self, timing: Timing) -> Self {
        self.timing = Some(timing);
        self
    }

    /// Sets the faults.
    pub fn faults(mut self, faults: FaultConfig) -> Self {
        self.faults = Some(faults);
        self
    }
}

/// State shared by all connections.
pub struct Shared {
    world: Mutex<World>,
    keys: RwLock<KeyStore>,
    faults: Mutex<Faults>,
    calls: Mutex<CallLog>,
    pub(crate) verify_signatures: bool,
    pub(crate) max_clock_skew: Duration,
    identity_config: IdentityConfig,
    identity: IdentityMaterial,
    sessions: Mutex<SessionStore>,
    switches: Switches,
    /// Known once the listeners are bound.
    urls: OnceLock<AuthUrls>,
}

/// Which auth services answer (the others answer 503).
struct Switches {
    metadata: AtomicBool,
    federation: AtomicBool,
    proxymux: AtomicBool,
}

// A panic while holding a lock must not take the emulator down with it: the
// data is still consistent enough for a test double, so recover the guard.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The state `config` describes: its seed's world, keys and faults, with
    /// the config's own timing, keys and faults on top.
    pub(crate) fn new(config: &EmulatorConfig) -> Result<Self, EmulatorError> {
        let mut world = config.seed.build(Instant::now())?;
        if let Some(timing) = config.timing {
            world.timing = timing;
        }
        let mut keys = KeyStore::default();
        for key in config.seed.keys.iter().chain(&config.keys) {
            keys.register(key)?;
        }
        let faults = config
            .faults
            .clone()
            .or_else(|| config.seed.faults.clone())
            .unwrap_or_default();
        Ok(Self {
            world: Mutex::new(world),
            keys: RwLock::new(keys),
            faults: Mutex::new(Faults::new(faults, config.random_seed)),
            calls: Mutex::new(CallLog::default()),
            verify_signatures: config.verify_signatures,
            max_clock_skew: config.max_clock_skew,
            identity: IdentityMaterial::generate(&config.identity)?,
            identity_config: config.identity.clone(),
            sessions: Mutex::new(SessionStore::new(config.identity.session_ttl)),
            switches: Switches {
                metadata: AtomicBool::new(true),
                federation: AtomicBool::new(true),
                proxymux: AtomicBool::new(true),
            },
            urls: OnceLock::new(),
        })
    }

    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub(crate) fn keys(&self) -> RwLockReadGuard<'_, KeyStore> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn calls(&self) -> MutexGuard<'_, CallLog> {
        lock(&self.calls)
    }

    pub(crate) fn identity(&self) -> &IdentityMaterial {
        &self.identity
    }

    pub(crate) fn identity_config(&self) -> &IdentityConfig {
        &self.identity_config
    }

    pub(crate) fn sessions(&self) -> MutexGuard<'_, SessionStore> {
        lock(&self.sessions)
    }

    /// The auth services' URLs; `None` before the listeners are bound.
    pub(crate) fn urls(&self) -> Option<&AuthUrls> {
        self.urls.get()
    }

    pub(crate) fn metadata_available(&self) -> bool {
        self.switches.metadata.load(Ordering::Relaxed)
    }

    pub(crate) fn federation_available(&self) -> bool {
        self.switches.federation.load(Ordering::Relaxed)
    }

    pub(crate) fn proxymux_available(&self) -> bool {
        self.switches.proxymux.load(Ordering::Relaxed)
    }

    pub(crate) fn set_metadata_available(&self, available: bool) {
        self.switches.metadata.store(available, Ordering::Relaxed);
    }

    pub(crate) fn set_federation_available(&self, available: bool) {
        self.switches.federation.store(available, Ordering::Relaxed);
    }

    pub(crate) fn set_proxymux_available(&self, available: bool) {
        self.switches.proxymux.store(available, Ordering::Relaxed);
    }

    pub(crate) fn record(&self, operation: &str, outcome: &str) {
        self.calls().record(operation, outcome);
    }

    pub(crate) fn register_key(&self, spec: &KeySpec) -> Result<String, KeyError> {
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.register(spec)
    }

    /// Replaces the world with `seed` (and registers its keys, applies its
    /// timing and faults when it has them).
    /// The current timing is kept unless the seed names one.
    pub(crate) fn apply_seed(&self, seed: &Seed) -> Result<(), EmulatorError> {
        let mut world = seed.build(Instant::now())?;
        if seed.timing.is_none() {
            world.timing = self.world().timing;
        }
        for key in &seed.keys {
            self.register_key(key)?;
        }
        if let Some(faults) = &seed.faults {
            self.faults().set_config(faults.clone());
        }
        *self.world() = world;
        Ok(())
    }
}

/// The emulator.
pub struct Emulator;

impl Emulator {
    /// Starts the emulator in the current tokio runtime and returns once it
    /// listens.
    pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
        // Key generation takes a moment of CPU: keep it off the runtime's
        // worker threads.
        let shared = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || Shared::new(&config))
                .await
                .map_err(|e| EmulatorError::Interrupted(e.to_string()))??
        };
        let shared = Arc::new(shared);
        let (listener, addr) = bind(config.listen).await?;
        let (proxymux_listener, proxymux_addr) = bind(config.identity.proxymux_listen).await?;
        let acceptor = proxymux::acceptor(shared.identity())?;
        // Set once, here, before any request can read it.
        let _ = shared.urls.set(AuthUrls::new(addr, proxymux_addr));
        let (stop, stopped) = watch::channel(false);
        let api = accept_loop(listener, Front::Api, shared.clone(), stopped.clone());
        let proxymux = accept_loop(
            proxymux_listener,
            Front::Proxymux(acceptor),
            shared.clone(),
            stopped,
        );
        let task = tokio::spawn(async move {
            tokio::join!(api, proxymux);
        });
        tracing::info!(%addr, %proxymux_addr, "OCI emulator listening");
        Ok(EmulatorHandle {
            addr,
            proxymux_addr,
            shared,
            stop,
            task: Some(task),
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), EmulatorError> {
    let error = |source| EmulatorError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(error)?;
    let local = listener.local_addr().map_err(error)?;
    Ok((listener, local))
}

/// A running emulator. Dropping it stops the emulator too.
pub struct EmulatorHandle {
    addr: SocketAddr,
    proxymux_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:<port>`: the endpoint to give an OCI client (the API
    /// itself is under `/20160918`, the admin API under `/_emulator`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `GET /_emulator/state` returns.
    pub fn state(&self) -> serde_json::Value {
        let mut world = self.shared.world();
        world.tick(Instant::now());
        world.state_json()
    }

    /// Reads or changes the world directly (after applying due transitions).
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut world = self.shared.world();
        world.tick(Instant::now());
        f(&mut world)
    }

    /// Calls so far, by operation and outcome.
    pub fn calls(&self) -> CallLog {
        self.shared.calls().clone()
    }

    pub fn reset_calls(&self) {
        self.shared.calls().clear();
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.faults().set_config(faults);
    }

    pub fn set_timing(&self, timing: Timing) {
        self.shared.world().timing = timing;
    }

    /// Registers an API signing key; returns its keyId.
    pub fn register_key(&self, spec: &KeySpec) -> Result<String, KeyError> {
        self.shared.register_key(spec)
    }

    fn urls(&self) -> AuthUrls {
        AuthUrls::new(self.addr, self.proxymux_addr)
    }

    /// `http://127.0.0.1:<port>/opc/v2`: the instance metadata service v2.
    pub fn metadata_url(&self) -> String {
        self.urls().metadata
    }

    /// `http://127.0.0.1:<port>`: the X.509 federation endpoint (clients
    /// append `/v1/x509`).
    pub fn federation_url(&self) -> String {
        self.urls().federation
    }

    /// `https://127.0.0.1:<port>/resourcePrincipalSessionTokens`: the proxymux.
    pub fn proxymux_url(&self) -> String {
        self.urls().proxymux
    }

    /// The proxymux's TLS listener.
    pub fn proxymux_addr(&self) -> SocketAddr {
        self.proxymux_addr
    }

    /// The CA (PEM) that signed the proxymux's certificate: a pod's
    /// ServiceAccount `ca.crt`.
    pub fn cluster_ca_pem(&self) -> &str {
        self.shared.identity().cluster_ca_pem()
    }

    /// The tenancy of the instance principal and of issued sessions.
    pub fn tenancy_id(&self) -> &str {
        &self.shared.identity_config().tenancy_id
    }

    /// The lifetime of session tokens issued from now on.
    pub fn set_session_ttl(&self, ttl: Duration) {
        self.shared.sessions().set_ttl(ttl);
    }

    /// Revokes every session token issued so far (later ones are valid);
    /// returns how many were not revoked yet.
    pub fn revoke_sessions(&self) -> usize {
        self.shared.sessions().revoke_all()
    }

    /// Off: the metadata service answers 503 to everything.
    pub fn set_metadata_available(&self, available: bool) {
        self.shared.set_metadata_available(available);
    }

    /// Off: X.509 federation answers 503.
    pub fn set_federation_available(&self, available: bool) {
        self.shared.set_federation_available(available);
    }

    /// Off: the proxymux answers 503 (after the TLS handshake).
    pub fn set_proxymux_available(&self, available: bool) {
        self.shared.set_proxymux_available(available);
    }

    /// A user's session token for `public_key_pem` (PEM, SPKI or PKCS#1),
    /// valid for `ttl` whatever the lifetime of other sessions: what `oci
    /// session authenticate` writes to a config profile's
    /// `security_token_file` after the browser login, which the emulator
    /// has no page for. Signatures with `keyId="ST$<token>"` and the
    /// matching private key are then accepted until it expires or is revoked.
    pub fn issue_session_token(
        &self,
        public_key_pem: &str,
        ttl: Duration,
    ) -> Result<String, KeyError> {
        let public_key = crate::signature::parse_public_key(public_key_pem)?;
        let principal = Principal {
            kind: PrincipalType::User,
            subject: SESSION_USER_ID.to_string(),
            tenancy_id: self.tenancy_id().to_string(),
        };
        Ok(self.shared.sessions().issue_for(
            principal,
            public_key,
            std::time::SystemTime::now(),
            ttl,
        ))
    }

    /// Session tokens issued since start, every flow.
    pub fn sessions_issued(&self) -> usize {
        self.shared.sessions().issued()
    }

    /// Session tokens issued since start through one flow.
    pub fn sessions_issued_for(&self, kind: PrincipalType) -> usize {
        self.shared.sessions().issued_for(kind)
    }

    /// Stops listening, finishes open connections gracefully and waits.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// What a listener serves.
#[derive(Clone)]
enum Front {
    /// Plain HTTP: the OCI API, the admin API, metadata and federation.
    Api,
    /// TLS: the proxymux.
    Proxymux(TlsAcceptor),
}

/// Which routes a connection's requests go to.
#[derive(Clone, Copy)]
enum Routes {
    Api,
    Proxymux,
}

async fn accept_loop(
    listener: TcpListener,
    front: Front,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(stream, peer, front.clone(), shared.clone(), stopped.clone()));
                }
                Err(error) => {
                    // E.g. too many open files: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// One accepted connection: the TLS handshake first on the proxymux's.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    front: Front,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    match front {
        Front::Api => serve_connection(stream, peer, Routes::Api, shared, stopped).await,
        Front::Proxymux(acceptor) => {
            let tls = tokio::select! {
                tls = proxymux::handshake(&acceptor, stream) => tls,
                _ = stopped.changed() => None,
            };
            if let Some(tls) = tls {
                serve_connection(tls, peer, Routes::Proxymux, shared, stopped).await;
            }
        }
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    routes: Routes,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        async move {
            match routes {
                Routes::Api => route(&shared, peer, request).await,
                Routes::Proxymux => proxymux_route(&shared, request).await,
            }
        }
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection closed");
            }
        }
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Reads the whole body, or answers 400.
async fn read_body(body: Incoming) -> Result<Bytes, HttpResponse> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            let error =
                crate::error::ApiError::cannot_parse(format!("Cannot read request body: {error}"));
            Err(api::error_response(&error, "none"))
        }
    }
}

/// Admin API under `/_emulator/`, metadata and federation under theirs,
/// everything else is the OCI API.
async fn route(
    shared: &Shared,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<HttpResponse, Dropped> {
    let (parts, body) = request.into_parts();
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let path = parts.uri.path();
    if path == admin::PREFIX || path.starts_with(&format!("{}/", admin::PREFIX)) {
        return Ok(admin::handle(shared, peer, &parts, &body));
    }
    if auth_services::serves(path) {
        return Ok(auth_services::handle(shared, &parts, &body));
    }
    api::handle(shared, &parts, &body).await
}

/// The proxymux's listener serves only the proxymux.
async fn proxymux_route(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<HttpResponse, Dropped> {
    let (parts, body) = request.into_parts();
    Ok(match read_body(body).await {
        Ok(body) => auth_services::handle_proxymux(shared, &parts, &body),
        Err(response) => response,
    })
}

/// A text response (PEM, plain text).
pub fn text_response(status: u16, content_type: &str, body: &str) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| {
            let mut fallback = Response::new(Full::new(Bytes::new()));
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}

/// A JSON response with extra headers.
pub fn json_response(
    status: u16,
    body: Option<&serde_json::Value>,
    headers: &[(&str, String)],
) -> HttpResponse {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    let mut builder = Response::builder().status(status);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| {
            let mut fallback = Response::new(Full::new(Bytes::new()));
            *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            fallback
        })
}
