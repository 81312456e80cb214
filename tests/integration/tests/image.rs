//! The operator's image as `make image` writes it (an OCI image index in
//! dist/image): one manifest per architecture with the annotations a registry
//! shows, and binaries that run from the image itself. Each architecture's
//! image is unpacked as a container runtime would (skopeo picks the
//! platform's manifest from the index, umoci unpacks it into a runtime bundle)
//! and its entrypoint is run in a chroot of the rootfs, as the image's user:
//! natively for amd64, under qemu-user-static for arm64. A dynamically linked
//! binary, a wrong entrypoint or a file the binary needs and the image lacks
//! fails here. Then the seed's walkthrough runs with the amd64 binary taken
//! from the image, as the deploy/ ServiceAccount.
//!
//! Needs `make dist image` first (`make test` does it), root (chroot, umoci),
//! skopeo, umoci and qemu-user-static (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use integration_tests::{OperatorProcess, OperatorSandbox, repo_root};
use k8s_oci_operator::api::crd::State;
use k8s_oci_operator::build_info::VERSION;
use k8s_openapi::api::core::v1::Pod;
use kube::api::PostParams;
use serde_json::Value;

const USER: &str = "65532:65532";

/// The image's OCI layout: `K8S_OCI_OPERATOR_IMAGE` or dist/image.
fn layout() -> Result<PathBuf> {
    let dir = std::env::var_os("K8S_OCI_OPERATOR_IMAGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist/image"));
    ensure!(
        dir.join("index.json").is_file(),
        "no image at {}: run `make dist image` first (`make test` does)",
        dir.display()
    );
    Ok(dir)
}

fn blob(layout: &Path, digest: &str) -> Result<Value> {
    let hex = digest
        .strip_prefix("sha256:")
        .with_context(|| format!("digest {digest} is not sha256"))?;
    let path = layout.join("blobs/sha256").join(hex);
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_slice(&text)?)
}

/// The image index tagged with this version, as (architecture, manifest, config).
fn platforms(layout: &Path) -> Result<Vec<(String, Value, Value)>> {
    let top: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let entry = top["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == VERSION)
        .with_context(|| format!("no tag {VERSION} in {}", layout.display()))?;
    ensure!(
        entry["mediaType"] == "application/vnd.oci.image.index.v1+json",
        "tag {VERSION} is not an image index: {entry}"
    );
    let index = blob(layout, entry["digest"].as_str().unwrap_or_default())?;
    let mut out = Vec::new();
    for m in index["manifests"].as_array().into_iter().flatten() {
        let arch = m["platform"]["architecture"]
            .as_str()
            .context("a manifest without an architecture")?;
        ensure!(m["platform"]["os"] == "linux", "not linux: {m}");
        let manifest = blob(layout, m["digest"].as_str().unwrap_or_default())?;
        let config = blob(
            layout,
            manifest["config"]["digest"].as_str().unwrap_or_default(),
        )?;
        out.push((arch.to_string(), manifest, config));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn run(cmd: &mut Command) -> Result<Output> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("running {shown}"))?;
    Ok(out)
}

fn succeed(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = run(cmd)?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "k8s-oci-operator-image-{what}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An architecture's image unpacked as a runtime bundle: rootfs/ and the
/// runtime config (process args and user) umoci derives from the image's.
struct Unpacked {
    scratch: Scratch,
    args: Vec<String>,
    user: String,
}

impl Unpacked {
    fn rootfs(&self) -> PathBuf {
        self.scratch.0.join("bundle/rootfs")
    }

    /// The entrypoint, as the image's user, in a chroot of the rootfs, with
    /// `emulator` (e.g. qemu-aarch64-static) in front when the architecture
    /// is not the host's; `args` replace the image's CMD.
    fn exec(&self, emulator: Option<&str>, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(chroot()?);
        cmd.arg(format!("--userspec={}", self.user))
            .arg(self.rootfs())
            .env_clear();
        if let Some(e) = emulator {
            cmd.arg(e);
        }
        cmd.arg(&self.args[0]).args(args);
        run(&mut cmd)
    }
}

/// chroot's path, found on this process's PATH: the commands run with an
/// empty environment, as in a container that sets nothing.
fn chroot() -> Result<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("chroot"))
        .find(|p| p.is_file())
        .context("chroot is not on PATH (coreutils)")
}

