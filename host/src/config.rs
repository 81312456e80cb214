//! The operator's settings, from flags or environment variables.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::oci::{
    ApiKeyFields, AuthEndpoints, HttpOciClient, Limits, OciCredentials, OciError,
    SignerImplementation, api_key_fields, region_endpoint,
};

/// The shipped per-namespace cap: enough for a team's services, well under
/// OCI's default regional limit of reserved public IPs, so no one namespace
/// can exhaust it for the others.
pub const DEFAULT_MAX_RESERVED_IPS_PER_NAMESPACE: u32 = 20;

/// Settings of `k8s-oci-operator run`.
#[derive(Debug, Clone, Args)]
pub struct RunConfig {
    /// OCID of the compartment where public IPs are created and looked up.
    #[arg(long, env = "OCI_COMPARTMENT_ID")]
    pub compartment_id: String,

    /// This cluster's identity, written into the ownership tags of every public
    /// IP. Must be unique among clusters sharing a compartment.
    #[arg(long, env = "CLUSTER_ID")]
    pub cluster_id: String,

    /// How the operator authenticates to OCI.
    #[arg(long, env = "OCI_AUTH", value_enum, default_value = "config-file")]
    pub auth: AuthMode,

    /// OCI config file for `--auth config-file` (API key).
    #[arg(long, env = "OCI_CONFIG_FILE")]
    pub oci_config_file: Option<PathBuf>,

    /// Profile in the OCI config file.
    #[arg(long, env = "OCI_PROFILE", default_value = "DEFAULT")]
    pub oci_profile: String,

    /// `--auth api-key`: OCID of the API key's tenancy.
    #[arg(long, env = api_key_fields::TENANCY_ENV)]
    pub tenancy_id: Option<String>,

    /// `--auth api-key`: OCID of the user the API key belongs to.
    #[arg(long, env = api_key_fields::USER_ENV)]
    pub user_id: Option<String>,

    /// `--auth api-key`: the API key's fingerprint (aa:bb:...).
    #[arg(long, env = api_key_fields::FINGERPRINT_ENV)]
    pub fingerprint: Option<String>,

    /// `--auth api-key`: file of the API key's private key (PEM). A file,
    /// never the key itself: key material stays out of the environment.
    #[arg(long, env = api_key_fields::PRIVATE_KEY_FILE_ENV)]
    pub private_key_file: Option<PathBuf>,

    /// `--auth api-key`: the private key's passphrase, if it is encrypted.
    #[arg(long, env = api_key_fields::PASSPHRASE_ENV, hide_env_values = true)]
    pub private_key_passphrase: Option<api_key_fields::Passphrase>,

    /// `--auth api-key`: file holding the passphrase (absent: none), the
    /// alternative to the setting above.
    #[arg(long, env = api_key_fields::PASSPHRASE_FILE_ENV)]
    pub private_key_passphrase_file: Option<PathBuf>,

    /// Which implementation signs API-key and instance-principal requests:
    /// the project's own (`builtin`) or, in builds with the `oci-rust-sdk`
    /// feature, oci-rust-sdk's.
    #[arg(long, env = "OCI_SIGNER", value_enum, default_value = "builtin")]
    pub oci_signer: SignerImplementation,

    /// Test-only: the instance metadata service (default OCI's,
    /// http://169.254.169.254/opc/v2).
    #[arg(long, env = "OCI_METADATA_BASE_URL", hide = true)]
    pub metadata_url: Option<String>,

    /// Test-only: the federation endpoint of instance principals (default
    /// https://auth.<region>.<realm domain>). OCI's Go SDK reads the same
    /// variable.
    #[arg(long, env = "OCI_SDK_AUTH_CLIENT_REGION_URL", hide = true)]
    pub federation_url: Option<String>,

    /// Test-only: the OKE proxymux (default
    /// https://$KUBERNETES_SERVICE_HOST:12250/resourcePrincipalSessionTokens).
    #[arg(long, env = "OCI_OKE_PROXYMUX_URL", hide = true)]
    pub proxymux_url: Option<String>,

    /// ServiceAccount token for OKE workload identity (the name OCI's SDKs read).
    #[arg(long, env = "OCI_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH", hide = true)]
    pub service_account_token_path: Option<PathBuf>,

    /// Cluster CA that signs the proxymux's certificate (the name OCI's SDKs read).
    #[arg(long, env = "OCI_KUBERNETES_SERVICE_ACCOUNT_CERT_PATH", hide = true)]
    pub service_account_ca_path: Option<PathBuf>,

    /// OCI region, by identifier (eu-frankfurt-1) or key (fra); defaults to
    /// the config file's or the instance's.
    #[arg(long, env = "OCI_REGION")]
    pub region: Option<String>,

