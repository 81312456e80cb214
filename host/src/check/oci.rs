//! The OCI side of `check`: credentials, endpoint, authentication,
//! compartment, subnets and private IPs, VNICs, write permissions.
//!
//! [`check`] loads the credentials and builds the client; [`probe`] makes
//! the calls through [`OciNetwork`] (so a fake can stand in for OCI in unit
//! tests); the `*_line` functions are pure: a call's result in, a
//! [`CheckLine`] with its fix out.
//!
//! OCI answers 404 `NotAuthorizedOrNotFound` both for what does not exist
//! and for what the caller may not see, so every 404 line names both causes
//! and the IAM statement that would allow the call.

use std::time::Duration;

use super::CheckLine;
use crate::cidr::parse_cidr;
use crate::config::{AuthMode, RunConfig};
use crate::oci::region::REGION_METADATA_ENV;
use crate::oci::{
    HttpOciClient, Lifetime, ListPublicIpsQuery, OciCredentials, OciError, OciNetwork, OciResult,
    PrivateIp, PrivateIpFilter, PublicIp, PublicIpState, Subnet, UpdatePublicIpDetails, Vnic,
    VnicAttachment, region_endpoint,
};

/// Check names (the `name` of each line), stable for scripts.
pub const CREDENTIALS: &str = "oci credentials";
pub const ENDPOINT: &str = "oci endpoint";
pub const AUTHENTICATION: &str = "oci authentication";
pub const COMPARTMENT: &str = "oci compartment";
pub const SUBNETS: &str = "oci subnets";
pub const VNIC_ATTACHMENTS: &str = "oci vnic attachments";
pub const VNIC: &str = "oci vnic";
pub const UPDATE_PUBLIC_IPS: &str = "oci update public ips";
pub const OTHER_WRITES: &str = "oci create, delete, assign public ips";

/// Name of the GetSubnet line of one configured subnet.
pub fn subnet_name(id: &str) -> String {
    format!("oci subnet {id}")
}

/// Name of the ListPrivateIps line of one configured subnet.
pub fn private_ips_name(id: &str) -> String {
    format!("oci private ips of subnet {id}")
}

/// The If-Match of the write probe. OCI's etags are opaque strings it
/// generates; this one is not of the kind it generates, so it never equals
/// an IP's etag, and the update it guards is never applied.
pub const NEVER_MATCHING_ETAG: &str = "k8s-oci-operator-check-never-matches";

/// Who the calls are made as, for messages and IAM statements. Holds the
/// keyId (tenancy/user/fingerprint), never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An API key, by its keyId.
    ApiKey { key_id: String },
    /// Instance principals (the node's identity).
    Instance,
    /// OKE workload identity: the operator's ServiceAccount in its namespace.
    Workload { namespace: Option<String> },
    /// The session token of an OCI config profile (`oci session authenticate`):
    /// the user who logged in.
    Session,
}

impl Principal {
    /// The principal of loaded credentials.
    pub fn of(config: &RunConfig, credentials: &OciCredentials) -> Self {
        match (credentials.key_id(), config.auth) {
            (Some(key_id), _) => Self::ApiKey {
                key_id: key_id.to_string(),
            },
            (None, _) if credentials.is_session_profile() => Self::Session,
            (None, AuthMode::OkeWorkloadIdentity) => Self::Workload {
                namespace: config.operator_namespace.clone(),
            },
            (None, _) => Self::Instance,
        }
    }

    /// `keyId ...` or `instance principal`.
    pub fn describe(&self) -> String {
        match self {
            Self::ApiKey { key_id } => format!("keyId {key_id}"),
            Self::Instance => "instance principal".to_string(),
            Self::Workload { .. } => "OKE workload identity".to_string(),
            Self::Session => "the session token of the OCI config profile".to_string(),
        }
    }

    /// The subject of an IAM statement for this principal.
    pub fn subject(&self) -> String {
        match self {
            Self::ApiKey { key_id } => {
                let user = key_id.split('/').nth(1).unwrap_or("<the user>");
                format!("group <a group with user {user}>")
            }
            Self::Instance => "dynamic-group <a dynamic group matching the nodes>".to_string(),
            Self::Workload { .. } => "any-user".to_string(),
            Self::Session => {
                "group <a group of the user who ran `oci session authenticate`>".to_string()
            }
        }
    }

    /// The statement's `where` clause: a workload is named by cluster,
    /// namespace and ServiceAccount.
    pub fn condition(&self) -> Option<String> {
        match self {
            Self::Workload { namespace } => Some(format!(
                " where all {{request.principal.type = 'workload', request.principal.namespace = '{}', request.principal.service_account = '<the operator's ServiceAccount>', request.principal.cluster_id = '<the cluster OCID>'}}",
                namespace.as_deref().unwrap_or("<the operator's namespace>")
            )),
            _ => None,
        }
    }
}

