//! [`PolicyEngine`]: the public face of the policy system. Holds the
//! wasmtime engine (with its epoch ticker), the registry of loaded policies,
//! and runs decisions on wasmtime fibers that yield to the async runtime at
//! every epoch tick, so the runtime never waits on guest code for long.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::{Mutex, Semaphore};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use super::abi::{self, DecisionKind, Target};
use super::artifacts::ArtifactCache;
use super::compose::{
    Composer, Decision, EligibilityComposer, EligibilityOutcome, PolicyRef, PoolComposer,
    PoolOutcome, TagComposer, TagOutcome, Verdict,
};
use super::error::{EvalError, LoadError, PolicyError};
use super::instance;
use super::limits::{EPOCH_TICK, Limits};
use super::metrics::{Counted, PolicyMetrics};
use super::module::{self, CompiledModule};
use super::registry::{LoadReport, LoadResult, LoadedPolicy, PolicyStatus, Registry};
use super::request::{EligibilityBody, PoolBody, ReservedIpInput, common};
use super::source::{self, Mode, PolicySource};
use super::trust::Trust;
use super::validate::AllowedPools;

/// Evaluates the loaded policies. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct PolicyEngine {
    inner: Arc<Inner>,
}

/// How the engine is set up; [`Default`] is what `PolicyEngine::new` uses
/// with the given limits.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    pub limits: Limits,
    /// Where compiled modules are kept between runs (see `artifacts`);
    /// `None` compiles at every start.
    pub artifact_dir: Option<PathBuf>,
    /// Keys policies may be signed with, and whether signatures are required.
    pub trust: Trust,
    /// Where evaluations and refusals are counted.
    pub metrics: PolicyMetrics,
}

struct Inner {
    engine: Engine,
    limits: Limits,
    artifacts: Option<ArtifactCache>,
    trust: Trust,
    metrics: PolicyMetrics,
    registry: std::sync::Mutex<Registry>,
    /// Active policies in evaluation order, swapped whole on every change so
    /// a decision sees one consistent set.
    active: RwLock<Arc<Vec<Arc<LoadedPolicy>>>>,
    permits: Semaphore,
    /// One sync at a time (watchers may fire together).
    sync: Mutex<()>,
    /// Bumped whenever the active policies change, so ReservedIPs are
    /// decided again at once (see [`PolicyEngine::changes`]).
    changed: tokio::sync::watch::Sender<u64>,
}

/// Virtual size of one pooled memory slot (reserved, not committed).
const POOL_SLOT_BYTES: usize = 1 << 30;

/// Bytes of each pooled memory and table kept resident between decisions.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

impl PolicyEngine {
    /// An engine with no policies (every decision then allows and keeps).
    pub fn new(limits: Limits) -> Result<Self, PolicyError> {
        Self::with_options(EngineOptions {
            limits,
            ..EngineOptions::default()
        })
    }