    /// Override of the Core Services endpoint (e.g. the OCI emulator's URL).
    #[arg(long, env = "OCI_ENDPOINT")]
    pub endpoint: Option<String>,

    /// Subnets searched for an `assignment.privateIPAddress` given without
    /// `subnetId` or `vnicId` (comma separated OCIDs).
    #[arg(long, env = "OCI_SUBNET_IDS", value_delimiter = ',')]
    pub subnet_ids: Vec<String>,

    /// Timeout of one OCI request, in seconds.
    #[arg(long, env = "OCI_TIMEOUT_SECONDS", default_value_t = 30)]
    pub oci_timeout_seconds: u64,

    /// Client-side limit of OCI read calls per second (stays under OCI's throttling).
    #[arg(long, env = "OCI_READS_PER_SECOND", default_value_t = 20)]
    pub oci_reads_per_second: u32,

    /// Client-side limit of OCI write calls per second.
    #[arg(long, env = "OCI_WRITES_PER_SECOND", default_value_t = 20)]
    pub oci_writes_per_second: u32,

    /// Burst allowed above those rates: OCI's (the client keeps 25 ms of
    /// its rate as headroom below it, for jitter on the way to OCI).
    #[arg(long, env = "OCI_BURST", default_value_t = 5)]
    pub oci_burst: u32,

    /// The longest wait between two looks at an IP OCI is changing, while
    /// OCI's time for that change is not yet learned, in milliseconds.
    #[arg(long, env = "POLL_INTERVAL_MS", default_value_t = 2000)]
    pub poll_interval_ms: u64,

    /// How often an IP at rest is checked for drift, in seconds.
    #[arg(long, env = "RESYNC_INTERVAL_SECONDS", default_value_t = 600)]
    pub resync_interval_seconds: u64,

    /// How long OCI must keep answering 404 for a ReservedIP's public IP
    /// before it counts as deleted outside the operator (and a new one is
    /// allocated), in seconds. OCI reads are eventually consistent: an IP
    /// created a moment ago may not be readable yet.
    #[arg(long, env = "PUBLIC_IP_MISSING_GRACE_SECONDS", default_value_t = 120)]
    pub missing_grace_seconds: u64,

    /// How often the orphan sweep lists the compartment's public IPs, in seconds.
    #[arg(long, env = "ORPHAN_SWEEP_INTERVAL_SECONDS", default_value_t = 300)]
    pub orphan_sweep_interval_seconds: u64,

    /// How long a public IP tagged with this cluster must have had no
    /// ReservedIP before the sweep releases it, in seconds.
    #[arg(long, env = "ORPHAN_GRACE_SECONDS", default_value_t = 600)]
    pub orphan_grace_seconds: u64,

    /// Watch ReservedIPs (and pods) of this namespace only; all namespaces when unset.
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// The operator's own namespace (set from the pod's namespace by the
    /// deployment): pods there never get a public IP.
    #[arg(long, env = "POD_NAMESPACE")]
    pub operator_namespace: Option<String>,

    /// How many ReservedIPs of one namespace may hold a public IP; the
    /// namespace annotation `oci.k8s.logmein.com/max-reserved-ips` overrides
    /// it. 0: no cap.
    #[arg(long, env = "MAX_RESERVED_IPS_PER_NAMESPACE", default_value_t = DEFAULT_MAX_RESERVED_IPS_PER_NAMESPACE)]
    pub max_reserved_ips_per_namespace: u32,

    /// Create ReservedIPs for labelled pods and StatefulSets in namespaces
    /// annotated `oci.k8s.logmein.com/workload-ips: "true"` (and show their
    /// IP on the pods). Off: the operator never creates a ReservedIP, and
    /// needs no permission to create them or to write pods.
    #[arg(long, env = "WORKLOAD_IPS", default_value_t = true, action = clap::ArgAction::Set)]
    pub workload_ips: bool,

    /// Namespace of the leader-election Lease. Set it (the operator's own
    /// namespace) to run several replicas: only the Lease holder reconciles.
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// Seconds a leader's Lease stays valid without renewal: the longest a
    /// standby waits before taking over from a leader that died.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 15)]
    pub lease_duration_seconds: u64,

    /// Namespace whose ConfigMaps labelled `oci.k8s.logmein.com/policy` hold
    /// WebAssembly policies (the operator's own namespace; tenants must not
    /// be able to write there). Unset: no ConfigMap policies.
    #[arg(long, env = "POLICY_NAMESPACE")]
    pub policy_namespace: Option<String>,