/// An IAM policy statement for `principal`, e.g. `manage public-ips` in a compartment.
pub fn statement(principal: &Principal, verb_and_resource: &str, compartment: &str) -> String {
    format!(
        "Allow {} to {verb_and_resource} in compartment id {compartment}{}",
        principal.subject(),
        principal.condition().unwrap_or_default()
    )
}

/// What the OCI checks are about.
#[derive(Debug, Clone)]
pub struct Target {
    /// The Core Services endpoint the client talks to.
    pub endpoint: String,
    /// The setting the endpoint came from (for the fix).
    pub endpoint_source: String,
    pub compartment_id: String,
    pub subnet_ids: Vec<String>,
    pub principal: Principal,
}

/// Every OCI check, in order. Never fails: each problem is a line.
pub async fn check(config: &RunConfig, probe_writes: bool) -> Vec<CheckLine> {
    // Session-token credentials are usable only once a token is issued.
    let credentials = match config.oci_credentials().await {
        Ok((credentials, source)) => credentials.warm_up().await.map(|()| (credentials, source)),
        Err(e) => Err(e),
    };
    let mut lines = vec![credentials_line(config, &credentials)];
    let Ok((credentials, _)) = credentials else {
        lines.extend(skipped(config, "the OCI credentials did not load"));
        return lines;
    };
    let principal = Principal::of(config, &credentials);
    let (endpoint, endpoint_source) = match endpoint_of(config, &credentials) {
        Ok(found) => found,
        Err((detail, fix)) => {
            lines.push(CheckLine::fail(ENDPOINT, detail, fix));
            lines.extend(skipped_after_endpoint(config, "no OCI endpoint"));
            return lines;
        }
    };
    let timeout = Duration::from_secs(config.oci_timeout_seconds);
    let client = match HttpOciClient::new(credentials, &endpoint, timeout) {
        Ok(client) => client,
        Err(e) => {
            lines.push(CheckLine::fail(
                ENDPOINT,
                e.to_string(),
                format!(
                    "{endpoint_source} must be an http(s) URL such as https://iaas.eu-frankfurt-1.oraclecloud.com"
                ),
            ));
            lines.extend(skipped_after_endpoint(config, "no usable OCI endpoint"));
            return lines;
        }
    };
    let target = Target {
        endpoint,
        endpoint_source,
        compartment_id: config.compartment_id.clone(),
        subnet_ids: config.subnet_ids.clone(),
        principal,
    };
    lines.extend(probe(&client, &target, probe_writes).await);
    lines
}

/// The endpoint and the setting it comes from; as `RunConfig::oci_client`
/// picks it (OCI_ENDPOINT, else OCI_REGION, else the credentials' region).
/// Else what is wrong and its fix.
fn endpoint_of(
    config: &RunConfig,
    credentials: &OciCredentials,
) -> Result<(String, String), (String, String)> {
    let (region, source) = match (&config.endpoint, &config.region, credentials.region()) {
        (Some(endpoint), _, _) => return Ok((endpoint.clone(), "OCI_ENDPOINT".into())),
        (None, Some(region), _) => (region.as_str(), format!("OCI_REGION={region}")),
        (None, None, Some(region)) => (region, format!("region={region} of the OCI credentials")),
        (None, None, None) => {
            return Err((
                "no OCI region: neither OCI_REGION, OCI_ENDPOINT nor the credentials name one"
                    .into(),
                "set OCI_REGION (--region, e.g. eu-frankfurt-1 or fra), or `region` in the OCI config profile (or the API key's Secret), or OCI_ENDPOINT (--endpoint)".into(),
            ));
        }
    };
    match region_endpoint(region, credentials.realm_domain()) {
        Ok(endpoint) => Ok((endpoint, source)),
        Err(e) => Err((
            format!("{source}: {e}"),
            format!(
                "correct {source}: a region identifier (eu-frankfurt-1) or key (fra) of OCI's public regions, case does not matter; for a region this build does not list, set {REGION_METADATA_ENV} to {{\"realmKey\":\"oc1\",\"realmDomainComponent\":\"oraclecloud.com\",\"regionKey\":\"abc\",\"regionIdentifier\":\"xx-city-1\"}} with its values, or OCI_ENDPOINT to its URL"
            ),
        )),
    }
}

/// The credentials line: which file, profile and field is wrong.
pub fn credentials_line(
    config: &RunConfig,
    loaded: &OciResult<(OciCredentials, String)>,
) -> CheckLine {
    match loaded {
        Ok((credentials, source)) => CheckLine::ok(
            CREDENTIALS,
            format!(
                "{} loaded from {source}",
                Principal::of(config, credentials).describe()
            ),
        ),
        Err(e) => {
            let message = match e {
                OciError::Config(message) => message.clone(),
                other => other.to_string(),
            };
            let fix = credentials_fix(config.auth, &config.oci_profile, &message);
            CheckLine::fail(CREDENTIALS, message, fix)
        }
    }
}