    /// An engine with no policies, set up by `options`.
    pub fn with_options(options: EngineOptions) -> Result<Self, PolicyError> {
        let EngineOptions {
            limits,
            artifact_dir,
            trust,
            metrics,
        } = options;
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            // Same answer for the same input on every node.
            .cranelift_nan_canonicalization(true)
            .wasm_relaxed_simd(false)
            .wasm_multi_memory(false)
            .wasm_memory64(false)
            .max_wasm_stack(256 << 10);
        // Decisions instantiate a fresh module every time; a pool of
        // preallocated slots makes that a reuse of memory rather than an mmap
        // per decision. The pool holds two slots per concurrent evaluation
        // (the semaphore below bounds those). Slots are virtual reservations
        // of POOL_SLOT_BYTES, above the memory cap on purpose: a module
        // declaring more than the cap is refused by our own check with a
        // clear message, and StoreLimits enforces the cap on growth.
        // Figures behind these settings: docs/benchmarks.md (scenario 6).
        let slots = u32::try_from(limits.max_concurrent_evaluations.max(1) * 2).unwrap_or(u32::MAX);
        let slot_bytes = POOL_SLOT_BYTES.max(limits.memory_bytes);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            .max_memory_size(slot_bytes)
            .total_stacks(slots)
            // Reset a used slot by rewriting only the pages the guest
            // dirtied (PAGEMAP_SCAN, Linux >= 6.7) instead of madvise: no
            // TLB shootdown across cores and no page faults on reuse.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES)
            .pagemap_scan(wasmtime::Enabled::Auto);
        // Explicit bounds checks instead of guard pages and signal handlers:
        // a guest's memory.grow then only moves a bound, where with guard
        // pages every fresh instance paid an mprotect and a TLB shootdown
        // on every core (measured: about 30% of a decision).
        config
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .signals_based_traps(false)
            .memory_reservation(slot_bytes as u64)
            .memory_reservation_for_growth(0)
            .memory_guard_size(0);
        let engine = Engine::new(&config).map_err(|e| PolicyError::Engine(format!("{e:#}")))?;
        spawn_epoch_ticker(&engine)?;
        let artifacts = artifact_dir.and_then(|dir| ArtifactCache::open(&dir, &engine));
        Ok(PolicyEngine {
            inner: Arc::new(Inner {
                artifacts,
                trust,
                metrics,
                engine,
                permits: Semaphore::new(limits.max_concurrent_evaluations.max(1)),
                limits,
                registry: std::sync::Mutex::default(),
                active: RwLock::default(),
                sync: Mutex::new(()),
                changed: tokio::sync::watch::Sender::new(0),
            }),
        })
    }

    /// The engine's metrics.
    pub fn metrics(&self) -> &PolicyMetrics {
        &self.inner.metrics
    }

    /// The limits every module and decision runs under.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Tags for the public IP: policy defaults under the user's tags,
    /// enforced tags over them.
    pub async fn tag_defaults(
        &self,
        req: &ReservedIpInput,
    ) -> Result<Decision<TagOutcome>, PolicyError> {
        let body = serde_json::to_vec(&common(req))?;
        let composer = TagComposer::new(req.reserved_ip.spec.tags.clone());
        self.decide(
            DecisionKind::TagDefaults,
            &req.namespace.labels,
            body,
            composer,
        )
        .await
    }

    /// The pool to allocate from: keep the spec's, use a policy's choice
    /// (always one of `allowed`), or deny.
    pub async fn select_pool(
        &self,
        req: &ReservedIpInput,
        allowed: &AllowedPools,
    ) -> Result<Decision<PoolOutcome>, PolicyError> {
        let body = serde_json::to_vec(&PoolBody {
            common: common(req),
            allowed_pools: allowed.as_list(),
        })?;
        let composer = PoolComposer::new(
            req.reserved_ip.spec.public_ipv4_pool.clone(),
            allowed.clone(),
        );
        self.decide(
            DecisionKind::SelectPool,
            &req.namespace.labels,
            body,
            composer,
        )
        .await
    }

    /// Whether the ReservedIP may be assigned to `target`.
    pub async fn eligibility(
        &self,
        req: &ReservedIpInput,
        target: &Target,
    ) -> Result<Decision<EligibilityOutcome>, PolicyError> {
        let body = serde_json::to_vec(&EligibilityBody {
            common: common(req),
            target,
        })?;
        self.decide(
            DecisionKind::Eligibility,
            &req.namespace.labels,
            body,
            EligibilityComposer::default(),
        )
        .await
    }