    /// Directory of policies (e.g. a mounted ConfigMap), watched for changes.
    #[arg(long, env = "POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Address of the health (/healthz, /readyz) and /metrics endpoint.
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: String,

    /// After SIGTERM, how long passes under way may take to finish before
    /// the process ends anyway (the Lease is released either way). Keep it
    /// below the pod's terminationGracePeriodSeconds (30 by default) less a
    /// few seconds for the release.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 15)]
    pub shutdown_timeout_seconds: u64,

    /// A reconcile pass running longer than this fails the liveness probe
    /// (/healthz): every call it makes has a timeout, so it is wedged.
    #[arg(long, env = "STUCK_PASS_SECONDS", default_value_t = 300)]
    pub stuck_pass_seconds: u64,

    /// Log as JSON lines instead of text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthMode {
    /// A profile of an OCI config file (`~/.oci/config` or
    /// `--oci-config-file`): an API key, or a session token (`oci session
    /// authenticate`) for local development.
    ConfigFile,
    /// An API key given field by field: OCI_TENANCY_ID, OCI_USER_ID,
    /// OCI_FINGERPRINT, OCI_REGION, OCI_PRIVATE_KEY_FILE and optionally
    /// OCI_PRIVATE_KEY_PASSPHRASE(_FILE) (a Secret of separate fields).
    ApiKey,
    /// Instance principals (the node's identity, from the instance metadata service).
    InstancePrincipal,
    /// OKE workload identity (the pod's ServiceAccount, enhanced clusters).
    OkeWorkloadIdentity,
}

impl RunConfig {
    /// The client-side OCI rate limits (zero is read as one).
    pub fn oci_limits(&self) -> Limits {
        let n = |v: u32| std::num::NonZeroU32::new(v).unwrap_or(std::num::NonZeroU32::MIN);
        Limits {
            reads_per_second: n(self.oci_reads_per_second),
            writes_per_second: n(self.oci_writes_per_second),
            burst: n(self.oci_burst),
        }
    }

    /// The credentials these settings name, and where they came from (for
    /// messages: the config file and profile, or the metadata service).
    pub async fn oci_credentials(&self) -> Result<(OciCredentials, String), OciError> {
        match self.auth {
            AuthMode::ConfigFile => {
                let path = match &self.oci_config_file {
                    Some(p) => p.clone(),
                    None => OciCredentials::default_config_path().ok_or_else(|| {
                        OciError::Config(
                            "no OCI config file: set --oci-config-file or OCI_CONFIG_FILE".into(),
                        )
                    })?,
                };
                Ok((
                    OciCredentials::from_config_profile(&path, &self.oci_profile, self.oci_signer)?,
                    format!("{} [{}]", path.display(), self.oci_profile),
                ))
            }
            AuthMode::ApiKey => Ok((
                OciCredentials::from_api_key_fields(&self.api_key_fields(), self.oci_signer)?,
                format!(
                    "{}, {}, {} and {}",
                    api_key_fields::TENANCY_ENV,
                    api_key_fields::USER_ENV,
                    api_key_fields::FINGERPRINT_ENV,
                    self.private_key_file.as_ref().map_or_else(
                        || api_key_fields::PRIVATE_KEY_FILE_ENV.to_string(),
                        |p| p.display().to_string()
                    )
                ),
            )),
            #[cfg(feature = "oci-rust-sdk")]
            AuthMode::InstancePrincipal if self.oci_signer == SignerImplementation::OciRustSdk => {
                Ok((
                    OciCredentials::instance_principals_by_oci_rust_sdk().await?,
                    "the instance metadata service (oci-rust-sdk)".to_string(),
                ))
            }
            AuthMode::InstancePrincipal => Ok((
                OciCredentials::instance_principal(&self.auth_endpoints(), self.region.as_deref())
                    .await?,
                "the instance metadata service".to_string(),
            )),
            AuthMode::OkeWorkloadIdentity => Ok((
                OciCredentials::oke_workload_identity(
                    &self.auth_endpoints(),
                    self.region.as_deref(),
                )
                .await?,
                "the pod's ServiceAccount (OKE workload identity)".to_string(),
            )),
        }
    }

    /// The fields of `--auth api-key`.
    pub fn api_key_fields(&self) -> ApiKeyFields {
        ApiKeyFields {
            tenancy: self.tenancy_id.clone(),
            user: self.user_id.clone(),
            fingerprint: self.fingerprint.clone(),
            region: self.region.clone(),
            private_key_file: self.private_key_file.clone(),
            passphrase: self.private_key_passphrase.as_ref().map(|p| p.0.clone()),
            passphrase_file: self.private_key_passphrase_file.clone(),
        }
    }