/// What to do about a credentials error. The messages are `oci::auth`'s
/// (a unit test pins them, so a reworded message fails there, not silently here).
pub fn credentials_fix(mode: AuthMode, profile: &str, message: &str) -> String {
    match mode {
        AuthMode::InstancePrincipal => {
            return "instance principals need an OCI instance whose metadata service answers (and a dynamic group with an IAM policy); elsewhere set OCI_AUTH=config-file or api-key".into();
        }
        AuthMode::OkeWorkloadIdentity => {
            return "OKE workload identity needs an enhanced OKE cluster: the pod's ServiceAccount token mounted, the proxymux at $KUBERNETES_SERVICE_HOST:12250, an IAM policy for the workload (Allow any-user ... where request.principal.type = 'workload' ...) and OCI_REGION unless the node's metadata service answers".into();
        }
        AuthMode::ApiKey => return api_key_fields_fix(message),
        AuthMode::ConfigFile => {}
    }
    if message.contains("security_token_file") {
        return format!(
            "security_token_file of profile [{profile}] must name the token `oci session authenticate` wrote (~/.oci/sessions/{profile}/token): run `oci session authenticate --profile-name {profile}` again"
        );
    }
    if message.starts_with("the session token of profile") {
        return format!(
            "run `oci session authenticate --profile-name {profile}` for a new session (`oci session refresh --profile {profile}` renews a token only while it is valid, up to the session's end)"
        );
    }
    if message.starts_with("no OCI config file") || message.starts_with("cannot read OCI config") {
        "set OCI_CONFIG_FILE (--oci-config-file) to a readable OCI config file (in deploy/, the Secret oci-credentials mounted at /etc/oci/config)".into()
    } else if message.starts_with("profile [") {
        format!(
            "add a [{profile}] section to the OCI config file, or set OCI_PROFILE to one of its profiles"
        )
    } else if message.starts_with('\'') && message.contains("missing in profile") {
        let field = message.split('\'').nth(1).unwrap_or("the field");
        format!(
            "add `{field}=...` to profile [{profile}] (a profile needs user, fingerprint, key_file and tenancy; region unless OCI_REGION is set)"
        )
    } else if message.starts_with("cannot read key_file") {
        "key_file must name a readable private key file; a relative path is relative to the config file's directory".into()
    } else if message.contains("give its passphrase") {
        format!("add `pass_phrase=...` (the key's passphrase) to profile [{profile}]")
    } else if message.contains("cannot decrypt the private key") {
        format!("pass_phrase in profile [{profile}] does not decrypt key_file: correct it")
    } else if message.contains("legacy OpenSSL format") {
        "convert the key to encrypted PKCS#8 (`openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key8.pem`) and point key_file at it".into()
    } else if message.contains("not encrypted") {
        format!("remove pass_phrase from profile [{profile}]: key_file is not encrypted")
    } else if message.contains("of the session profile") {
        format!(
            "key_file of profile [{profile}] must be the session key `oci session authenticate` wrote next to the token (~/.oci/sessions/{profile}/oci_api_key.pem)"
        )
    } else if message.contains("private key") {
        "key_file must be the RSA private key (PEM: PKCS#8, PKCS#1 or encrypted PKCS#8 with pass_phrase; 2048 bits or more) of the API key whose fingerprint is in the profile".into()
    } else {
        "check OCI_CONFIG_FILE, OCI_PROFILE and the profile's user, fingerprint, key_file and tenancy".into()
    }
}

