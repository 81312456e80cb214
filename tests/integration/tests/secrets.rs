//! No credential or private key appears in logs, events, status or errors,
//! also when calls fail. The operator's logs (debug level) are captured in
//! memory and searched for pieces of the private key.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::OperatorSandbox;
use k8s_oci_operator::api::crd::State;
use kube::api::ListParams;
use oci_emulator::{FaultConfig, FaultRule};
use test_support::wait_until;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_material_never_leaks_into_logs_events_or_status() -> Result<()> {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug,hyper=info,h2=info,rustls=info,tower=info")
        .with_writer(move || writer.clone())
        .init();

    let sb = OperatorSandbox::start("secrets").await?;
    sb.running_pod("some-pod", None).await?;
    // Failures too: errors are where secrets tend to slip out.
    let mut faults = FaultConfig::default();
    faults.operations.insert(
        "CreatePublicIp".into(),
        FaultRule {
            error500_probability: 1.0,
            ..Default::default()
        },
    );
    sb.emulator.set_faults(faults);
    sb.create("apiVersion: oci.k8s.logmein.com/v1alpha1\nkind: ReservedIP\nmetadata:\n  name: r\nspec:\n  assignment:\n    podName: some-pod\n")
        .await?;
    wait_until(Duration::from_secs(30), || async {
        Ok(sb.emulator.calls().count("CreatePublicIp", "500") >= 2)
    })
    .await?;
    sb.emulator.set_faults(FaultConfig::default());
    let rip = sb.wait_state("r", State::Assigned, true).await?;

    let key = std::fs::read_to_string(oci_emulator::crate_dir().join("testdata/oci_api_key.pem"))?;
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let pieces: Vec<&str> = (0..body.len().saturating_sub(24))
        .step_by(97)
        .map(|i| &body[i..i + 24])
        .collect();
    assert!(pieces.len() > 10);

    let logs =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).to_string();
    assert!(
        logs.contains("CreatePublicIp"),
        "the capture holds the operator's logs"
    );
    let events = sb
        .ns
        .api::<k8s_openapi::api::events::v1::Event>()
        .list(&ListParams::default())
        .await?;
    let places = [
        ("logs", logs.clone()),
        ("events", serde_json::to_string(&events.items)?),
        (
            "status",
            serde_json::to_string(&rip.status).context("status")?,
        ),
    ];
    for (place, text) in &places {
        for p in &pieces {
            assert!(
                !text.contains(p),
                "a piece of the private key appears in the {place}"
            );
        }
        assert!(
            !text.contains("PRIVATE KEY"),
            "a PEM header appears in the {place}"
        );
        assert!(
            !text.contains("Signature version="),
            "an Authorization header appears in the {place}"
        );
    }
    println!(
        "searched {} bytes of logs, {} events and the status for {} key fragments: none found",
        logs.len(),
        events.items.len(),
        pieces.len()
    );
    sb.finish().await
}