    /// Where session-token credentials find their services.
    pub fn auth_endpoints(&self) -> AuthEndpoints {
        AuthEndpoints {
            metadata_url: self.metadata_url.clone(),
            federation_url: self.federation_url.clone(),
            proxymux_url: self.proxymux_url.clone(),
            service_account_token: self.service_account_token_path.clone(),
            service_account_ca: self.service_account_ca_path.clone(),
        }
    }

    /// The OCI client these settings describe.
    pub async fn oci_client(&self) -> Result<HttpOciClient, OciError> {
        let (credentials, _) = self.oci_credentials().await?;
        self.oci_client_with(credentials)
    }

    /// The OCI client these settings describe, signing with `credentials`.
    pub fn oci_client_with(&self, credentials: OciCredentials) -> Result<HttpOciClient, OciError> {
        let endpoint = match &self.endpoint {
            Some(e) => e.clone(),
            None => {
                let region = self
                    .region
                    .as_deref()
                    .or(credentials.region())
                    .ok_or_else(|| {
                        OciError::Config("no OCI region: set --region or OCI_REGION".into())
                    })?;
                region_endpoint(region, credentials.realm_domain())
                    .map_err(|e| OciError::Config(e.to_string()))?
            }
        };
        HttpOciClient::new(
            credentials,
            &endpoint,
            Duration::from_secs(self.oci_timeout_seconds),
        )
    }
}

/// How policies are run and trusted: shared by `run` and `policy eval/test`,
/// so offline checks run under the operator's limits.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Wall-clock deadline of one policy evaluation, in milliseconds.
    #[arg(long, env = "POLICY_TIMEOUT_MS", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(5..=10_000))]
    pub policy_timeout_ms: u64,

    /// Linear memory one policy instance may use, in MiB.
    #[arg(long, env = "POLICY_MEMORY_MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=512))]
    pub policy_memory_mib: u64,

    /// Largest module as configured (gzip size when compressed), in KiB.
    #[arg(long, env = "POLICY_MAX_MODULE_KIB", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub policy_max_module_kib: u64,

    /// Largest request document handed to a policy, in KiB.
    #[arg(long, env = "POLICY_MAX_INPUT_KIB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=16_384))]
    pub policy_max_input_kib: u64,

    /// Largest answer accepted from a policy, in KiB.
    #[arg(long, env = "POLICY_MAX_OUTPUT_KIB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=16_384))]
    pub policy_max_output_kib: u64,

    /// Directory where compiled modules are kept across restarts (must be
    /// writable only by the operator). Unset: compile at every start (`policy
    /// eval` and `policy test` then use ~/.cache/k8s-oci-operator/policy-modules).
    #[arg(long, env = "POLICY_CACHE_DIR")]
    pub policy_cache_dir: Option<PathBuf>,

    /// File of PEM `PUBLIC KEY` blocks (Ed25519) that policy modules may be
    /// signed with (`policy.wasm.sig`). A module with a signature no key
    /// verifies is refused.
    #[arg(long, env = "POLICY_TRUSTED_KEYS")]
    pub policy_trusted_keys: Option<PathBuf>,

    /// Refuse modules without a valid signature (needs --policy-trusted-keys).
    #[arg(long, env = "POLICY_REQUIRE_SIGNATURE", default_value_t = false)]
    pub policy_require_signature: bool,
}

impl PolicyArgs {
    /// The engine's set-up; an unreadable or unusable key file is an error
    /// that says which file and why.
    pub fn engine_options(
        &self,
        metrics: crate::policy::PolicyMetrics,
    ) -> anyhow::Result<crate::policy::EngineOptions> {
        use anyhow::Context as _;
        let limits = crate::policy::Limits {
            memory_bytes: (self.policy_memory_mib << 20) as usize,
            timeout: Duration::from_millis(self.policy_timeout_ms),
            max_input_bytes: (self.policy_max_input_kib << 10) as usize,
            max_output_bytes: (self.policy_max_output_kib << 10) as usize,
            max_module_bytes: (self.policy_max_module_kib << 10) as usize,
            ..crate::policy::Limits::default()
        };
        let trust = match &self.policy_trusted_keys {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("reading policy trusted keys {}", path.display()))?;
                crate::policy::Trust::from_pem(&pem, self.policy_require_signature)
                    .with_context(|| path.display().to_string())?
            }
            None if self.policy_require_signature => anyhow::bail!(
                "--policy-require-signature needs --policy-trusted-keys (POLICY_TRUSTED_KEYS)"
            ),
            None => crate::policy::Trust::default(),
        };
        Ok(crate::policy::EngineOptions {
            limits,
            artifact_dir: self.policy_cache_dir.clone(),
            trust,
            metrics,
        })
    }
}