/// What to do about an error of `--auth api-key`: the setting the message
/// starts with, and the Secret key the chart takes it from. The messages are
/// `oci::api_key_fields`'s (a unit test pins them).
pub fn api_key_fields_fix(message: &str) -> String {
    use crate::oci::api_key_fields::{
        FINGERPRINT_ENV, PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, PRIVATE_KEY_FILE_ENV, TENANCY_ENV,
        USER_ENV,
    };
    let secret = |key: &str| {
        format!("(with the chart: key `{key}` of the Secret named by auth.apiKeyFields.secretName)")
    };
    if message.contains("are both set") {
        format!("unset {PASSPHRASE_ENV} or {PASSPHRASE_FILE_ENV}: the passphrase comes from one")
    } else if message.starts_with(TENANCY_ENV) {
        format!(
            "set {TENANCY_ENV} to the OCID of the tenancy the API key's user is in (ocid1.tenancy.oc1..., the console's Tenancy details) {}",
            secret("tenancy")
        )
    } else if message.starts_with(USER_ENV) {
        format!(
            "set {USER_ENV} to the OCID of the user the API key was uploaded to (ocid1.user.oc1..., Identity > Users) {}",
            secret("user")
        )
    } else if message.starts_with(FINGERPRINT_ENV) && message.contains("is not the fingerprint") {
        format!(
            "the fingerprint and the private key are of two different API keys: if the key is the one uploaded to the user, set {FINGERPRINT_ENV} to its fingerprint (named above) {}; else give the private key of the uploaded one {} (Identity > Users > API Keys lists the fingerprints)",
            secret("fingerprint"),
            secret("key")
        )
    } else if message.starts_with(FINGERPRINT_ENV) {
        format!(
            "set {FINGERPRINT_ENV} to the API key's fingerprint as Identity > Users > API Keys shows it (16 hexadecimal pairs, aa:bb:...) {}",
            secret("fingerprint")
        )
    } else if message.starts_with(PASSPHRASE_FILE_ENV) {
        format!(
            "{PASSPHRASE_FILE_ENV} must be a file the operator can read (user 65532 in the image) {}",
            secret("passphrase")
        )
    } else if message.starts_with(PRIVATE_KEY_FILE_ENV) {
        if message.contains("is not set") || message.contains("cannot read it") {
            format!(
                "set {PRIVATE_KEY_FILE_ENV} to a readable file holding the API key's private key, PEM {}",
                secret("key")
            )
        } else if message.contains("give its passphrase") {
            format!(
                "the private key is encrypted: give its passphrase in {PASSPHRASE_FILE_ENV} or {PASSPHRASE_ENV} {}",
                secret("passphrase")
            )
        } else if message.contains("cannot decrypt") {
            format!(
                "the passphrase does not decrypt the private key: correct {PASSPHRASE_FILE_ENV} or {PASSPHRASE_ENV} {}",
                secret("passphrase")
            )
        } else if message.contains("not encrypted") {
            format!(
                "the private key is not encrypted: unset {PASSPHRASE_ENV} and {PASSPHRASE_FILE_ENV} (with the chart: remove key `passphrase` from the Secret)"
            )
        } else if message.contains("legacy OpenSSL format") {
            format!(
                "convert the key to encrypted PKCS#8 (`openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem -out key8.pem`) and give that {}",
                secret("key")
            )
        } else {
            format!(
                "{PRIVATE_KEY_FILE_ENV} must hold the API key's RSA private key (PEM: PKCS#8, PKCS#1 or encrypted PKCS#8 with a passphrase; 2048 bits or more) {}",
                secret("key")
            )
        }
    } else {
        format!(
            "check {TENANCY_ENV}, {USER_ENV}, {FINGERPRINT_ENV} and {PRIVATE_KEY_FILE_ENV} (with the chart: keys tenancy, user, fingerprint and key of the Secret named by auth.apiKeyFields.secretName)"
        )
    }
}

/// The reserved IPs of the compartment, as the operator lists them.
fn reserved_query(compartment_id: &str) -> ListPublicIpsQuery {
    ListPublicIpsQuery {
        lifetime: Some(Lifetime::Reserved),
        ..ListPublicIpsQuery::region(compartment_id)
    }
}

/// The calls, once a client exists: one line per check, in order, a
/// failed prerequisite turning its dependents into "not checked".
/// Read-only but for the write probe, which cannot change anything (see
/// [`update_probe_line`]); never creates or deletes.
pub async fn probe(oci: &dyn OciNetwork, target: &Target, probe_writes: bool) -> Vec<CheckLine> {
    // One read call answers three questions: does the endpoint answer, does
    // OCI accept our signature, may we list the compartment.
    let listing = oci
        .list_public_ips(&reserved_query(&target.compartment_id))
        .await;
    let mut lines = vec![
        endpoint_line(target, &listing),
        authentication_line(&target.principal, &listing),
    ];
    // The endpoint first: when it did not answer, that is the reason.
    let authenticated = prerequisite(&lines[0]).and(prerequisite(&lines[1]));
    lines.push(match &authenticated {
        Ok(()) => compartment_line(target, &listing),
        Err(reason) => CheckLine::not_checked(COMPARTMENT, reason.clone()),
    });
    let compartment = authenticated.clone().and(prerequisite(&lines[2]));

    // Subnets depend on authentication only: their IAM is separate.
    lines.extend(subnets(oci, target, &authenticated).await);

    // VNICs: in the compartment.
    match &compartment {
        Ok(()) => {
            let attachments = oci
                .list_vnic_attachments(&target.compartment_id, None)
                .await;
            lines.push(vnic_attachments_line(target, &attachments));
            let vnic_id = attachments
                .as_ref()
                .ok()
                .and_then(|list| list.iter().find_map(|a| a.vnic_id.clone()));
            lines.push(match (&attachments, vnic_id) {
                (Err(_), _) => CheckLine::not_checked(VNIC, "ListVnicAttachments failed"),
                (Ok(_), None) => {
                    CheckLine::not_checked(VNIC, "no VNIC attachment in the compartment")
                }
                (Ok(_), Some(id)) => vnic_line(target, &id, &oci.get_vnic(&id).await),
            });
        }
        Err(reason) => {
            lines.push(CheckLine::not_checked(VNIC_ATTACHMENTS, reason.clone()));
            lines.push(CheckLine::not_checked(VNIC, reason.clone()));
        }
    }

    // Writes: the probe needs a public IP of the compartment.
    lines.push(match (&compartment, &listing) {
        (Err(reason), _) => CheckLine::not_checked(UPDATE_PUBLIC_IPS, reason.clone()),
        (Ok(()), _) if !probe_writes => CheckLine::not_checked_with(
            UPDATE_PUBLIC_IPS,
            "skipped (--skip-write-probe)",
            statement(&target.principal, "manage public-ips", &target.compartment_id),
        ),
        (Ok(()), Err(_)) => {
            CheckLine::not_checked(UPDATE_PUBLIC_IPS, "ListPublicIps failed")
        }
        (Ok(()), Ok(ips)) => match probe_subject(ips) {
            None => CheckLine::not_checked_with(
                UPDATE_PUBLIC_IPS,
                "no reserved public IP at rest in the compartment to probe with (the check never creates one)",
                statement(&target.principal, "manage public-ips", &target.compartment_id),
            ),
            Some(ip) => {
                let answer = oci
                    .update_public_ip(&ip.id, &no_change(ip), Some(NEVER_MATCHING_ETAG))
                    .await;
                update_probe_line(target, &ip.id, &answer)
            }
        },
    });
    lines.push(other_writes_line(target));
    lines
}

