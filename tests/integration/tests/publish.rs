//! The release's publish step (`make publish`, what the release workflow runs
//! on a tag) against a local registry (crane's in-memory one, standing in for
//! ghcr.io): the image index arrives whole, with the digest `make image`
//! wrote, and the chart can be pulled back at the release's version. A tag
//! that is not the version is refused before anything is pushed.
//!
//! Needs `make dist image` first (`make test` does it), skopeo, and helm and
//! crane from tests/cluster/build.sh.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use integration_tests::probes::free_port;
use integration_tests::repo_root;
use k8s_oci_operator::build_info::VERSION;
use serde_json::Value;

/// A local registry, stopped when dropped.
struct Registry {
    child: Child,
    host: String,
}

impl Registry {
    async fn start() -> Result<Self> {
        let port = free_port()?;
        let child = Command::new("crane")
            .args(["registry", "serve", "--address"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "starting crane (tests/cluster/build.sh builds it; source .sandbox/test/env)",
            )?;
        let me = Self {
            child,
            host: format!("127.0.0.1:{port}"),
        };
        test_support::wait_until(Duration::from_secs(10), || async {
            Ok(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok())
        })
        .await
        .context("the registry did not listen")?;
        Ok(me)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn publish(registry: &str, tag: &str) -> Result<Output> {
    Command::new(repo_root().join("release/publish.sh"))
        .env("REGISTRY", registry)
        .env("PLAIN_HTTP", "true")
        .env("TAG", tag)
        .output()
        .context("running release/publish.sh")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout_of(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("running {shown}"))?;
    ensure!(out.status.success(), "{shown}: {}", text(&out));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The digest of the image index tagged with this version in dist/image.
fn built_index_digest() -> Result<String> {
    let layout = repo_root().join("dist/image");
    let index: Value = serde_json::from_slice(
        &std::fs::read(layout.join("index.json"))
            .context("no dist/image: run `make dist image`")?,
    )?;
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == VERSION)
        .and_then(|m| m["digest"].as_str().map(String::from))
        .with_context(|| format!("no tag {VERSION} in dist/image"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_pushes_the_image_index_and_the_chart_and_refuses_a_wrong_tag() -> Result<()> {
    let registry = Registry::start().await?;
    let repo = format!("{}/logmein", registry.host);

    // A tag that does not name this version: refused, nothing pushed.
    let wrong = publish(&repo, "v0.0.0-not-this")?;
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(text(&wrong).contains("does not match"), "{}", text(&wrong));
    let image = format!("{repo}/k8s-oci-operator:{VERSION}");
    let absent = Command::new("crane")
        .args(["digest", "--insecure", &image])
        .output()?;
    assert!(!absent.status.success(), "pushed despite the wrong tag");

    let out = publish(&repo, &format!("v{VERSION}"))?;
    assert!(out.status.success(), "publish: {}", text(&out));

    // The image index as built: same digest, both architectures.
    let digest = stdout_of(Command::new("crane").args(["digest", "--insecure", &image]))?;
    assert_eq!(digest.trim(), built_index_digest()?);
    let index: Value = serde_json::from_str(&stdout_of(Command::new("crane").args([
        "manifest",
        "--insecure",
        &image,
    ]))?)?;
    let mut archs: Vec<&str> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["platform"]["architecture"].as_str())
        .collect();
    archs.sort_unstable();
    assert_eq!(archs, ["amd64", "arm64"]);

    // The chart, pulled back at the release's version.
    let dest = std::env::temp_dir().join(format!(
        "k8s-oci-operator-publish-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dest)?;
    let pulled = stdout_of(
        Command::new("helm")
            .args(["pull", "--plain-http", "--version", VERSION, "-d"])
            .arg(&dest)
            .arg(format!("oci://{repo}/charts/k8s-oci-operator")),
    );
    let chart: PathBuf = dest.join(format!("k8s-oci-operator-{VERSION}.tgz"));
    let shown =
        pulled.and_then(|_| stdout_of(Command::new("helm").arg("show").arg("chart").arg(&chart)));
    let _ = std::fs::remove_dir_all(&dest);
    let shown: Value = serde_yaml::from_str(&shown?)?;
    assert_eq!(shown["name"], "k8s-oci-operator");
    assert_eq!(shown["version"], VERSION);
    assert_eq!(shown["appVersion"], VERSION);
    Ok(())
}
