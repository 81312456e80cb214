//! `k8s-oci-operator check`, the real binary as a process, against an
//! in-process OCI emulator and the test control plane: each wrong setting
//! gives its failing line with what to fix, and the exit code scripts rely
//! on (0 all good, 1 a check failed, 2 unusable configuration).
//!
//! The stale-CRD case is covered by the unit tests of the comparison
//! (`check::kubernetes`): replacing the shared cluster's CRD would disturb
//! the tests running beside this one. Here the installed CRD must be found
//! current.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use integration_tests::probes::free_port;
use integration_tests::{
    COMPARTMENT, SPECIFIC_ID, client, kubeconfig_with_token, kubectl_apply, operator_binary,
    service_account_token,
};
use k8s_oci_operator::check::{kubernetes as k8s_check, oci as oci_check};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::PostParams;
use oci_emulator::{Emulator, EmulatorConfig, EmulatorHandle, KeySpec, Seed, Timing};
use serde_json::{Value, json};
use test_support::TestNamespace;

const SUBNETS: &str = "ocid1.subnet.oc1.sandbox.pods,ocid1.subnet.oc1.sandbox.nodes";
const PODS_SUBNET: &str = "ocid1.subnet.oc1.sandbox.pods";
const SANDBOX_KEY_ID: &str = "ocid1.tenancy.oc1..sandbox/ocid1.user.oc1..sandbox";
/// Settings of the caller's environment that would change what is checked.
const CLEARED: &[&str] = &[
    "OCI_COMPARTMENT_ID",
    "CLUSTER_ID",
    "OCI_AUTH",
    "OCI_CONFIG_FILE",
    "OCI_PROFILE",
    "OCI_TENANCY_ID",
    "OCI_USER_ID",
    "OCI_FINGERPRINT",
    "OCI_PRIVATE_KEY_FILE",
    "OCI_PRIVATE_KEY_PASSPHRASE",
    "OCI_PRIVATE_KEY_PASSPHRASE_FILE",
    "OCI_REGION",
    "OCI_REGION_METADATA",
    "OCI_ENDPOINT",
    "OCI_SUBNET_IDS",
    "WATCH_NAMESPACE",
    "POLICY_NAMESPACE",
    "LEADER_ELECTION_NAMESPACE",
    "CHECK_SKIP_WRITE_PROBE",
];

async fn emulator() -> Result<EmulatorHandle> {
    Ok(Emulator::start(EmulatorConfig::with_seed(Seed::sandbox()?).timing(Timing::fast())).await?)
}

fn sandbox_config() -> PathBuf {
    oci_emulator::crate_dir()
        .join("testdata")
        .join("oci-config")
}

/// A scratch directory for one test's files.
fn scratch(test: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "check-{test}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// What one run printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The JSON checklist.
    fn lines(&self) -> Result<Vec<Value>> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("stdout is not the JSON checklist: {}", self.stdout))
    }

    /// The line named `name`.
    fn line(&self, name: &str) -> Result<Value> {
        self.lines()?
            .into_iter()
            .find(|l| l["name"] == name)
            .with_context(|| format!("no line {name} in {}", self.stdout))
    }
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_default().to_string()
}