/// Ok when `line` passed, else the reason its dependents are not checked.
fn prerequisite(line: &CheckLine) -> Result<(), String> {
    match line.status {
        super::Status::Ok => Ok(()),
        super::Status::Fail => Err(format!("{} failed", line.name)),
        super::Status::NotChecked => Err(format!("{} not checked", line.name)),
    }
}

/// The lines of every check after the credentials, all not checked.
fn skipped(config: &RunConfig, reason: &str) -> Vec<CheckLine> {
    let mut lines = vec![CheckLine::not_checked(ENDPOINT, reason)];
    lines.extend(skipped_after_endpoint(config, reason));
    lines
}

/// The lines of every check after the endpoint, all not checked.
fn skipped_after_endpoint(config: &RunConfig, reason: &str) -> Vec<CheckLine> {
    let mut names = vec![AUTHENTICATION.to_string(), COMPARTMENT.to_string()];
    if config.subnet_ids.is_empty() {
        names.push(SUBNETS.to_string());
    }
    for id in &config.subnet_ids {
        names.push(subnet_name(id));
        names.push(private_ips_name(id));
    }
    names.extend([VNIC_ATTACHMENTS, VNIC, UPDATE_PUBLIC_IPS, OTHER_WRITES].map(String::from));
    names
        .into_iter()
        .map(|name| CheckLine::not_checked(name, reason))
        .collect()
}

async fn subnets(
    oci: &dyn OciNetwork,
    target: &Target,
    authenticated: &Result<(), String>,
) -> Vec<CheckLine> {
    if target.subnet_ids.is_empty() {
        return vec![CheckLine::not_checked(
            SUBNETS,
            "OCI_SUBNET_IDS is empty (it is needed only for assignment.privateIPAddress given without subnetId or vnicId)",
        )];
    }
    let mut lines = Vec::new();
    for id in &target.subnet_ids {
        if let Err(reason) = authenticated {
            lines.push(CheckLine::not_checked(subnet_name(id), reason.clone()));
            lines.push(CheckLine::not_checked(private_ips_name(id), reason.clone()));
            continue;
        }
        let subnet = oci.get_subnet(id).await;
        let subnet_line = subnet_line(target, id, &subnet);
        let private_ips = match (&subnet, subnet_line.status) {
            (Ok(subnet), super::Status::Ok) => match probe_address(subnet) {
                Some(address) => {
                    let filter = PrivateIpFilter::AddressInSubnet {
                        subnet_id: id.clone(),
                        ip_address: address.clone(),
                    };
                    let answer = oci.list_private_ips(&filter).await;
                    private_ips_line(target, subnet, &address, &answer)
                }
                None => CheckLine::not_checked(
                    private_ips_name(id),
                    "the subnet has no IPv4 CIDR block to look up an address in",
                ),
            },
            _ => CheckLine::not_checked(private_ips_name(id), "GetSubnet failed"),
        };
        lines.push(subnet_line);
        lines.push(private_ips);
    }
    lines
}

/// The subnet's virtual router address (the first host): in the subnet by
/// definition, so the lookup is valid; whether it has a private IP object
/// does not matter, only that OCI lets us ask.
pub fn probe_address(subnet: &Subnet) -> Option<String> {
    let (network, _) = parse_cidr(subnet.cidr_block.as_deref()?)?;
    Some(std::net::Ipv4Addr::from(u32::from(network).wrapping_add(1)).to_string())
}