fn unpack(layout: &Path, arch: &str) -> Result<Unpacked> {
    ensure!(
        running_as_root(),
        "unpacking and chroot need root (CI runs as root)"
    );
    let scratch = Scratch::new(arch)?;
    let single = scratch.0.join("single");
    succeed(
        Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--override-os",
                "linux",
                "--override-arch",
                arch,
            ])
            .arg(format!("oci:{}:{VERSION}", layout.display()))
            .arg(format!("oci:{}:{arch}", single.display())),
    )
    .context("skopeo (Debian: apt-get install skopeo)")?;
    let bundle = scratch.0.join("bundle");
    succeed(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{arch}", single.display()))
            .arg(&bundle),
    )
    .context("umoci (Debian: apt-get install umoci)")?;
    let runtime: Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json"))?)?;
    let args: Vec<String> = serde_json::from_value(runtime["process"]["args"].clone())?;
    ensure!(!args.is_empty(), "the image has no entrypoint");
    let user = format!(
        "{}:{}",
        runtime["process"]["user"]["uid"], runtime["process"]["user"]["gid"]
    );
    Ok(Unpacked {
        scratch,
        args,
        user,
    })
}

/// Whether this process runs as root (uid 0), read from /proc so no unsafe
/// libc call is needed.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Every file and directory of the rootfs, relative to it.
fn files(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(root)?.display().to_string());
        }
    }
    out.sort();
    Ok(out)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_image_index_has_one_manifest_per_architecture_with_its_metadata() -> Result<()> {
    let layout = layout()?;
    let platforms = platforms(&layout)?;
    let archs: Vec<&str> = platforms.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let mut revisions = Vec::new();
    for (arch, manifest, config) in &platforms {
        assert_eq!(config["architecture"], arch.as_str());
        assert_eq!(config["os"], "linux");
        let c = &config["config"];
        assert_eq!(c["User"], USER, "{arch}: runs as a non-root numeric user");
        assert_eq!(c["Entrypoint"], serde_json::json!(["/k8s-oci-operator"]));
        assert_eq!(c["Cmd"], serde_json::json!(["run"]));
        // One layer: the binary and nothing else.
        assert_eq!(
            manifest["layers"].as_array().map(Vec::len),
            Some(1),
            "{arch}"
        );
        for (key, place) in [
            ("label", &c["Labels"]),
            ("annotation", &manifest["annotations"]),
        ] {
            let get = |k: &str| place[format!("org.opencontainers.image.{k}")].clone();
            assert_eq!(get("version"), VERSION, "{arch} {key}");
            assert_eq!(
                get("source"),
                "https://github.com/logmein/k8s-oci-operator",
                "{arch} {key}"
            );
            let licenses = get("licenses");
            let licenses = licenses.as_str().unwrap_or_default();
            // Releases are built without the optional oci-rust-sdk (AGPL-3.0).
            assert_eq!(licenses, "Apache-2.0", "{arch} {key}");
            let revision = get("revision").as_str().unwrap_or_default().to_string();
            assert!(
                !revision.is_empty() && revision != "unknown",
                "{arch} {key}: the revision is stamped"
            );
            revisions.push(revision);
        }
    }
    revisions.dedup();
    assert_eq!(revisions.len(), 1, "one revision everywhere: {revisions:?}");
    Ok(())
}

#[test]
fn the_amd64_entrypoint_runs_from_the_unpacked_image() -> Result<()> {
    entrypoint_runs("amd64", "x86_64-unknown-linux-musl", None)
}

