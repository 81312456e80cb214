//! What the probes say, and the HTTP server that answers them and `/metrics`.
//!
//! - `/readyz` (readiness): 200 when this replica can do its job now, or
//!   take it over at once. The API server must answer (asked at most every
//!   [`APISERVER_CHECK_EVERY`], within [`APISERVER_TIMEOUT`]), and:
//!   - reconciling (the Lease's holder, or no leader election): its caches
//!     have synced;
//!   - standby (waiting for the Lease): nothing more; its caches sync when
//!     it leads. A standby is ready so that a rollout can proceed while the
//!     leader works, and it is the replica that takes over.
//!
//!   503 while starting, when the API server does not answer, and from the
//!   moment shutdown begins (so no one waits on a replica that is leaving).
//! - `/healthz` (liveness): 200 unless a reconcile pass has run for longer
//!   than `stuck_after`. Every OCI and Kubernetes call has a timeout, so a
//!   pass that long is wedged, and a restart is the way out (the crash-safety
//!   machinery covers a pass abandoned anywhere). An unreachable API server
//!   is not a liveness failure: a restart would not bring it back.
//! - `/metrics`: Prometheus text. Any other path: 404.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

/// How long an answer of the API server is trusted by `/readyz`.
pub const APISERVER_CHECK_EVERY: Duration = Duration::from_secs(5);
/// How long `/readyz` waits for the API server (kubelet's probe timeout is 1 s
/// by default: the deployment gives it 3).
pub const APISERVER_TIMEOUT: Duration = Duration::from_secs(2);

/// What this replica is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Not reconciling yet (connecting, building the engine).
    Starting = 0,
    /// Waiting for the Lease.
    Standby = 1,
    /// Reconciling ReservedIPs.
    Reconciling = 2,
    /// Shutting down.
    Stopping = 3,
}

impl Role {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Standby,
            2 => Self::Reconciling,
            3 => Self::Stopping,
            _ => Self::Starting,
        }
    }
}

/// See the module docs. Shared by the controller and the server.
pub struct Health {
    client: kube::Client,
    role: AtomicU8,
    synced: AtomicBool,
    /// Passes under way, by a number of their own, with when each began.
    passes: Mutex<HashMap<u64, Instant>>,
    next_pass: AtomicU64,
    stuck_after: Duration,
    /// The last answer of the API server (`Err`: why not), and when.
    apiserver: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
    /// While starting: what the start waits for (e.g. OCI credentials that
    /// cannot be obtained yet), for `/readyz`.
    waiting_for: Mutex<Option<String>>,
}

impl Health {
    pub fn new(client: kube::Client, stuck_after: Duration) -> Self {
        Self {
            client,
            role: AtomicU8::new(Role::Starting as u8),
            synced: AtomicBool::new(false),
            passes: Mutex::default(),
            next_pass: AtomicU64::new(0),
            stuck_after,
            apiserver: tokio::sync::Mutex::new(None),
            waiting_for: Mutex::default(),
        }
    }

    /// While starting, what the start waits for (`None`: nothing in particular).
    pub fn set_waiting_for(&self, reason: Option<String>) {
        *lock(&self.waiting_for) = reason;
    }

