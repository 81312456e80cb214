//! The Helm chart (`deploy/chart/k8s-oci-operator`) with real Helm, the one
//! `tests/cluster/build.sh` builds: `helm lint`, `helm template` for each auth
//! mode, wrong values refused by the schema naming the field, missing required
//! values refused with a message, `deploy/` as a fresh render of the chart and
//! the chart's CRD as `config/crd/bases`; then `helm install`, `helm upgrade`
//! and `helm uninstall` on the test control plane, with the operator running
//! as a process exactly as the chart configures its pod (its ServiceAccount's
//! token, its ConfigMap, its environment) against the OCI emulator.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use integration_tests::probes::{free_port, sample, scrape};
use integration_tests::{
    COMPARTMENT, OperatorSandbox, built_policies, is_live, kubeconfig_with_token, operator_binary,
    repo_root, rip_yaml, service_account_token,
};
use k8s_oci_operator::api::crd::State;
use k8s_oci_operator::decide::ownership::TAG_CLUSTER;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::{Value, json};
use test_support::{TestNamespace, wait_until};

const CHART: &str = "deploy/chart/k8s-oci-operator";
const CRD_FILE: &str = "oci.k8s.logmein.com_reservedips.yaml";
const SUBNETS: [&str; 2] = [
    "ocid1.subnet.oc1.sandbox.pods",
    "ocid1.subnet.oc1.sandbox.nodes",
];
/// The values without which the chart renders nothing.
const REQUIRED: [&str; 4] = [
    "--set",
    "compartmentId=ocid1.compartment.oc1..test",
    "--set",
    "clusterId=helm-test",
];

/// helm, found as the tests find kubectl: on PATH, where the cluster's env
/// puts the directory tests/cluster/build.sh builds both into.
fn helm_binary() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("helm"))
        .find(|p| p.is_file())
        .context(
            "helm is not on PATH: run tests/cluster/build.sh (it builds helm from its Go module \
             next to the control plane's binaries), then source .sandbox/test/env",
        )
}

/// What one helm run printed and whether it succeeded.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// `helm <args>` from the repository's root.
fn helm(args: &[&str]) -> Result<Run> {
    let out = std::process::Command::new(helm_binary()?)
        .args(args)
        .current_dir(repo_root())
        .stdin(std::process::Stdio::null())
        .output()
        .context("running helm")?;
    Ok(Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `helm <args>` that must succeed.
fn helm_ok(args: &[&str]) -> Result<String> {
    let run = helm(args)?;
    ensure!(
        run.ok,
        "helm {} failed:\n{}\n{}",
        args.join(" "),
        run.stderr,
        run.stdout
    );
    Ok(run.stdout)
}

/// The objects `helm template <release>` renders in `namespace` with `args`.
fn render(release: &str, namespace: &str, args: &[&str]) -> Result<Vec<Value>> {
    let mut all = vec!["template", release, CHART, "--namespace", namespace];
    all.extend(args);
    documents(&helm_ok(&all)?)
}

fn documents(yaml: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// The one object of `kind` named `name`.
fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} rendered"))
}

/// The settings the chart's ConfigMap gives the operator.
fn settings(objects: &[Value], fullname: &str) -> Result<BTreeMap<String, String>> {
    Ok(serde_json::from_value(
        object(objects, "ConfigMap", fullname)?["data"].clone(),
    )?)
}

/// The auth modes the schema offers.
fn schema_auth_modes() -> Result<Vec<String>> {
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(
        repo_root().join(CHART).join("values.schema.json"),
    )?)?;
    Ok(serde_json::from_value(
        schema["properties"]["auth"]["properties"]["mode"]["enum"].clone(),
    )?)
}

/// The values of `--auth` the operator binary accepts, from its own refusal
/// of one it does not.
async fn operator_auth_modes() -> Result<BTreeSet<String>> {
    let out = tokio::process::Command::new(operator_binary().await?)
        .args(["run", "--auth", "not-a-mode"])
        .env_clear()
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let list = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("[possible values: "))
        .and_then(|l| l.strip_suffix(']'))
        .with_context(|| format!("no possible values in: {stderr}"))?;
    Ok(list.split(", ").map(str::to_string).collect())
}