    /// Replaces the policies that come from `source` (a watcher's identity,
    /// e.g. `configmap:ns` or `dir:/etc/policies`) with `policies`. Changed
    /// policies are compiled (off the async runtime); one that fails keeps
    /// its previous version. Returns what changed.
    pub async fn sync(&self, source: &str, policies: Vec<PolicySource>) -> Vec<LoadReport> {
        let _one_at_a_time = self.inner.sync.lock().await;
        let plan = self.lock_registry().plan(source, policies);
        let mut reports = plan.duplicates;

        if !plan.load.is_empty() {
            let inner = Arc::clone(&self.inner);
            let loads = plan.load;
            let compiled = tokio::task::spawn_blocking(move || {
                // Policies of one batch that share a module compile it once.
                let mut batch = HashMap::new();
                loads
                    .into_iter()
                    .map(|src| {
                        let digest = src.digest();
                        let result = inner.load(&src, digest, &mut batch);
                        (src.name, digest, result)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            let compiled = match compiled {
                Ok(compiled) => compiled,
                Err(err) => {
                    tracing::error!(error = %err, "policy compilation task failed");
                    Vec::new()
                }
            };
            let mut registry = self.lock_registry();
            for (name, digest, result) in compiled {
                match &result {
                    Ok(policy) => self.inner.metrics.loaded(
                        &name,
                        |kind| policy.module.answers(kind),
                        policy.mode,
                    ),
                    Err(err) => self.inner.metrics.refused(&name, err),
                }
                reports.push(registry.record(source, &name, digest, result));
            }
        }
        {
            let mut registry = self.lock_registry();
            reports.extend(plan.remove.iter().filter_map(|name| registry.remove(name)));
            let ordered = registry.ordered();
            *self.inner.active.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ordered);
        }
        for report in &reports {
            log_report(report);
        }
        if reports
            .iter()
            .any(|r| matches!(r.result, LoadResult::Loaded { .. } | LoadResult::Removed))
        {
            self.inner.changed.send_modify(|n| *n = n.wrapping_add(1));
        }
        reports
    }

    /// Yields once each time the active policies change (a policy loaded,
    /// updated or removed), for the controller to decide every ReservedIP
    /// again: a new policy takes effect at once, not at the next resync.
    pub fn changes(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let rx = self.inner.changed.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok().map(|()| ((), rx))
        })
    }

    /// Load state of every known policy (active version, last error, count of
    /// refused loads), for events, metrics and diagnostics.
    pub fn status(&self) -> Vec<PolicyStatus> {
        self.lock_registry().status()
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single insert/remove), so poisoning is ignored.
        self.inner
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    async fn decide<C>(
        &self,
        kind: DecisionKind,
        namespace_labels: &BTreeMap<String, String>,
        body: Vec<u8>,
        mut composer: C,
    ) -> Result<Decision<C::Outcome>, PolicyError>
    where
        C: Composer + Send + 'static,
        C::Outcome: Send + 'static,
    {
        let active = Arc::clone(&self.inner.active.read().unwrap_or_else(|e| e.into_inner()));
        let policies: Vec<Arc<LoadedPolicy>> = active
            .iter()
            .filter(|p| p.module.answers(kind) && p.selector.matches(namespace_labels))
            .cloned()
            .collect();
        if policies.is_empty() {
            return Ok(composer.finish());
        }
        // Bounds the pooled instances in use at once.
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|e| PolicyError::Runtime(e.to_string()))?;
        // Audited policies are composed into a copy (what they would have
        // decided, in context) and still run after an enforced deny.
        let mut audits = Vec::new();
        let mut stopped = false;
        for policy in &policies {
            if stopped && policy.mode == Mode::Enforce {
                continue;
            }
            let started = Instant::now();
            let result = self
                .inner
                .evaluate_one(policy, kind, &body, &composer)
                .await;
            let counted = match &result {
                Ok(answer) => Counted::Answered {
                    denied: C::denies(answer),
                },
                Err(err) => {
                    tracing::warn!(policy = %policy.name, decision = ?kind, mode = %policy.mode, error = %err, "policy failed");
                    Counted::Failed(err)
                }
            };
            self.inner.metrics.evaluated(
                &policy.name,
                kind,
                policy.mode,
                started.elapsed(),
                counted,
            );
            let policy_ref = PolicyRef {
                name: &policy.name,
                version: policy.version(),
                failure_mode: policy.failure_mode,
            };
            match policy.mode {
                Mode::Enforce => stopped = composer.push(&policy_ref, result).is_break(),
                Mode::Audit => {
                    let mut shadow = composer.clone();
                    let _ = shadow.push(&policy_ref, result);
                    if let Some(verdict) = shadow.last_verdict() {
                        audits.push(Verdict {
                            audit: true,
                            ..verdict.clone()
                        });
                    }
                }
            }
        }
        let mut decision = composer.finish();
        decision.verdicts.extend(audits);
        Ok(decision)
    }
}