/// An IP the write probe may use: reserved and at rest (an IP in
/// transition answers 409 whatever the permissions).
pub fn probe_subject(ips: &[PublicIp]) -> Option<&PublicIp> {
    ips.iter().find(|ip| {
        ip.lifetime == Lifetime::Reserved
            && matches!(
                ip.lifecycle_state,
                PublicIpState::Available | PublicIpState::Assigned | PublicIpState::Unassigned
            )
    })
}

/// An update body that changes nothing: the IP's current display name (or,
/// without one, its current freeform tags). Belt and braces with the
/// never-matching If-Match: were OCI to ignore If-Match, the update would
/// still leave the IP as it was.
pub fn no_change(ip: &PublicIp) -> UpdatePublicIpDetails {
    match &ip.display_name {
        Some(name) => UpdatePublicIpDetails {
            display_name: Some(name.clone()),
            ..UpdatePublicIpDetails::default()
        },
        None => UpdatePublicIpDetails {
            freeform_tags: Some(ip.freeform_tags.clone()),
            ..UpdatePublicIpDetails::default()
        },
    }
}

/// `code` (status, opc-request-id) of an OCI answer, for details.
fn answered(e: &OciError) -> String {
    match e {
        OciError::Service {
            status,
            code,
            message,
            request_id,
            ..
        } => format!(
            "{status} {code}: {message} (opc-request-id {})",
            request_id.as_deref().unwrap_or("none")
        ),
        other => other.to_string(),
    }
}

/// Whether the endpoint answered at all.
pub fn endpoint_line<T>(target: &Target, listing: &OciResult<T>) -> CheckLine {
    let fix = || {
        format!(
            "the endpoint comes from {}: check that {} is OCI's Core Services endpoint for your region (https://iaas.<region>.<realm domain>, oraclecloud.com for commercial regions) and reachable from here (DNS, proxy, firewall, TLS inspection); OCI_REGION sets the region, OCI_ENDPOINT overrides the URL",
            target.endpoint_source, target.endpoint
        )
    };
    match listing {
        Err(e @ OciError::Transport { .. }) => CheckLine::fail(
            ENDPOINT,
            format!("{} did not answer: {e}", target.endpoint),
            fix(),
        ),
        Err(e @ OciError::Decode { .. }) => CheckLine::fail(
            ENDPOINT,
            format!("{} answered, but not as OCI does: {e}", target.endpoint),
            fix(),
        ),
        Err(OciError::Signing { .. }) => {
            CheckLine::not_checked(ENDPOINT, "no request was sent: it could not be signed")
        }
        Err(OciError::Config(message)) => CheckLine::fail(ENDPOINT, message.clone(), fix()),
        Err(OciError::Service { status, .. }) => CheckLine::ok(
            ENDPOINT,
            format!("{} answered (HTTP {status})", target.endpoint),
        ),
        Ok(_) => CheckLine::ok(ENDPOINT, format!("{} answered", target.endpoint)),
    }
}

/// Whether OCI accepted the request signature (anything but 401).
pub fn authentication_line<T>(principal: &Principal, listing: &OciResult<T>) -> CheckLine {
    match listing {
        Err(e) if e.is_not_authenticated() => CheckLine::fail(
            AUTHENTICATION,
            format!(
                "OCI rejected the request signed with {}: {}",
                principal.describe(),
                answered(e)
            ),
            match principal {
                Principal::ApiKey { .. } => "the key and the keyId do not match OCI's records: the fingerprint (`fingerprint` in the OCI config profile, or OCI_FINGERPRINT) must be that of the public key uploaded to the user (Identity > Users > API Keys), the private key (`key_file`, or OCI_PRIVATE_KEY_FILE) its private half, the user and tenancy (`user` and `tenancy`, or OCI_USER_ID and OCI_TENANCY_ID) the OCIDs of that user and its tenancy; the clock must be within 5 minutes of OCI's".to_string(),
                Principal::Instance => "the instance principal's session was refused: check the instance's certificates (restart it if they expired) and the clock".to_string(),
                Principal::Workload { .. } => "the workload's session token was refused: check that the cluster is an enhanced OKE cluster, the IAM policy names this cluster, namespace and ServiceAccount, and the clock".to_string(),
                Principal::Session => "the session token was refused (the session ended, or was for another region or tenancy): run `oci session authenticate` again for this region, and check the clock".to_string(),
            },
        ),
        Err(e @ OciError::Signing { .. }) => CheckLine::fail(
            AUTHENTICATION,
            format!("could not sign with {}: {e}", principal.describe()),
            match principal {
                Principal::ApiKey { .. } => "key_file must be the RSA private key of the API key (with pass_phrase if it is encrypted)",
                Principal::Instance | Principal::Workload { .. } => "the session token could not be renewed: see the credentials line",
                Principal::Session => "the session token could not be used (the message says why): run `oci session authenticate` again when it expired",
            },
        ),
        Err(OciError::Transport { .. } | OciError::Decode { .. } | OciError::Config(_)) => {
            CheckLine::not_checked(AUTHENTICATION, "the endpoint did not answer")
        }
        Err(_) | Ok(_) => CheckLine::ok(
            AUTHENTICATION,
            format!("OCI accepted requests signed with {}", principal.describe()),
        ),
    }
}