#[test]
fn the_arm64_entrypoint_runs_from_the_unpacked_image_under_emulation() -> Result<()> {
    entrypoint_runs(
        "arm64",
        "aarch64-unknown-linux-musl",
        Some("/usr/bin/qemu-aarch64-static"),
    )
}

/// Unpacks `arch`'s image and runs its entrypoint in a chroot of the rootfs:
/// `--version` names the image's revision and `target`; `--help` of `run`
/// and `crd` work; the image's own CMD (`run`) with no settings stops with an
/// error that says what to set (not a crash).
fn entrypoint_runs(arch: &str, target: &str, emulator: Option<&str>) -> Result<()> {
    let layout = layout()?;
    let revision = platforms(&layout)?
        .into_iter()
        .find(|p| p.0 == arch)
        .and_then(|p| {
            p.2["config"]["Labels"]["org.opencontainers.image.revision"]
                .as_str()
                .map(String::from)
        })
        .context("no revision label")?;
    let image = unpack(&layout, arch)?;
    assert_eq!(image.user, USER);
    assert_eq!(image.args, ["/k8s-oci-operator", "run"]);
    // Nothing but the binary: whatever it needs at run time is inside it
    // (static musl, TLS roots compiled in).
    assert_eq!(files(&image.rootfs())?, ["k8s-oci-operator"]);

    // A foreign architecture runs under qemu-user, copied into the rootfs
    // (static, so it needs nothing there either).
    let emulator = match emulator {
        Some(qemu) => {
            ensure!(
                Path::new(qemu).is_file(),
                "{qemu} is missing (Debian: apt-get install qemu-user-static)"
            );
            std::fs::copy(qemu, image.rootfs().join("qemu"))?;
            Some("/qemu")
        }
        None => None,
    };

    let version = image.exec(emulator, &["--version"])?;
    assert!(version.status.success(), "--version: {}", text(&version));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("k8s-oci-operator {VERSION} (commit {revision}, {target})")
    );

    let help = image.exec(emulator, &["run", "--help"])?;
    assert!(help.status.success(), "run --help: {}", text(&help));
    assert!(
        text(&help).contains("OCI_COMPARTMENT_ID"),
        "{}",
        text(&help)
    );

    let crd = image.exec(emulator, &["crd"])?;
    assert!(crd.status.success(), "crd: {}", text(&crd));
    let crd: Value = serde_yaml::from_slice(&crd.stdout)?;
    assert_eq!(crd["metadata"]["name"], "reservedips.oci.k8s.logmein.com");

    // The image's CMD with nothing configured: a clear error, exit 2 (usage).
    let cmd: Vec<&str> = image.args[1..].iter().map(String::as_str).collect();
    let bare = image.exec(emulator, &cmd)?;
    assert_eq!(bare.status.code(), Some(2), "{}", text(&bare));
    assert!(text(&bare).contains("--compartment-id"), "{}", text(&bare));
    Ok(())
}

