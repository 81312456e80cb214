//! Starting the emulator: the listener, connections, and the shared state
//! behind every request.

use crate::calls::CallLog;
use crate::faults::{FaultConfig, Faults};
use crate::lifecycle::Timing;
use crate::seed::{Seed, SeedError};
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
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
        let shared = Arc::new(Shared::new(&config)?);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| EmulatorError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        tracing::info!(%addr, "OCI emulator listening");
        Ok(EmulatorHandle {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }
}

/// A running emulator. Dropping it stops the emulator too.
pub struct EmulatorHandle {
    addr: SocketAddr,
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

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, shared.clone(), stopped.clone()));
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

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let service = service_fn(move |request: Request<Incoming>| {
        let shared = shared.clone();
        async move { route(&shared, peer, request).await }
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

/// Admin API under `/_emulator/`, everything else is the OCI API.
async fn route(
    shared: &Shared,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<HttpResponse, Dropped> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let error =
                crate::error::ApiError::cannot_parse(format!("Cannot read request body: {error}"));
            return Ok(api::error_response(&error, "none"));
        }
    };
    let path = parts.uri.path();
    if path == admin::PREFIX || path.starts_with(&format!("{}/", admin::PREFIX)) {
        return Ok(admin::handle(shared, peer, &parts, &body));
    }
    api::handle(shared, &parts, &body).await
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