/// Whether the compartment can be listed: ListPublicIps (REGION, RESERVED).
pub fn compartment_line(target: &Target, listing: &OciResult<Vec<PublicIp>>) -> CheckLine {
    let compartment = &target.compartment_id;
    match listing {
        Ok(ips) => CheckLine::ok(
            COMPARTMENT,
            format!(
                "ListPublicIps (scope REGION, lifetime RESERVED) in {compartment}: {} reserved public IP(s)",
                ips.len()
            ),
        ),
        Err(e) if e.is_not_found() => CheckLine::fail(
            COMPARTMENT,
            format!(
                "ListPublicIps in {compartment} answered {}; OCI answers this both for a compartment that does not exist and for one the caller may not read",
                answered(e)
            ),
            format!(
                "either OCI_COMPARTMENT_ID is wrong (it must be the OCID of the compartment the public IPs live in: `oci iam compartment list`), or the IAM policy lacks `{}`",
                statement(&target.principal, "manage public-ips", compartment)
            ),
        ),
        Err(e) if matches!(e.status(), Some(429 | 500..=599)) => CheckLine::fail(
            COMPARTMENT,
            format!("ListPublicIps in {compartment} answered {}", answered(e)),
            "OCI is throttling or failing: run the check again; if it persists, quote the opc-request-id to Oracle support",
        ),
        Err(e) => CheckLine::fail(
            COMPARTMENT,
            format!("ListPublicIps in {compartment} answered {}", answered(e)),
            "OCI_COMPARTMENT_ID must be a compartment OCID (ocid1.compartment.oc1..., or the tenancy's OCID for the root compartment)",
        ),
    }
}

/// GetSubnet of a configured subnet.
pub fn subnet_line(target: &Target, id: &str, subnet: &OciResult<Subnet>) -> CheckLine {
    let name = subnet_name(id);
    match subnet {
        Ok(subnet) if subnet.prohibit_public_ip_on_vnic == Some(true) => CheckLine::fail(
            name,
            format!(
                "GetSubnet: {} is a private subnet (prohibitPublicIpOnVnic): OCI puts no public IP on its private IPs",
                describe_subnet(subnet)
            ),
            "remove it from OCI_SUBNET_IDS; list the public subnets of your pods and nodes there",
        ),
        Ok(subnet) => CheckLine::ok(name, format!("GetSubnet: {}", describe_subnet(subnet))),
        Err(e) if e.is_not_found() => CheckLine::fail(
            name,
            format!("GetSubnet answered {}", answered(e)),
            format!(
                "either the OCID in OCI_SUBNET_IDS is wrong, or the IAM policy lacks `{}` (in the subnet's compartment; `in tenancy` covers all)",
                statement(
                    &target.principal,
                    "read subnets",
                    "<the subnet's compartment>"
                )
            ),
        ),
        Err(e) => CheckLine::fail(
            name,
            format!("GetSubnet answered {}", answered(e)),
            "check the OCID in OCI_SUBNET_IDS; if OCI failed, run the check again",
        ),
    }
}

fn describe_subnet(subnet: &Subnet) -> String {
    format!(
        "{} {} in VCN {}",
        subnet.display_name.as_deref().unwrap_or(&subnet.id),
        subnet.cidr_block.as_deref().unwrap_or("(no IPv4 CIDR)"),
        subnet.vcn_id.as_deref().unwrap_or("?")
    )
}

/// ListPrivateIps on a configured subnet (read access to private IPs).
pub fn private_ips_line(
    target: &Target,
    subnet: &Subnet,
    address: &str,
    answer: &OciResult<Vec<PrivateIp>>,
) -> CheckLine {
    let name = private_ips_name(&subnet.id);
    let compartment = subnet
        .compartment_id
        .as_deref()
        .unwrap_or(&target.compartment_id);
    match answer {
        Ok(found) => CheckLine::ok(
            name,
            format!(
                "ListPrivateIps (subnetId, ipAddress {address}) answered ({} found): private IPs are readable",
                found.len()
            ),
        ),
        Err(e) if e.is_not_found() => CheckLine::fail(
            name,
            format!(
                "ListPrivateIps (subnetId, ipAddress {address}) answered {}: GetSubnet saw the subnet, so the private IPs are not readable",
                answered(e)
            ),
            format!(
                "add `{}` (read would do for this call; the operator needs use to assign public IPs to private IPs; the private IPs live in the compartment of their VNICs)",
                statement(&target.principal, "use private-ips", compartment)
            ),
        ),
        Err(e) => CheckLine::fail(
            name,
            format!("ListPrivateIps answered {}", answered(e)),
            "if OCI failed, run the check again",
        ),
    }
}