/// `k8s-oci-operator check` with the sandbox's OCI settings, `env` on top
/// (an empty value removes a setting) and `args` after `check`.
async fn check(emulator: &EmulatorHandle, env: &[(&str, &str)], args: &[&str]) -> Result<Run> {
    let mut cmd = tokio::process::Command::new(operator_binary().await?);
    cmd.arg("check").args(args);
    for name in CLEARED {
        cmd.env_remove(name);
    }
    cmd.env("OCI_COMPARTMENT_ID", COMPARTMENT)
        .env("CLUSTER_ID", "check-test")
        .env("OCI_CONFIG_FILE", sandbox_config())
        .env("OCI_ENDPOINT", emulator.base_url())
        .env("OCI_SUBNET_IDS", SUBNETS)
        .env("OCI_TIMEOUT_SECONDS", "5")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    for (name, value) in env {
        if value.is_empty() {
            cmd.env_remove(name);
        } else {
            cmd.env(name, value);
        }
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .context("check did not finish within 120 s")??;
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // The key material never appears, whatever happened.
    let key = std::fs::read_to_string(oci_emulator::crate_dir().join("testdata/oci_api_key.pem"))?;
    let body_line = key.lines().nth(1).unwrap_or("never-empty");
    for output in [&run.stdout, &run.stderr] {
        assert!(!output.contains("PRIVATE KEY"), "{output}");
        assert!(
            !output.contains(body_line),
            "key material printed: {output}"
        );
    }
    Ok(run)
}

fn statuses(run: &Run) -> Result<Vec<(String, String)>> {
    Ok(run
        .lines()?
        .iter()
        .map(|l| (text(l, "name"), text(l, "status")))
        .collect())
}

#[tokio::test]
async fn check_all_good_with_the_deploy_service_account() -> Result<()> {
    let emulator = emulator().await?;
    // deploy/ as shipped: its ServiceAccount, ClusterRole, Role.
    kubectl_apply("config/crd/bases")?;
    kubectl_apply("deploy")?;
    let dir = scratch("all-good")?;
    let kubeconfig = kubeconfig_with_token(
        &dir,
        &service_account_token("k8s-oci-operator", "k8s-oci-operator").await?,
    )?;
    let kubeconfig = kubeconfig.display().to_string();
    let env = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("LEADER_ELECTION_NAMESPACE", "k8s-oci-operator"),
        ("POLICY_NAMESPACE", "k8s-oci-operator"),
    ];
    let before = emulator.state()["publicIps"].clone();
    let run = check(&emulator, &env, &["--output", "json"]).await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let not_checked: BTreeSet<String> = statuses(&run)?
        .into_iter()
        .filter(|(_, s)| s != "ok")
        .map(|(name, status)| {
            assert_eq!(status, "not_checked", "{name}: {}", run.stdout);
            name
        })
        .collect();
    // Only what no read can prove.
    assert_eq!(
        not_checked,
        BTreeSet::from([oci_check::OTHER_WRITES.to_string()]),
        "{}",
        run.stdout
    );
    let names: Vec<String> = statuses(&run)?.into_iter().map(|(n, _)| n).collect();
    for name in [
        oci_check::CREDENTIALS,
        oci_check::ENDPOINT,
        oci_check::AUTHENTICATION,
        oci_check::COMPARTMENT,
        oci_check::VNIC_ATTACHMENTS,
        oci_check::VNIC,
        oci_check::UPDATE_PUBLIC_IPS,
        k8s_check::API_SERVER,
        k8s_check::CRD,
        "kubernetes rbac reservedips.oci.k8s.logmein.com",
        "kubernetes rbac pods",
        "kubernetes rbac leases.coordination.k8s.io (k8s-oci-operator)",
        "kubernetes rbac configmaps (k8s-oci-operator)",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "no line {name}: {}",
            run.stdout
        );
    }
    assert!(
        text(&run.line(k8s_check::CRD)?, "detail").contains("the same as this build's"),
        "{}",
        run.stdout
    );
    assert!(
        text(&run.line("kubernetes rbac pods")?, "detail")
            .starts_with("system:serviceaccount:k8s-oci-operator:k8s-oci-operator may"),
        "{}",
        run.stdout
    );
    // The write probe was refused for its etag only, and nothing changed.
    assert!(
        text(&run.line(oci_check::UPDATE_PUBLIC_IPS)?, "detail").contains("412"),
        "{}",
        run.stdout
    );
    let calls = emulator.calls();
    assert_eq!(calls.count("UpdatePublicIp", "412"), 1);
    assert_eq!(calls.count("CreatePublicIp", "200"), 0);
    assert_eq!(calls.count("DeletePublicIp", "204"), 0);
    assert_eq!(
        emulator.state()["publicIps"],
        before,
        "the check changed OCI"
    );

    // The same for people: a mark per line, a summary, exit 0.
    let run = check(&emulator, &env, &[]).await?;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("ok ") && l.contains("oci compartment: ListPublicIps")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .lines()
            .last()
            .is_some_and(|l| l.ends_with("ok, 0 failed, 1 not checked")),
        "{}",
        run.stdout
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn check_wrong_key_fails_authentication_naming_the_key_id() -> Result<()> {
    let emulator = emulator().await?;
    let dir = scratch("wrong-key")?;
    // The sandbox's key under a fingerprint OCI does not know: 401.
    let config = dir.join("config");
    let key = oci_emulator::crate_dir().join("testdata/oci_api_key.pem");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nuser=ocid1.user.oc1..sandbox\nfingerprint=00:11:22:33\ntenancy=ocid1.tenancy.oc1..sandbox\nkey_file={}\n",
            key.display()
        ),
    )?;
    let config = config.display().to_string();
    let run = check(
        &emulator,
        &[("OCI_CONFIG_FILE", &config)],
        &["--output", "json"],
    )
    .await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(text(&run.line(oci_check::CREDENTIALS)?, "status"), "ok");
    assert_eq!(text(&run.line(oci_check::ENDPOINT)?, "status"), "ok");
    let auth = run.line(oci_check::AUTHENTICATION)?;
    assert_eq!(text(&auth, "status"), "fail", "{}", run.stdout);
    assert!(
        text(&auth, "detail").contains(&format!("{SANDBOX_KEY_ID}/00:11:22:33")),
        "names the keyId: {auth}"
    );
    assert!(text(&auth, "fix").contains("fingerprint"), "{auth}");
    // One cause, one failure: the OCI checks after it are not checked.
    let compartment = run.line(oci_check::COMPARTMENT)?;
    assert_eq!(text(&compartment, "status"), "not_checked");
    assert_eq!(text(&compartment, "detail"), "oci authentication failed");
    assert_eq!(
        emulator.calls().count("ListPublicIps", "401"),
        1,
        "no call after the refused one"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn check_wrong_compartment_says_what_to_fix() -> Result<()> {
    let emulator = emulator().await?;
    let wrong = "ocid1.compartment.oc1..not-this-one";
    let run = check(
        &emulator,
        &[("OCI_COMPARTMENT_ID", wrong)],
        &["--output", "json"],
    )
    .await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let compartment = run.line(oci_check::COMPARTMENT)?;
    assert_eq!(text(&compartment, "status"), "fail", "{}", run.stdout);
    assert!(text(&compartment, "detail").contains("404 NotAuthorizedOrNotFound"));
    assert!(text(&compartment, "detail").contains("opc-request-id"));
    let fix = text(&compartment, "fix");
    assert!(fix.contains("OCI_COMPARTMENT_ID is wrong"), "{fix}");
    assert!(
        fix.contains(&format!("to manage public-ips in compartment id {wrong}")),
        "{fix}"
    );
    // Authentication held; the compartment's dependents are not checked.
    assert_eq!(text(&run.line(oci_check::AUTHENTICATION)?, "status"), "ok");
    assert_eq!(
        text(&run.line(oci_check::UPDATE_PUBLIC_IPS)?, "detail"),
        "oci compartment failed"
    );
    Ok(())
}

#[tokio::test]
async fn check_missing_permission_names_the_iam_statement() -> Result<()> {
    let emulator = emulator().await?;
    let dir = scratch("missing-permission")?;
    // A key of its own whose IAM policy, in effect, lacks private IPs and updates.
    let key = std::fs::read_to_string(oci_emulator::crate_dir().join("testdata/oci_api_key.pem"))?;
    let public =
        std::fs::read_to_string(oci_emulator::crate_dir().join("testdata/oci_api_key_public.pem"))?;
    let user = "ocid1.user.oc1..no-private-ips";
    let key_id = emulator.register_key(&KeySpec {
        tenancy_id: Some("ocid1.tenancy.oc1..sandbox".into()),
        user_id: Some(user.into()),
        public_key_pem: Some(public),
        deny: vec!["ListPrivateIps".into(), "UpdatePublicIp".into()],
        ..KeySpec::default()
    })?;
    let fingerprint = key_id.rsplit('/').next().context("fingerprint")?;
    std::fs::write(dir.join("key.pem"), key)?;
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nuser={user}\nfingerprint={fingerprint}\ntenancy=ocid1.tenancy.oc1..sandbox\nkey_file=key.pem\n"
        ),
    )?;
    let config = config.display().to_string();
    let run = check(
        &emulator,
        &[("OCI_CONFIG_FILE", &config)],
        &["--output", "json"],
    )
    .await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        text(&run.line(&oci_check::subnet_name(PODS_SUBNET))?, "status"),
        "ok",
        "GetSubnet is allowed"
    );
    let private_ips = run.line(&oci_check::private_ips_name(PODS_SUBNET))?;
    assert_eq!(text(&private_ips, "status"), "fail", "{}", run.stdout);
    assert!(
        text(&private_ips, "fix").contains(&format!(
            "Allow group <a group with user {user}> to use private-ips in compartment id"
        )),
        "{private_ips}"
    );
    let update = run.line(oci_check::UPDATE_PUBLIC_IPS)?;
    assert_eq!(text(&update, "status"), "fail", "{}", run.stdout);
    assert!(
        text(&update, "fix").contains("to manage public-ips in compartment id"),
        "{update}"
    );
    // The rest holds.
    for name in [
        oci_check::COMPARTMENT,
        oci_check::VNIC_ATTACHMENTS,
        oci_check::VNIC,
    ] {
        assert_eq!(
            text(&run.line(name)?, "status"),
            "ok",
            "{name}: {}",
            run.stdout
        );
    }
    assert_eq!(
        emulator.state()["publicIps"]
            .as_array()
            .and_then(|ips| ips.iter().find(|ip| ip["id"] == SPECIFIC_ID))
            .map(|ip| ip["lifecycleState"].clone()),
        Some(json!("AVAILABLE"))
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `OCI_AUTH=api-key`, the fields the chart takes from a Secret: a wrong
/// fingerprint is named with the Secret key to correct, before any call;
/// the right fields authenticate as the config file does.
#[tokio::test]
async fn check_api_key_fields_name_the_setting_and_the_secret_key() -> Result<()> {
    let emulator = emulator().await?;
    let key_file = oci_emulator::crate_dir().join("testdata/oci_api_key.pem");
    let key_file = key_file.display().to_string();
    let fields = |fingerprint: &'static str| {
        [
            ("OCI_AUTH", "api-key"),
            ("OCI_CONFIG_FILE", ""),
            ("OCI_TENANCY_ID", "ocid1.tenancy.oc1..sandbox"),
            ("OCI_USER_ID", "ocid1.user.oc1..sandbox"),
            ("OCI_FINGERPRINT", fingerprint),
        ]
    };
    let with_key = |fingerprint| {
        let mut env = fields(fingerprint).to_vec();
        env.push(("OCI_PRIVATE_KEY_FILE", key_file.as_str()));
        env
    };

    let run = check(
        &emulator,
        &with_key("00:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6"),
        &["--output", "json"],
    )
    .await?;
    let line = run.line(oci_check::CREDENTIALS)?;
    assert_eq!(text(&line, "status"), "fail", "{}", run.stdout);
    assert!(
        text(&line, "detail").starts_with("OCI_FINGERPRINT 00:34"),
        "{line}"
    );
    assert!(text(&line, "fix").contains("key `fingerprint`"), "{line}");
    assert_eq!(
        emulator.calls().total("ListPublicIps"),
        0,
        "nothing was sent"
    );

    let run = check(
        &emulator,
        &with_key("2a:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6"),
        &["--output", "json"],
    )
    .await?;
    let line = run.line(oci_check::CREDENTIALS)?;
    assert_eq!(text(&line, "status"), "ok", "{}", run.stdout);
    assert!(text(&line, "detail").contains(SANDBOX_KEY_ID), "{line}");
    assert_eq!(
        text(&run.line(oci_check::AUTHENTICATION)?, "status"),
        "ok",
        "{}",
        run.stdout
    );
    Ok(())
}