    pub fn set_role(&self, role: Role) {
        // Stopping is final: a late "reconciling" must not undo it.
        let _ = self
            .role
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != Role::Stopping as u8).then_some(role as u8)
            });
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Acquire))
    }

    /// The controller's caches have synced.
    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::Release);
    }

    /// A pass begins; it counts as under way until the guard is dropped.
    pub fn pass(self: &Arc<Self>) -> PassUnderWay {
        let id = self.next_pass.fetch_add(1, Ordering::Relaxed);
        lock(&self.passes).insert(id, Instant::now());
        PassUnderWay {
            health: Arc::clone(self),
            id,
        }
    }

    /// Liveness: `Err` says what is wrong.
    pub fn live(&self) -> Result<(), String> {
        let oldest = lock(&self.passes).values().min().copied();
        match oldest {
            Some(began) if began.elapsed() > self.stuck_after => Err(format!(
                "a reconcile pass has run for {:.0} s (more than {} s): stuck",
                began.elapsed().as_secs_f64(),
                self.stuck_after.as_secs()
            )),
            _ => Ok(()),
        }
    }

    /// Readiness: `Err` says why not.
    pub async fn ready(&self) -> Result<(), String> {
        match self.role() {
            Role::Stopping => return Err("shutting down".into()),
            Role::Starting => {
                return Err(match lock(&self.waiting_for).as_ref() {
                    Some(reason) => format!("starting: {reason}"),
                    None => "starting".into(),
                });
            }
            Role::Reconciling if !self.synced.load(Ordering::Acquire) => {
                return Err("caches not synced yet".into());
            }
            Role::Reconciling | Role::Standby => {}
        }
        self.apiserver_answers().await
    }

    /// Whether the API server answered lately, asking it when the last
    /// answer is too old (one question at a time: probes queue behind it).
    async fn apiserver_answers(&self) -> Result<(), String> {
        let mut last = self.apiserver.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < APISERVER_CHECK_EVERY
        {
            return answer.clone();
        }
        let answer =
            match tokio::time::timeout(APISERVER_TIMEOUT, self.client.apiserver_version()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("the API server does not answer: {e}")),
                Err(_) => Err(format!(
                    "the API server did not answer within {} s",
                    APISERVER_TIMEOUT.as_secs()
                )),
            };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// A pass under way (see [`Health::pass`]).
pub struct PassUnderWay {
    health: Arc<Health>,
    id: u64,
}

impl Drop for PassUnderWay {
    fn drop(&mut self) {
        lock(&self.health.passes).remove(&self.id);
    }
}

/// The map is only changed by single inserts and removes.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone)]
struct Served {
    health: Arc<Health>,
    registry: Arc<Registry>,
}

/// Serves the probes and `/metrics` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    health: Arc<Health>,
    registry: Arc<Registry>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Served { health, registry });
    axum::serve(listener, app).await
}

async fn healthz(State(s): State<Served>) -> Response {
    answer(s.health.live())
}

async fn readyz(State(s): State<Served>) -> Response {
    answer(s.health.ready().await)
}

fn answer(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn metrics(State(s): State<Served>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &s.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client for an address nothing listens on: these tests never reach
    /// the API server check, or expect it to fail.
    fn unreachable_client() -> kube::Client {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("uri"));
        kube::Client::try_from(config).expect("client")
    }

    #[tokio::test]
    async fn a_pass_past_the_limit_fails_liveness_until_it_ends() {
        let health = Arc::new(Health::new(unreachable_client(), Duration::from_millis(50)));
        assert!(health.live().is_ok());
        let pass = health.pass();
        assert!(health.live().is_ok(), "a pass just begun is not stuck");
        tokio::time::sleep(Duration::from_millis(80)).await;
        let why = health.live().expect_err("stuck");
        assert!(why.contains("stuck"), "{why}");
        drop(pass);
        assert!(health.live().is_ok());
    }

    #[tokio::test]
    async fn readiness_says_why_not() {
        let health = Health::new(unreachable_client(), Duration::from_secs(60));
        assert_eq!(health.ready().await, Err("starting".into()));
        health.set_waiting_for(Some("OCI credentials: metadata service down".into()));
        assert_eq!(
            health.ready().await,
            Err("starting: OCI credentials: metadata service down".into())
        );
        health.set_waiting_for(None);
        health.set_role(Role::Reconciling);
        assert_eq!(health.ready().await, Err("caches not synced yet".into()));
        health.set_synced();
        let why = health.ready().await.expect_err("no API server");
        assert!(why.contains("API server"), "{why}");
        health.set_role(Role::Stopping);
        health.set_role(Role::Reconciling);
        assert_eq!(health.role(), Role::Stopping, "stopping is final");
        assert_eq!(health.ready().await, Err("shutting down".into()));
    }
}