#[test]
fn lint_passes() -> Result<()> {
    let out = helm_ok(&[&["lint", "--strict", CHART][..], &REQUIRED].concat())?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    // With the values deploy/ is rendered from, too.
    let out = helm_ok(&[
        "lint",
        "--strict",
        CHART,
        "--values",
        "deploy/chart/manifests-values.yaml",
    ])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    Ok(())
}

#[tokio::test]
async fn each_auth_mode_renders_settings_the_operator_accepts() -> Result<()> {
    let mut flags = BTreeSet::new();
    for mode in schema_auth_modes()? {
        let objects = render(
            "r",
            "ops",
            &[
                &REQUIRED[..],
                &["--set", &format!("auth.mode={mode}")],
                &["--set", "auth.apiKey.secretName=team-oci-key"],
                &["--set", "auth.apiKeyFields.secretName=team-oci-key-fields"],
            ]
            .concat(),
        )?;
        let data = settings(&objects, "r-k8s-oci-operator")?;
        let pod =
            &object(&objects, "Deployment", "r-k8s-oci-operator")?["spec"]["template"]["spec"];
        let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
        let secret_volume = volumes.iter().find(|v| v["secret"].is_object());
        match mode.as_str() {
            "apiKey" => {
                assert_eq!(data["OCI_CONFIG_FILE"], "/etc/oci/config");
                let volume = secret_volume.context("no Secret volume for the API key")?;
                assert_eq!(volume["secret"]["secretName"], "team-oci-key");
                let mount = pod["containers"][0]["volumeMounts"]
                    .as_array()
                    .and_then(|m| m.iter().find(|m| m["name"] == volume["name"]))
                    .context("the API key Secret is not mounted")?;
                assert_eq!(mount["mountPath"], "/etc/oci");
            }
            "apiKeyFields" => {
                // The key and its passphrase are files of the Secret, 0400,
                // and the settings name those files.
                let volume = volumes
                    .iter()
                    .find(|v| v["projected"].is_object())
                    .context("no projected volume for the API key's files")?;
                assert_eq!(volume["projected"]["defaultMode"], 0o400);
                let sources = volume["projected"]["sources"]
                    .as_array()
                    .context("no sources")?;
                let items: Vec<(&Value, &Value, bool)> = sources
                    .iter()
                    .flat_map(|s| {
                        let optional = s["secret"]["optional"] == true;
                        s["secret"]["items"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(move |i| (&s["secret"]["name"], &i["key"], optional))
                    })
                    .collect();
                assert_eq!(
                    items,
                    [
                        (&json!("team-oci-key-fields"), &json!("key"), false),
                        (&json!("team-oci-key-fields"), &json!("passphrase"), true),
                    ],
                    "only the key and the (optional) passphrase are files"
                );
                let mount = pod["containers"][0]["volumeMounts"]
                    .as_array()
                    .and_then(|m| m.iter().find(|m| m["name"] == volume["name"]))
                    .context("the API key's files are not mounted")?;
                assert_eq!(mount["mountPath"], "/etc/oci-api-key");
                assert_eq!(data["OCI_PRIVATE_KEY_FILE"], "/etc/oci-api-key/key");
                assert_eq!(
                    data["OCI_PRIVATE_KEY_PASSPHRASE_FILE"],
                    "/etc/oci-api-key/passphrase"
                );
                // The other fields are settings from the same Secret; no
                // key material in the environment.
                let env = pod["containers"][0]["env"].as_array().context("no env")?;
                for (name, key) in [
                    ("OCI_TENANCY_ID", "tenancy"),
                    ("OCI_USER_ID", "user"),
                    ("OCI_FINGERPRINT", "fingerprint"),
                    ("OCI_REGION", "region"),
                ] {
                    let var = env
                        .iter()
                        .find(|e| e["name"] == name)
                        .with_context(|| format!("{name} is not set"))?;
                    assert_eq!(
                        var["valueFrom"]["secretKeyRef"]["name"],
                        "team-oci-key-fields"
                    );
                    assert_eq!(var["valueFrom"]["secretKeyRef"]["key"], key);
                }
                assert!(
                    env.iter().all(|e| !matches!(
                        e["valueFrom"]["secretKeyRef"]["key"].as_str(),
                        Some("key" | "passphrase")
                    )),
                    "key material in the environment: {env:?}"
                );
                // The files are the operator's alone: 0400 for its fsGroup.
                assert_eq!(pod["securityContext"]["fsGroup"], 65532);
                assert!(
                    secret_volume.is_none(),
                    "no config-file Secret: {volumes:?}"
                );
            }
            _ => {
                assert!(!data.contains_key("OCI_CONFIG_FILE"), "{mode}: {data:?}");
                assert!(
                    secret_volume.is_none(),
                    "{mode} mounts a Secret: {volumes:?}"
                );
            }
        }
        if mode != "apiKeyFields" {
            assert!(
                !data.contains_key("OCI_PRIVATE_KEY_FILE"),
                "{mode}: {data:?}"
            );
            assert!(
                volumes.iter().all(|v| v["projected"].is_null()),
                "{mode} mounts the API key's fields: {volumes:?}"
            );
        }
        flags.insert(data["OCI_AUTH"].clone());
    }
    // Every mode the operator has is offered, and nothing else: a mode added
    // to the operator fails here until the chart offers it.
    assert_eq!(flags, operator_auth_modes().await?);
    Ok(())
}

#[test]
fn wrong_values_are_refused_by_the_schema_naming_the_field() -> Result<()> {
    for (set, field) in [
        ("replicas=two", "/replicas"),
        ("auth.mode=password", "/auth/mode"),
        // A mode whose Secret is not named.
        ("auth.mode=apiKeyFields", "/auth/apiKeyFields/secretName"),
        (
            "oci.rateLimits.writesPerSecond=0",
            "/oci/rateLimits/writesPerSecond",
        ),
        ("oci.subnetIds={ocid1.vcn.oc1..x}", "/oci/subnetIds/0"),
        (
            "maxReservedIPsPerNamespace=-1",
            "/maxReservedIPsPerNamespace",
        ),
        ("image.digest=latest", "/image/digest"),
        (
            "policies.configMaps.p.module=bm90IHdhc20=",
            "/policies/configMaps/p/module",
        ),
        ("replicaCount=2", "replicaCount"),
        ("policies.limits.timeout=100", "timeout"),
        (
            "policies.limits.memoryMiB=4096",
            "/policies/limits/memoryMiB",
        ),
    ] {
        let run = helm(&[&["template", "r", CHART, "--set", set][..], &REQUIRED].concat())?;
        assert!(!run.ok, "--set {set} was accepted");
        assert!(
            run.stderr
                .contains("values don't meet the specifications of the schema"),
            "--set {set}: not refused by the schema: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(field),
            "--set {set}: the error does not name {field}: {}",
            run.stderr
        );
    }
    Ok(())
}

#[test]
fn missing_required_values_are_refused_with_a_message() -> Result<()> {
    for (set, message) in [
        (
            "clusterId=c",
            "compartmentId is required: the OCID of the compartment the operator creates public IPs in",
        ),
        (
            "compartmentId=ocid1.compartment.oc1..x",
            "clusterId is required: a name for this cluster, unique among the clusters that share the compartment",
        ),
    ] {
        let run = helm(&["template", "r", CHART, "--set", set])?;
        assert!(!run.ok, "rendered with only {set}");
        assert!(run.stderr.contains(message), "{}", run.stderr);
    }
    Ok(())
}

#[test]
fn deploy_is_a_fresh_render_of_the_chart() -> Result<()> {
    let root = repo_root();
    let dir = std::env::temp_dir().join(format!(
        "helm-render-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let out = std::process::Command::new(root.join("deploy/chart/render-manifests.sh"))
        .arg(&dir)
        .env("HELM", helm_binary()?)
        .output()
        .context("running deploy/chart/render-manifests.sh")?;
    ensure!(
        out.status.success(),
        "render-manifests.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = yaml_files(&dir)?;
    let shipped = yaml_files(&root.join("deploy"))?;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        shipped.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>(),
        "deploy/ has other files than a fresh render: run `make manifests`"
    );
    for (name, text) in &fresh {
        assert!(
            shipped[name] == *text,
            "deploy/{name} differs from a fresh render of the chart: run `make manifests`"
        );
        assert!(
            text.starts_with("# Generated by `make manifests`"),
            "deploy/{name} does not say it is generated"
        );
    }
    // The CRD stays in config/crd/bases only.
    assert!(
        !fresh
            .values()
            .any(|t| t.contains("kind: CustomResourceDefinition")),
        "deploy/ holds the CRD"
    );
    Ok(())
}

fn yaml_files(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "yaml") {
            let name = path
                .file_name()
                .context("file name")?
                .to_string_lossy()
                .into_owned();
            files.insert(name, std::fs::read_to_string(&path)?);
        }
    }
    Ok(files)
}

#[test]
fn the_chart_crd_is_the_one_of_config_crd_bases() -> Result<()> {
    let root = repo_root();
    let chart = std::fs::read(root.join(CHART).join("crds").join(CRD_FILE))?;
    let bases = std::fs::read(root.join("config/crd/bases").join(CRD_FILE))?;
    assert!(
        chart == bases,
        "{CHART}/crds/{CRD_FILE} differs from config/crd/bases: run `make crd`"
    );
    // Only the CRD: Helm installs crds/ once and never updates or deletes it.
    let names: Vec<_> = std::fs::read_dir(root.join(CHART).join("crds"))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    assert_eq!(names, [CRD_FILE]);
    Ok(())
}

#[test]
fn releases_never_share_a_cluster_scoped_object() -> Result<()> {
    let cluster_scoped = |objects: &[Value]| -> BTreeSet<(String, String)> {
        objects
            .iter()
            .filter(|o| o["metadata"]["namespace"].is_null())
            .map(|o| {
                (
                    o["kind"].as_str().unwrap_or_default().to_string(),
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    let a = render("team-a", "ops-a", &REQUIRED)?;
    let b = render("team-b", "ops-b", &REQUIRED)?;
    let (a_names, b_names) = (cluster_scoped(&a), cluster_scoped(&b));
    assert!(
        a_names.len() >= 4,
        "expected the ClusterRoles and the binding: {a_names:?}"
    );
    assert!(
        a_names.is_disjoint(&b_names),
        "two releases share {:?}",
        a_names.intersection(&b_names).collect::<Vec<_>>()
    );
    // Everything else lands in the release namespace, and the binding names
    // the release's own ServiceAccount there.
    for o in &a {
        let kind = o["kind"].as_str().unwrap_or_default();
        if !["ClusterRole", "ClusterRoleBinding"].contains(&kind) {
            assert_eq!(o["metadata"]["namespace"], "ops-a", "{o}");
        }
    }
    let binding = object(&a, "ClusterRoleBinding", "team-a-k8s-oci-operator")?;
    assert_eq!(
        binding["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "team-a-k8s-oci-operator", "namespace": "ops-a"})
    );
    // A release named after the chart keeps the names the docs and `check` use.
    let plain = cluster_scoped(&render("k8s-oci-operator", "k8s-oci-operator", &REQUIRED)?);
    for name in [
        "k8s-oci-operator",
        "k8s-oci-operator-reservedips-view",
        "k8s-oci-operator-reservedips-edit",
    ] {
        assert!(
            plain.contains(&("ClusterRole".to_string(), name.to_string())),
            "{plain:?}"
        );
    }
    Ok(())
}

/// Policy trust, limits and the compile cache: what the chart renders is what
/// the operator reads (the keys file parses, the cache is a private emptyDir
/// mount), and a policy's rollout keys reach its ConfigMap.
#[test]
fn policy_trust_limits_and_cache_render_as_the_operator_reads_them() -> Result<()> {
    let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n-----END PUBLIC KEY-----\n";
    let digest = "ab".repeat(32);
    let objects = render(
        "r",
        "ops",
        &[
            &REQUIRED[..],
            &["--set", &format!("policies.trustedKeys={pem}")],
            &["--set", "policies.requireSignature=true"],
            &["--set", "policies.limits.timeoutMs=100"],
            &["--set", "policies.limits.memoryMiB=32"],
            &["--set", "policies.configMaps.p.module=AGFzbQEAAAA="],
            &["--set", "policies.configMaps.p.mode=audit"],
            &["--set", &format!("policies.configMaps.p.sha256={digest}")],
            &["--set", "policies.configMaps.p.signature=c2lnbmF0dXJl"],
        ]
        .concat(),
    )?;
    let keys = object(&objects, "ConfigMap", "r-k8s-oci-operator-policy-keys")?;
    let keys_pem = keys["data"]["keys.pem"].as_str().context("keys.pem")?;
    let trust = k8s_oci_operator::policy::Trust::from_pem(keys_pem, true)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(trust.has_keys());

    let pod = &object(&objects, "Deployment", "r-k8s-oci-operator")?["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let env = container["env"].as_array().cloned().unwrap_or_default();
    for (name, value) in [
        (
            "POLICY_TRUSTED_KEYS",
            "/etc/k8s-oci-operator/policy-keys/keys.pem",
        ),
        ("POLICY_REQUIRE_SIGNATURE", "true"),
        ("POLICY_TIMEOUT_MS", "100"),
        ("POLICY_MEMORY_MIB", "32"),
        ("POLICY_CACHE_DIR", "/var/cache/k8s-oci-operator/policies"),
    ] {
        assert!(
            env.contains(&json!({"name": name, "value": value})),
            "{name}={value} not in {env:?}"
        );
    }
    let mounts = container["volumeMounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        mounts
            .contains(&json!({"name": "policy-cache", "mountPath": "/var/cache/k8s-oci-operator"})),
        "{mounts:?}"
    );
    let volumes = pod["volumes"].as_array().cloned().unwrap_or_default();
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == "policy-cache" && v["emptyDir"].is_object()),
        "{volumes:?}"
    );

    let policy = object(&objects, "ConfigMap", "p")?;
    assert_eq!(policy["data"]["mode"], "audit");
    assert_eq!(policy["data"]["sha256"], digest.as_str());
    assert_eq!(policy["binaryData"]["policy.wasm.sig"], "c2lnbmF0dXJl");

    Ok(())
}

/// The ClusterRole's rules as (group, resource, verb) triples.
fn cluster_role_grants(
    objects: &[Value],
    name: &str,
) -> Result<BTreeSet<(String, String, String)>> {
    let mut grants = BTreeSet::new();
    for rule in object(objects, "ClusterRole", name)?["rules"]
        .as_array()
        .context("rules")?
    {
        let strings = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        for group in strings("apiGroups") {
            for resource in strings("resources") {
                for verb in strings("verbs") {
                    grants.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    Ok(grants)
}

#[test]
fn workload_ips_can_be_switched_off_with_their_permissions() -> Result<()> {
    let grant = |g: &str, r: &str, v: &str| (g.to_string(), r.to_string(), v.to_string());
    let workload_grants = [
        grant("oci.k8s.logmein.com", "reservedips", "create"),
        grant("oci.k8s.logmein.com", "reservedips", "delete"),
        grant("", "pods", "patch"),
        grant("", "pods/status", "patch"),
        grant("apps", "statefulsets", "watch"),
    ];
    let on = render("r", "ops", &REQUIRED)?;
    assert_eq!(settings(&on, "r-k8s-oci-operator")?["WORKLOAD_IPS"], "true");
    let grants = cluster_role_grants(&on, "r-k8s-oci-operator")?;
    for g in &workload_grants {
        assert!(grants.contains(g), "{g:?} missing from {grants:?}");
    }
    let off = render(
        "r",
        "ops",
        &[&REQUIRED[..], &["--set", "workloadIPs.enabled=false"]].concat(),
    )?;
    assert_eq!(
        settings(&off, "r-k8s-oci-operator")?["WORKLOAD_IPS"],
        "false"
    );
    let grants = cluster_role_grants(&off, "r-k8s-oci-operator")?;
    for g in &workload_grants {
        assert!(!grants.contains(g), "{g:?} granted though switched off");
    }
    // Everything else stays.
    assert!(grants.contains(&grant("oci.k8s.logmein.com", "reservedips", "watch")));
    Ok(())
}

#[test]
fn optional_parts_render_when_asked() -> Result<()> {
    let objects = render(
        "r",
        "ops",
        &[
            &REQUIRED[..],
            &["--set", "replicas=1"],
            &["--set", "metrics.serviceMonitor.enabled=true"],
            &["--set", "policies.existingConfigMaps={team-pool}"],
            &["--set", "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
            &["--set", "oci.rateLimits.readsPerSecond=7"],
        ]
        .concat(),
    )?;
    // One replica: a PodDisruptionBudget would only block drains.
    assert!(!objects.iter().any(|o| o["kind"] == "PodDisruptionBudget"));
    let monitor = object(&objects, "ServiceMonitor", "r-k8s-oci-operator")?;
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    let pod = &object(&objects, "Deployment", "r-k8s-oci-operator")?["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert!(
        container["image"].as_str().is_some_and(|i| i
            .ends_with("@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")),
        "the digest does not win over the tag: {}",
        container["image"]
    );
    let env = container["env"].as_array().cloned().unwrap_or_default();
    assert!(
        env.contains(&json!({"name": "POLICY_DIR", "value": "/etc/k8s-oci-operator/policies"})),
        "{env:?}"
    );
    let volume = pod["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["configMap"]["name"] == "team-pool"))
        .context("the policy ConfigMap is not a volume")?;
    assert!(
        container["volumeMounts"]
            .as_array()
            .is_some_and(|m| m.contains(&json!({
                "name": volume["name"],
                "mountPath": "/etc/k8s-oci-operator/policies/team-pool",
                "readOnly": true,
            }))),
        "{}",
        container["volumeMounts"]
    );
    // Only what was changed reaches the operator; the rest keeps its defaults.
    let data = settings(&objects, "r-k8s-oci-operator")?;
    assert_eq!(
        data.get("OCI_READS_PER_SECOND").map(String::as_str),
        Some("7")
    );
    for unset in [
        "OCI_WRITES_PER_SECOND",
        "OCI_BURST",
        "MAX_RESERVED_IPS_PER_NAMESPACE",
        "WATCH_NAMESPACE",
    ] {
        assert!(!data.contains_key(unset), "{unset} set: {data:?}");
    }
    Ok(())
}

/// `helm uninstall` when dropped, so a failed test leaves no cluster-scoped
/// objects behind (its namespace goes with its own guard).
struct Release {
    name: String,
    namespace: String,
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm(&["uninstall", &self.name, "--namespace", &self.namespace]);
    }
}

/// The operator as the chart's pod would run: its container's args, the
/// environment of its ConfigMap and env (field references resolved as the
/// kubelet does), authenticated as its ServiceAccount. Only what a process
/// cannot take from the pod differs: the mounted API key (the emulator's key
/// at the config path's place), the health port, and the kubeconfig.
async fn start_as_the_pod(
    client: &Client,
    namespace: &str,
    deployment: &str,
    dir: &Path,
    port: u16,
) -> Result<tokio::process::Child> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(deployment)
        .await?;
    let pod = deployment
        .spec
        .and_then(|s| s.template.spec)
        .context("the Deployment has no pod spec")?;
    let container = pod
        .containers
        .iter()
        .find(|c| c.name == "operator")
        .context("no operator container")?;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut env = BTreeMap::new();
    for from in container.env_from.iter().flatten() {
        let name = from
            .config_map_ref
            .as_ref()
            .map(|r| r.name.clone())
            .context("envFrom other than a ConfigMap")?;
        env.extend(configmaps.get(&name).await?.data.unwrap_or_default());
    }
    let pod_name = format!("{}-helm-test", deployment.metadata.name.unwrap_or_default());
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => value.clone(),
            (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                Some("metadata.name") => pod_name.clone(),
                Some("metadata.namespace") => namespace.to_string(),
                other => bail!("{}: field reference {other:?} not resolved here", var.name),
            },
            (None, None) => String::new(),
        };
        env.insert(var.name.clone(), value);
    }
    if let Some(config) = env.get_mut("OCI_CONFIG_FILE") {
        let mounted = container
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| Path::new(config.as_str()).parent() == Some(Path::new(&m.mount_path)));
        ensure!(mounted, "{config} is not in a mounted volume");
        *config = oci_emulator::crate_dir()
            .join("testdata/oci-config")
            .display()
            .to_string();
    }
    let sa = pod
        .service_account_name
        .context("the pod names no ServiceAccount")?;
    let kubeconfig = kubeconfig_with_token(dir, &service_account_token(namespace, &sa).await?)?;
    env.insert("KUBECONFIG".into(), kubeconfig.display().to_string());
    env.insert("HEALTH_ADDR".into(), format!("127.0.0.1:{port}"));
    env.insert(
        "RUST_LOG".into(),
        std::env::var("OPERATOR_LOG").unwrap_or_else(|_| "warn".into()),
    );
    tokio::process::Command::new(operator_binary().await?)
        .args(container.args.iter().flatten())
        .env_clear()
        .envs(env)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .spawn()
        .context("starting k8s-oci-operator")
}

/// SIGTERM, as the kubelet sends, and the exit.
async fn stop(mut child: tokio::process::Child) -> Result<()> {
    let pid = child.id().context("the operator has exited already")?;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -TERM {pid} failed");
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .context("the operator did not stop on SIGTERM")??;
    ensure!(exit.success(), "the operator exited with {exit}");
    Ok(())
}

/// Waits until policy `name` is loaded: its ConfigMap gets a PolicyLoaded event.
async fn wait_policy_loaded(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    wait_until(Duration::from_secs(30), || async {
        Ok(events
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("PolicyLoaded")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            }))
    })
    .await
    .with_context(|| format!("policy {name} was never loaded"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_upgrade_uninstall_with_the_operator_as_the_chart_runs_it() -> Result<()> {
    let policies = built_policies()?;
    // The tenant's namespace and the emulator; the operator is the chart's.
    let mut sb = OperatorSandbox::start("helm-tenant").await?;
    sb.stop_operator();
    let ns = TestNamespace::create(&sb.client, "helm").await?;
    let release = Release {
        name: ns.name().to_string(),
        namespace: ns.name().to_string(),
    };
    let fullname = format!("{}-k8s-oci-operator", release.name);
    let dir = std::env::temp_dir().join(format!("helm-{}", release.name));
    std::fs::create_dir_all(&dir)?;

    let module = std::fs::read(policies.join("tag-defaults.wasm.gz"))?;
    let values = json!({
        "compartmentId": COMPARTMENT,
        "clusterId": sb.cluster_id,
        "oci": {
            "endpoint": sb.emulator.base_url(),
            "subnetIds": SUBNETS,
            "rateLimits": {"writesPerSecond": 10},
        },
        // Its own tenant only: other tests' ReservedIPs are not its business.
        "watchNamespace": sb.ns.name(),
        "extraEnv": [{"name": "POLL_INTERVAL_MS", "value": "200"}],
        "policies": {"configMaps": {"tags": {
            // ByteString serializes as base64, as the values want it.
            "module": serde_json::to_value(ByteString(module))?,
            "settings": {"defaults": {"cost-center": "shared"}},
        }}},
    });
    let values_file = dir.join("values.yaml");
    std::fs::write(&values_file, serde_yaml::to_string(&values)?)?;
    let values_file = values_file.display().to_string();
    let install = [
        "install",
        &release.name,
        CHART,
        "--namespace",
        &release.namespace,
        "--values",
        &values_file,
    ];

    // A wrong value is refused before anything is installed.
    let refused = helm(&[&install[..], &["--set", "replicas=two"]].concat())?;
    assert!(
        !refused.ok && refused.stderr.contains("/replicas"),
        "{}",
        refused.stderr
    );
    let releases = helm_ok(&["list", "--namespace", &release.namespace, "--short"])?;
    assert!(releases.trim().is_empty(), "installed anyway: {releases}");

    helm_ok(&install)?;
    let port = free_port()?;
    let operator = start_as_the_pod(&sb.client, ns.name(), &fullname, &dir, port).await?;

    // It leads through the chart's Role (the Lease in its namespace), reads
    // the chart's policy ConfigMap, and publishes events with its ClusterRole.
    let leases: Api<Lease> = ns.api();
    wait_until(Duration::from_secs(30), || async {
        Ok(leases
            .get_opt("k8s-oci-operator")
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .is_some_and(|h| h.ends_with("-helm-test")))
    })
    .await
    .context("the operator never took the Lease in the release namespace")?;
    wait_policy_loaded(&sb.client, ns.name(), "tags").await?;

    sb.running_pod("web", None).await?;
    sb.create(&rip_yaml("web-ip", Some("web"))).await?;
    let rip = sb.wait_state("web-ip", State::Assigned, true).await?;
    let status = rip.status.context("status")?;
    let id = status.public_ip_id.clone().context("no public IP id")?;
    let ip = sb.public_ip(&id).context("the public IP is not in OCI")?;
    assert_eq!(
        ip["freeformTags"]["cost-center"], "shared",
        "the chart's policy did not apply: {ip}"
    );
    assert!(
        status.policies.iter().any(|v| v.policy == "tags"),
        "{:?}",
        status.policies
    );
    let metrics = scrape(port).await?;
    assert_eq!(sample(&metrics, "k8s_oci_operator_leader"), Some(1.0));

    // An upgrade with a changed value changes the settings and rolls the pods.
    let configmaps: Api<ConfigMap> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    let checksum = |d: Deployment| {
        d.spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|a| a.get("checksum/config").cloned())
    };
    let before = checksum(deployments.get(&fullname).await?);
    let data = configmaps.get(&fullname).await?.data.unwrap_or_default();
    assert_eq!(
        data.get("OCI_WRITES_PER_SECOND").map(String::as_str),
        Some("10")
    );
    helm_ok(&[
        "upgrade",
        &release.name,
        CHART,
        "--namespace",
        &release.namespace,
        "--reuse-values",
        "--set",
        "oci.rateLimits.writesPerSecond=3",
    ])?;
    let data = configmaps.get(&fullname).await?.data.unwrap_or_default();
    assert_eq!(
        data.get("OCI_WRITES_PER_SECOND").map(String::as_str),
        Some("3")
    );
    let after = checksum(deployments.get(&fullname).await?);
    assert!(
        before.is_some() && before != after,
        "the pods would not roll: {before:?} {after:?}"
    );

    // The rolled pod works as well.
    stop(operator).await?;
    let operator = start_as_the_pod(&sb.client, ns.name(), &fullname, &dir, free_port()?).await?;
    sb.create(&rip_yaml("held", None)).await?;
    let held = sb.wait_state("held", State::Allocated, true).await?;
    let held_id = held
        .status
        .and_then(|s| s.public_ip_id)
        .context("no public IP id")?;

    // Uninstall: the pods stop, the chart's objects go; the CRD, every
    // ReservedIP and every public IP (assignment and tags included) stay.
    stop(operator).await?;
    let in_oci: Vec<Value> = [&id, &held_id]
        .iter()
        .map(|id| sb.public_ip(id).context("public IP"))
        .collect::<Result<_>>()?;
    helm_ok(&[
        "uninstall",
        &release.name,
        "--namespace",
        &release.namespace,
        "--wait",
    ])?;
    let crds: Api<CustomResourceDefinition> = Api::all(sb.client.clone());
    let crd = crds
        .get_opt("reservedips.oci.k8s.logmein.com")
        .await?
        .context("helm uninstall deleted the CRD")?;
    assert!(
        crd.metadata.deletion_timestamp.is_none(),
        "the CRD is being deleted"
    );
    for (name, ip) in [("web-ip", &in_oci[0]), ("held", &in_oci[1])] {
        let rip = sb
            .rips()
            .get_opt(name)
            .await?
            .with_context(|| format!("ReservedIP {name} is gone"))?;
        assert!(
            rip.metadata.deletion_timestamp.is_none(),
            "{name} is being deleted"
        );
        let id = ip["id"].as_str().unwrap_or_default();
        let now = sb.public_ip(id).context("the public IP is gone from OCI")?;
        assert!(is_live(&now), "released: {now}");
        assert_eq!(now["freeformTags"][TAG_CLUSTER], sb.cluster_id.as_str());
        assert_eq!(&now, ip, "the public IP changed");
    }
    assert!(in_oci[0]["privateIpId"].is_string(), "{}", in_oci[0]);
    assert!(
        configmaps.get_opt(&fullname).await?.is_none(),
        "settings left behind"
    );
    assert!(
        configmaps.get_opt("tags").await?.is_none(),
        "policy left behind"
    );
    let sas: Api<ServiceAccount> = ns.api();
    assert!(
        sas.get_opt(&fullname).await?.is_none(),
        "ServiceAccount left behind"
    );
    let roles: Api<ClusterRole> = Api::all(sb.client.clone());
    assert!(
        roles.get_opt(&fullname).await?.is_none(),
        "ClusterRole left behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