#[tokio::test]
async fn check_unreachable_endpoint_names_it() -> Result<()> {
    let emulator = emulator().await?;
    let port = free_port()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let run = check(
        &emulator,
        &[("OCI_ENDPOINT", &endpoint)],
        &["--output", "json"],
    )
    .await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let line = run.line(oci_check::ENDPOINT)?;
    assert_eq!(text(&line, "status"), "fail", "{}", run.stdout);
    assert!(text(&line, "detail").contains(&endpoint), "{line}");
    assert!(text(&line, "fix").contains("OCI_ENDPOINT"), "{line}");
    assert!(text(&line, "fix").contains("OCI_REGION"), "{line}");
    assert_eq!(
        text(&run.line(oci_check::AUTHENTICATION)?, "status"),
        "not_checked"
    );
    // Only the endpoint failed on the OCI side.
    let failed: Vec<String> = statuses(&run)?
        .into_iter()
        .filter(|(n, s)| s == "fail" && n.starts_with("oci "))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(failed, [oci_check::ENDPOINT], "{}", run.stdout);
    Ok(())
}

#[tokio::test]
async fn check_missing_rbac_fails_with_the_kubectl_fix() -> Result<()> {
    let emulator = emulator().await?;
    let admin = client().await?;
    let ns = TestNamespace::create(&admin, "check-rbac").await?;
    let name = "narrow-operator";
    // A ServiceAccount that may only read ReservedIPs of its namespace.
    ns.api::<ServiceAccount>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": name } }))?,
        )
        .await?;
    ns.api::<Role>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": name },
                "rules": [{
                    "apiGroups": ["oci.k8s.logmein.com"],
                    "resources": ["reservedips"],
                    "verbs": ["get", "list", "watch"]
                }]
            }))?,
        )
        .await?;
    ns.api::<RoleBinding>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": name },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
                "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": ns.name() }]
            }))?,
        )
        .await?;
    let dir = scratch("missing-rbac")?;
    let kubeconfig = kubeconfig_with_token(&dir, &service_account_token(ns.name(), name).await?)?;
    let kubeconfig = kubeconfig.display().to_string();
    let env = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("WATCH_NAMESPACE", ns.name()),
    ];
    let run = check(&emulator, &env, &["--output", "json"]).await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // The OCI side is fine: only RBAC fails.
    assert!(
        statuses(&run)?
            .iter()
            .all(|(n, s)| s != "fail" || n.starts_with("kubernetes rbac")),
        "{}",
        run.stdout
    );
    let reservedips = run.line(&format!(
        "kubernetes rbac reservedips.oci.k8s.logmein.com ({})",
        ns.name()
    ))?;
    assert_eq!(text(&reservedips, "status"), "fail", "{}", run.stdout);
    assert!(
        text(&reservedips, "detail").contains(&format!(
            "system:serviceaccount:{}:{name} may not patch, update reservedips.oci.k8s.logmein.com in namespace {}",
            ns.name(),
            ns.name()
        )),
        "{reservedips}"
    );
    assert!(
        text(&reservedips, "fix").contains("helm upgrade")
            && text(&reservedips, "fix").contains("kubectl apply -f deploy/10-rbac.yaml"),
        "{reservedips}"
    );
    let pods = run.line("kubernetes rbac pods")?;
    assert_eq!(text(&pods, "status"), "fail");
    assert!(text(&pods, "detail").contains("may not get, list, watch pods cluster-wide"));
    // The API server answered; the CRD could not be read with these rights.
    assert_eq!(text(&run.line(k8s_check::API_SERVER)?, "status"), "ok");
    assert_eq!(text(&run.line(k8s_check::CRD)?, "status"), "not_checked");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn check_unusable_configuration_exits_2() -> Result<()> {
    let emulator = emulator().await?;
    let run = check(&emulator, &[("OCI_COMPARTMENT_ID", "")], &[]).await?;
    assert_eq!(
        run.code, 2,
        "missing setting: {}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.contains("compartment"), "{}", run.stderr);
    let run = check(&emulator, &[("CLUSTER_ID", " ")], &[]).await?;
    assert_eq!(run.code, 2, "blank setting: {}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("CLUSTER_ID"), "{}", run.stderr);
    Ok(())
}