/// The seed's walkthrough (examples/): allocate, run a pod, assign, release,
/// with the operator binary from the amd64 image as a process, authenticated
/// as the deploy/ ServiceAccount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_walkthrough_passes_with_the_binary_from_the_image() -> Result<()> {
    let image = unpack(&layout()?, "amd64")?;
    let binary = image.rootfs().join("k8s-oci-operator");
    let mut sb = OperatorSandbox::start("image-walkthrough").await?;
    sb.stop_operator();
    let kubeconfig = image.scratch.0.join("operator.kubeconfig");
    integration_tests::operator_service_account_kubeconfig(&kubeconfig).await?;
    let kubeconfig = kubeconfig.display().to_string();
    let mut operator = OperatorProcess::start_binary(
        &binary,
        &sb,
        "image-operator",
        false,
        &[("KUBECONFIG", kubeconfig.as_str())],
    )?;

    let examples = repo_root().join("examples");
    let read = |f: &str| std::fs::read_to_string(examples.join(f));
    sb.apply(&read("example.yaml")?).await?;
    let rip = sb
        .wait_state_within(
            "my-reserved-ip",
            State::Allocated,
            true,
            Duration::from_secs(60),
        )
        .await?;
    let address = rip
        .status
        .as_ref()
        .and_then(|s| s.public_ip_address.clone())
        .context("allocated without an address")?;

    let pod: Pod = serde_yaml::from_str(&read("pod.yaml")?)?;
    let pods: kube::Api<Pod> = sb.ns.api();
    pods.create(&PostParams::default(), &pod).await?;
    sb.apply(&read("example-assigned.yaml")?).await?;
    let rip = sb
        .wait_state_within(
            "my-reserved-ip",
            State::Assigned,
            true,
            Duration::from_secs(60),
        )
        .await?;
    assert_eq!(
        rip.status
            .as_ref()
            .and_then(|s| s.public_ip_address.clone()),
        Some(address.clone()),
        "the same address, now assigned"
    );
    let live: Vec<Value> = sb
        .ours()
        .into_iter()
        .filter(|ip| ip["ipAddress"] == address.as_str())
        .collect();
    assert_eq!(live.len(), 1, "one public IP in OCI: {live:?}");
    assert!(
        live[0]["privateIpId"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "assigned in OCI: {}",
        live[0]
    );

    sb.delete_and_wait("my-reserved-ip").await?;
    assert!(
        operator.alive(),
        "the operator from the image is still running"
    );
    operator.stop(Duration::from_secs(20)).await?;
    sb.finish().await
}

/// TLS in an image that holds nothing but the binary: OCI's roots are
/// compiled in (no CA file to go missing), and the TLS stack starts and
/// verifies. Pointed at a local HTTPS server whose certificate no public CA
/// signed, `check` from the unpacked image reaches it and refuses the
/// certificate, rather than failing to build a client or panicking for want
/// of a CA file or a crypto provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_from_the_bare_image_verifies_certificates() -> Result<()> {
    let image = unpack(&layout()?, "amd64")?;
    let dir = &image.scratch.0;
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    succeed(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    )?;
    let port = integration_tests::probes::free_port()?;
    let server = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("openssl s_server")?;
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Stop(server);
    test_support::wait_until(Duration::from_secs(10), || async {
        Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
    })
    .await
    .context("openssl s_server did not listen")?;

    // The emulator's test credentials, inside the rootfs.
    let etc = image.rootfs().join("etc/oci");
    std::fs::create_dir_all(&etc)?;
    let testdata = oci_emulator::crate_dir().join("testdata");
    std::fs::copy(testdata.join("oci-config"), etc.join("config"))?;
    std::fs::copy(
        testdata.join("oci_api_key.pem"),
        etc.join("oci_api_key.pem"),
    )?;
    let endpoint = format!("https://127.0.0.1:{port}");
    let mut cmd = Command::new(chroot()?);
    cmd.arg(format!("--userspec={}", image.user))
        .arg(image.rootfs())
        .env_clear()
        .env("OCI_COMPARTMENT_ID", "ocid1.compartment.oc1..sandbox")
        .env("CLUSTER_ID", "image-tls")
        .env("OCI_CONFIG_FILE", "/etc/oci/config")
        .env("OCI_ENDPOINT", &endpoint)
        .env("OCI_TIMEOUT_SECONDS", "10")
        .arg(&image.args[0])
        .args(["check", "--output", "json", "--skip-write-probe"]);
    let out = run(&mut cmd)?;
    let lines: Vec<Value> = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("check's JSON: {}", text(&out)))?;
    let line = |name: &str| {
        lines
            .iter()
            .find(|l| l["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(line("oci credentials")["status"], "ok", "{lines:#?}");
    let endpoint_line = line("oci endpoint");
    assert_eq!(endpoint_line["status"], "fail", "{lines:#?}");
    let detail = endpoint_line["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("certificate") || detail.contains("UnknownIssuer"),
        "the handshake ran and the certificate was refused: {detail}"
    );
    Ok(())
}