/// ListVnicAttachments of the compartment.
pub fn vnic_attachments_line(
    target: &Target,
    answer: &OciResult<Vec<VnicAttachment>>,
) -> CheckLine {
    match answer {
        Ok(list) => CheckLine::ok(
            VNIC_ATTACHMENTS,
            format!(
                "ListVnicAttachments in {}: {} attachment(s)",
                target.compartment_id,
                list.len()
            ),
        ),
        Err(e) if e.is_not_found() => CheckLine::fail(
            VNIC_ATTACHMENTS,
            format!(
                "ListVnicAttachments in {} answered {} (the compartment exists: ListPublicIps answered)",
                target.compartment_id,
                answered(e)
            ),
            format!(
                "add `{}` (the operator finds a pod's VNIC through its node's VNIC attachments)",
                statement(
                    &target.principal,
                    "read vnic-attachments",
                    &target.compartment_id
                )
            ),
        ),
        Err(e) => CheckLine::fail(
            VNIC_ATTACHMENTS,
            format!("ListVnicAttachments answered {}", answered(e)),
            "if OCI failed, run the check again",
        ),
    }
}

/// GetVnic on the VNIC of one attachment.
pub fn vnic_line(target: &Target, id: &str, answer: &OciResult<Vnic>) -> CheckLine {
    match answer {
        Ok(vnic) => CheckLine::ok(
            VNIC,
            format!(
                "GetVnic {id}: {} in subnet {}",
                vnic.private_ip.as_deref().unwrap_or("(no private IP)"),
                vnic.subnet_id.as_deref().unwrap_or("?")
            ),
        ),
        Err(e) if e.is_not_found() => CheckLine::fail(
            VNIC,
            format!(
                "GetVnic {id} answered {} although ListVnicAttachments names it",
                answered(e)
            ),
            format!(
                "add `{}`",
                statement(&target.principal, "read vnics", &target.compartment_id)
            ),
        ),
        Err(e) => CheckLine::fail(
            VNIC,
            format!("GetVnic {id} answered {}", answered(e)),
            "if OCI failed, run the check again",
        ),
    }
}

/// The write probe: UpdatePublicIp with [`NEVER_MATCHING_ETAG`] and a body
/// that changes nothing ([`no_change`]).
///
/// Why this is sound: OCI authorizes a request before it looks at the
/// resource's etag (an unauthorized caller must not learn anything about
/// the resource, which is also why it answers 404 rather than 403), so 412
/// NoEtagMatch means "authorized, refused only for the etag", and 404
/// NotAuthorizedOrNotFound on an IP the listing just showed means "not
/// authorized". Nothing is changed either way: the If-Match cannot match,
/// and the body only repeats what the IP already has.
pub fn update_probe_line(target: &Target, ip_id: &str, answer: &OciResult<PublicIp>) -> CheckLine {
    let what = format!(
        "UpdatePublicIp on {ip_id} with an If-Match that cannot match and a body that changes nothing"
    );
    match answer {
        Err(e) if e.is_etag_mismatch() => CheckLine::ok(
            UPDATE_PUBLIC_IPS,
            format!(
                "{what} answered 412 NoEtagMatch: the update was authorized (and nothing changed)"
            ),
        ),
        Err(e) if e.is_not_found() => CheckLine::fail(
            UPDATE_PUBLIC_IPS,
            format!(
                "{what} answered {}: public IPs are readable but not updatable",
                answered(e)
            ),
            format!(
                "add `{}` (update, and also create and delete, which cannot be checked)",
                statement(
                    &target.principal,
                    "manage public-ips",
                    &target.compartment_id
                )
            ),
        ),
        Err(e) => CheckLine::not_checked(
            UPDATE_PUBLIC_IPS,
            format!(
                "{what} answered {}: neither proof nor refusal; run the check again",
                answered(e)
            ),
        ),
        // Only if OCI ignored the If-Match: the body repeated the current values.
        Ok(_) => CheckLine::ok(
            UPDATE_PUBLIC_IPS,
            format!(
                "{what} was applied (OCI ignored the If-Match; the IP kept its values): the update is authorized"
            ),
        ),
    }
}

/// What cannot be checked without changing anything, and what it needs.
pub fn other_writes_line(target: &Target) -> CheckLine {
    let c = &target.compartment_id;
    let p = &target.principal;
    CheckLine::not_checked_with(
        OTHER_WRITES,
        "CreatePublicIp, DeletePublicIp and assigning or unassigning a public IP (UpdatePublicIp with privateIpId) cannot be checked without creating, deleting or moving an address: OCI has no dry run",
        format!(
            "make sure the policy has `{}`, `{}` (assign and unassign), and for BYOIP pools `{}`",
            statement(p, "manage public-ips", c),
            statement(p, "use private-ips", c),
            statement(p, "use public-ip-pools", c)
        ),
    )
}

#[cfg(test)]
mod tests;
