//! The API server goes away mid-work (every connection of the operator cut,
//! new ones refused, for several seconds) and comes back: the operator
//! recovers by itself, without a restart, and catches up on what changed
//! while it was cut off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::OperatorSandbox;
use k8s_oci_operator::api::crd::State;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to the API server that can be switched off: switching off
/// drops every open connection and refuses new ones.
struct Outage {
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

async fn proxy(upstream: String) -> Result<(String, Outage)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let up = Arc::new(AtomicBool::new(true));
    let (cut, cuts) = watch::channel(0u64);
    let flag = up.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            if !flag.load(Ordering::SeqCst) {
                continue; // dropped: connection refused/reset
            }
            let upstream = upstream.clone();
            let mut cuts = cuts.clone();
            // Only a cut after this connection opened ends it.
            cuts.mark_unchanged();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = cuts.changed() => {}
                }
            });
        }
    });
    Ok((format!("https://{addr}"), Outage { up, cut }))
}

impl Outage {
    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }
    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_recovers_from_an_api_server_outage_without_restart() -> Result<()> {
    let mut sb = OperatorSandbox::start("outage").await?;
    let mut config = kube::Config::infer().await?;
    let upstream = config
        .cluster_url
        .authority()
        .context("API server address")?
        .to_string();
    let (url, outage) = proxy(upstream).await?;
    config.cluster_url = url.parse()?;
    sb.operator_client = Some(kube::Client::try_from(config)?);
    sb.start_operator()?;

    let rip = |name: &str| {
        format!(
            "apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: {name}\nspec:\n  tags:\n    owner: My team\n"
        )
    };
    sb.create(&rip("before")).await?;
    sb.wait_state("before", State::Allocated, true).await?;

    outage.down();
    // Changes while the operator cannot see the API server.
    sb.create(&rip("during")).await?;
    sb.running_pod("some-pod", None).await?;
    sb.apply(&format!(
        "{}  assignment:\n    podName: some-pod\n",
        rip("before")
    ))
    .await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        sb.ours().len() == 1,
        "nothing new was allocated during the outage"
    );
    outage.up();

    sb.wait_state("during", State::Allocated, true)
        .await
        .context("missed a ReservedIP created during the outage")?;
    sb.wait_state("before", State::Assigned, true)
        .await
        .context("missed a change made during the outage")?;
    sb.assert_no_leak().await?;
    println!("API server cut for 6 s: the operator caught up without a restart");
    sb.report(
        "API server unreachable for 6 s",
        2,
        1,
        "connections to the API server cut, changes made meanwhile",
    )
    .await?;
    sb.operator_client = None;
    sb.start_operator()?;
    sb.finish().await
}