impl Inner {
    async fn evaluate_one<C: Composer>(
        &self,
        policy: &LoadedPolicy,
        kind: DecisionKind,
        body: &[u8],
        composer: &C,
    ) -> Result<C::Answer, EvalError> {
        let input = abi::request_document(&policy.settings, body);
        let output =
            instance::call(&self.engine, &policy.module.pre, kind, &input, &self.limits).await?;
        let answer = instance::parse_output::<C::Answer>(&output)?;
        composer.validate(&answer).map_err(EvalError::Invalid)?;
        Ok(answer)
    }

    /// Parses, decodes, compiles (or reuses) and checks one policy. Blocking.
    /// `batch` holds the modules compiled earlier in the same sync.
    fn load(
        &self,
        src: &PolicySource,
        digest: [u8; 32],
        batch: &mut HashMap<String, Arc<CompiledModule>>,
    ) -> Result<LoadedPolicy, LoadError> {
        let spec = source::parse(src, self.limits.max_module_bytes)?;
        let wasm = module::decode(&spec.module, &self.limits)?;
        let sha256 = module::sha256_hex(&wasm);
        self.trust.check(
            &wasm,
            &sha256,
            spec.expected_sha256.as_deref(),
            spec.signature.as_deref(),
        )?;
        let cached = batch.get(&sha256).cloned().or_else(|| {
            self.registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .cached_module(&sha256)
        });
        let compiled = match cached {
            Some(compiled) => compiled,
            None => {
                let compiled = Arc::new(self.compile(&wasm, &sha256)?);
                batch.insert(sha256, Arc::clone(&compiled));
                compiled
            }
        };
        module::validate_settings(&self.engine, &compiled, &spec.settings, &self.limits)?;
        Ok(LoadedPolicy {
            name: spec.name,
            order: spec.order,
            failure_mode: spec.failure_mode,
            mode: spec.mode,
            selector: spec.selector,
            settings: spec.settings,
            module: compiled,
            digest,
        })
    }

    /// Compiles `wasm`, or takes its compiled form from the artifact cache,
    /// and checks it. Blocking.
    fn compile(&self, wasm: &[u8], sha256: &str) -> Result<CompiledModule, LoadError> {
        let kept = self
            .artifacts
            .as_ref()
            .and_then(|cache| cache.load(&self.engine, sha256));
        if let Some(kept) = kept {
            let compiled = module::check(&self.engine, kept, sha256, &self.limits)?;
            self.metrics.prepared(true);
            return Ok(compiled);
        }
        let compiled = module::compile(&self.engine, wasm, &self.limits)?;
        self.metrics.prepared(false);
        if let Some(cache) = &self.artifacts {
            cache.store(sha256, compiled.pre.module());
        }
        Ok(compiled)
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine
/// lives, so every deadline fires. Holds only a weak reference.
fn spawn_epoch_ticker(engine: &Engine) -> Result<(), PolicyError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("policy-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .map_err(|e| PolicyError::Engine(format!("cannot start the epoch ticker: {e}")))
}

fn log_report(report: &LoadReport) {
    match &report.result {
        LoadResult::Loaded { version } => {
            tracing::info!(policy = %report.policy, source = %report.source, %version, "policy loaded")
        }
        LoadResult::Failed {
            error,
            kept_version,
        } => tracing::warn!(
            policy = %report.policy,
            source = %report.source,
            %error,
            kept_version = kept_version.as_deref().unwrap_or("none"),
            "policy refused; keeping the last good version"
        ),
        LoadResult::Removed => {
            tracing::info!(policy = %report.policy, source = %report.source, "policy removed")
        }
    }
}
