//! Conformance with OCI's official definitions: tests/conformance/conformance.py
//! runs OCI's official Python SDK (PyPI `oci`, pinned) against an emulator
//! started here, and checks every request the operator's own client sent to
//! it (recorded on the wire by a relay) and every field and enum value the
//! operator's models read against the SDK's models. See tests/conformance/.
//!
//! The SDK is installed by tests/conformance/venv.sh into a virtualenv under
//! `${XDG_CACHE_HOME:-~/.cache}/k8s-oci-operator/` (PyPI is needed once); the
//! test fails, never skips, when it cannot be.

use k8s_oci_operator::oci::{
    CreatePublicIpDetails, HttpOciClient, Lifetime, ListPublicIpsQuery, OciCredentials, OciNetwork,
    PrivateIpFilter, PublicIp, PublicIpState, UpdatePublicIpDetails,
};
use oci_emulator::model::PublicIpPool;
use oci_emulator::{Emulator, EmulatorConfig, Seed, Timing, crate_dir};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const COMPARTMENT: &str = "ocid1.compartment.oc1..sandbox";
const POOL: &str = "ocid1.publicippool.oc1.sandbox.pool1";
const AD: &str = "EMU:US-SANDBOX-1-AD-1";

/// The seed's id of node1's pod private IP 10.0.66.<host> (the Python side
/// uses node0's, so the two never meet).
fn pod_ip(host: u8) -> String {
    format!("ocid1.privateip.oc1.us-sandbox-1.10-0-66-{host}")
}

fn conformance_dir() -> PathBuf {
    crate_dir().join("..").join("conformance")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_and_operator_client_conform_to_the_official_oci_sdk() -> TestResult {
    let started = Instant::now();
    // A panic, not an Err: its message keeps its line breaks.
    let python = match sdk_python().await {
        Ok(python) => python,
        Err(error) => panic!("{error}"),
    };

    // Transitions long enough for the Python side to see ASSIGNING (and be
    // refused a delete in it), short enough to keep the run brief.
    let timing = Timing {
        provisioning_ms: 250,
        assigning_ms: 250,
        unassigning_ms: 250,
        terminating_ms: 250,
        terminated_retention_ms: 300,
    };
    let emulator =
        Emulator::start(EmulatorConfig::with_seed(Seed::sandbox()?).timing(timing)).await?;
    // A second, younger pool, so the SDK's sortBy/sortOrder have an order to check.
    emulator.with_world(|world| {
        let later = chrono::Utc::now() + chrono::Duration::seconds(1);
        world.pools.insert(
            "ocid1.publicippool.oc1.sandbox.pool2".into(),
            PublicIpPool {
                id: "ocid1.publicippool.oc1.sandbox.pool2".into(),
                cidr_blocks: vec!["203.0.113.64/28".into()],
                compartment_id: COMPARTMENT.into(),
                display_name: "another-pool".into(),
                lifecycle_state: "ACTIVE".into(),
                time_created: later.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            },
        );
    });

    let tap = Tap::start(emulator.addr()).await?;
    let credentials = OciCredentials::from_config_file(
        &crate_dir().join("testdata").join("oci-config"),
        "DEFAULT",
    )?;
    // Pages of 2: the page parameter and opc-next-page are exercised too.
    let client =
        HttpOciClient::new(credentials, &tap.url, Duration::from_secs(5))?.with_page_limit(2);
    let recording = record_operator_calls(&client, &tap).await?;
    let file = std::env::temp_dir().join(format!("oci-conformance-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, serde_json::to_vec_pretty(&recording)?)?;

    let run = tokio::process::Command::new(&python)
        .arg(conformance_dir().join("conformance.py"))
        .arg("--endpoint")
        .arg(emulator.base_url())
        .arg("--config")
        .arg(crate_dir().join("testdata").join("oci-config"))
        .arg("--operator-requests")
        .arg(&file)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    println!(
        "conformance test: {:.1}s in all",
        started.elapsed().as_secs_f64()
    );
    // Kept when something failed, to rerun conformance.py on it.
    assert!(
        output.status.success(),
        "the official OCI SDK found differences ({}; the operator's requests are in {}):\n{stdout}\n{stderr}",
        output.status,
        file.display()
    );
    let _ = std::fs::remove_file(&file);
    Ok(())
}

/// The virtualenv's Python (tests/conformance/venv.sh creates it when missing).
async fn sdk_python() -> Result<PathBuf, Box<dyn std::error::Error>> {
    let output = tokio::process::Command::new("bash")
        .arg(conformance_dir().join("venv.sh"))
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let python = stdout.lines().last().unwrap_or_default().trim().to_string();
    if !output.status.success() || python.is_empty() {
        return Err(format!(
            "cannot install the official OCI Python SDK (tests/conformance/venv.sh, {}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(PathBuf::from(python))
}

/// Makes every call of [`OciNetwork`] through the relay and returns what the
/// Python side checks: the requests as sent, the operator's models as it
/// decoded the answers, and the enum values it knows.
async fn record_operator_calls(
    client: &HttpOciClient,
    tap: &Tap,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut requests = Vec::new();
    let mut note = |call: &str| -> Result<(), String> {
        let sent = tap.take()?;
        if sent.is_empty() {
            return Err(format!("{call} sent no request"));
        }
        for mut request in sent {
            request["call"] = json!(call);
            requests.push(request);
        }
        Ok(())
    };
    let mut models: Vec<(&str, Value)> = Vec::new();

    let mut details = CreatePublicIpDetails::reserved(COMPARTMENT);
    details.display_name = Some("operator".into());
    details.freeform_tags =
        Some([("k8s-oci-operator-owner".to_string(), "ns/name".to_string())].into());
    details.defined_tags = Some(
        [(
            "ns".to_string(),
            [("key".to_string(), json!("value"))].into(),
        )]
        .into(),
    );
    let ip = client
        .create_public_ip(&details, "conformance-operator-1")
        .await?;
    note("create_public_ip (name and tags)")?;
    let mut targeted = CreatePublicIpDetails::reserved(COMPARTMENT);
    targeted.private_ip_id = Some(pod_ip(10));
    let on_target = client
        .create_public_ip(&targeted, "conformance-operator-2")
        .await?;
    note("create_public_ip (target)")?;
    let mut pooled = CreatePublicIpDetails::reserved(COMPARTMENT);
    pooled.public_ip_pool_id = Some(POOL.into());
    let from_pool = client
        .create_public_ip(&pooled, "conformance-operator-3")
        .await?;
    note("create_public_ip (pool)")?;

    let ip = wait_for(client, &ip.id, PublicIpState::Available).await?;
    note("get_public_ip")?;
    models.push(("PublicIp", serde_json::to_value(&ip)?));
    let address = ip.ip_address.clone().unwrap_or_default();
    client.get_public_ip_by_ip_address(&address).await?;
    note("get_public_ip_by_ip_address")?;
    wait_for(client, &on_target.id, PublicIpState::Assigned).await?;
    note("get_public_ip")?;
    let held = client.get_public_ip_by_private_ip_id(&pod_ip(10)).await?;
    note("get_public_ip_by_private_ip_id")?;
    if held.map(|h| h.id) != Some(on_target.id.clone()) {
        return Err("GetPublicIpByPrivateIpId did not find the IP created on the target".into());
    }

    let assigned = client
        .update_public_ip(
            &ip.id,
            &UpdatePublicIpDetails::assign(pod_ip(11)),
            ip.etag.as_deref(),
        )
        .await?;
    note("update_public_ip (assign, if-match)")?;
    let assigned = wait_for(client, &assigned.id, PublicIpState::Assigned).await?;
    note("get_public_ip")?;
    client
        .update_public_ip(
            &ip.id,
            &UpdatePublicIpDetails::assign(pod_ip(12)),
            assigned.etag.as_deref(),
        )
        .await?;
    note("update_public_ip (move, if-match)")?;
    let moved = wait_for(client, &ip.id, PublicIpState::Assigned).await?;
    note("get_public_ip")?;
    models.push(("PublicIp", serde_json::to_value(&moved)?));
    client
        .update_public_ip(&ip.id, &UpdatePublicIpDetails::unassign(), None)
        .await?;
    note("update_public_ip (unassign)")?;
    let free = wait_for(client, &ip.id, PublicIpState::Available).await?;
    note("get_public_ip")?;
    let retag = UpdatePublicIpDetails {
        display_name: Some("renamed".into()),
        freeform_tags: Some(
            [("k8s-oci-operator-owner".to_string(), "ns/other".to_string())].into(),
        ),
        defined_tags: Some([("ns".to_string(), [("key".to_string(), json!(1))].into())].into()),
        private_ip_id: None,
    };
    let retagged = client
        .update_public_ip(&ip.id, &retag, free.etag.as_deref())
        .await?;
    note("update_public_ip (retag)")?;

    let listed = client
        .list_public_ips(&ListPublicIpsQuery::region(COMPARTMENT))
        .await?;
    note("list_public_ips (REGION)")?;
    for listed in &listed {
        models.push(("PublicIp", serde_json::to_value(listed)?));
    }
    let mut query = ListPublicIpsQuery::region(COMPARTMENT);
    query.lifetime = Some(Lifetime::Reserved);
    query.public_ip_pool_id = Some(POOL.into());
    client.list_public_ips(&query).await?;
    note("list_public_ips (REGION, RESERVED, pool)")?;
    let mut query = ListPublicIpsQuery::region(COMPARTMENT);
    query.scope = "AVAILABILITY_DOMAIN".into();
    query.availability_domain = Some(AD.into());
    query.lifetime = Some(Lifetime::Ephemeral);
    client.list_public_ips(&query).await?;
    note("list_public_ips (AVAILABILITY_DOMAIN, EPHEMERAL)")?;

    let found = client
        .list_private_ips(&PrivateIpFilter::AddressInSubnet {
            subnet_id: "ocid1.subnet.oc1.sandbox.pods".into(),
            ip_address: "10.0.66.10".into(),
        })
        .await?;
    note("list_private_ips (address in subnet)")?;
    for private_ip in &found {
        models.push(("PrivateIp", serde_json::to_value(private_ip)?));
    }
    client
        .list_private_ips(&PrivateIpFilter::Vnic {
            vnic_id: "ocid1.vnic.oc1.sandbox.node1-primary".into(),
        })
        .await?;
    note("list_private_ips (VNIC)")?;
    let private_ip = client.get_private_ip(&pod_ip(10)).await?;
    note("get_private_ip")?;
    models.push(("PrivateIp", serde_json::to_value(&private_ip)?));
    let vnic = client
        .get_vnic("ocid1.vnic.oc1.sandbox.node1-primary")
        .await?;
    note("get_vnic")?;
    models.push(("Vnic", serde_json::to_value(&vnic)?));
    let attachments = client.list_vnic_attachments(COMPARTMENT, None).await?;
    note("list_vnic_attachments (compartment)")?;
    client
        .list_vnic_attachments(COMPARTMENT, Some("ocid1.instance.oc1.sandbox.node1"))
        .await?;
    note("list_vnic_attachments (instance)")?;
    for attachment in &attachments {
        models.push(("VnicAttachment", serde_json::to_value(attachment)?));
    }
    let subnet = client.get_subnet("ocid1.subnet.oc1.sandbox.pods").await?;
    note("get_subnet")?;
    models.push(("Subnet", serde_json::to_value(&subnet)?));
    for pool in client.list_public_ip_pools(COMPARTMENT).await? {
        models.push(("PublicIpPool", serde_json::to_value(&pool)?));
    }
    note("list_public_ip_pools")?;
    let pool = client.get_public_ip_pool(POOL).await?;
    note("get_public_ip_pool")?;
    models.push(("PublicIpPool", serde_json::to_value(&pool)?));

    client
        .delete_public_ip(&retagged.id, retagged.etag.as_deref())
        .await?;
    note("delete_public_ip (if-match)")?;
    client.delete_public_ip(&on_target.id, None).await?;
    note("delete_public_ip")?;
    client.delete_public_ip(&from_pool.id, None).await?;
    note("delete_public_ip")?;

    let mut by_model = serde_json::Map::new();
    for (name, value) in models {
        let list = by_model.entry(name).or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(value);
        }
    }
    let lifetimes: Vec<Value> = [Lifetime::Ephemeral, Lifetime::Reserved]
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    Ok(json!({
        // The OciNetwork calls, named as the SDK names them.
        "operations": [
            "create_public_ip", "get_public_ip", "get_public_ip_by_ip_address",
            "get_public_ip_by_private_ip_id", "update_public_ip", "delete_public_ip",
            "list_public_ips", "list_private_ips", "get_private_ip", "get_vnic",
            "list_vnic_attachments", "get_subnet", "list_public_ip_pools", "get_public_ip_pool",
        ],
        "requests": requests,
        "models": by_model,
        "enums": {
            "PublicIp.lifecycleState": public_ip_states(),
            "PublicIp.lifetime": lifetimes,
        },
        // Values the operator compares fields with (resolve/mod.rs).
        "values": {"VnicAttachment.lifecycleState": ["ATTACHED"]},
    }))
}

/// Every state [`PublicIpState`] knows but its catch-all.
fn public_ip_states() -> Vec<&'static str> {
    use PublicIpState::*;
    [
        Provisioning,
        Available,
        Assigning,
        Assigned,
        Unassigning,
        Unassigned,
        Terminating,
        Terminated,
        Unknown,
    ]
    .into_iter()
    // Exhaustive, so a new state does not compile until it is listed here.
    .filter(|state| match state {
        Provisioning | Available | Assigning | Assigned | Unassigning | Unassigned
        | Terminating | Terminated => true,
        Unknown => false,
    })
    .map(PublicIpState::as_str)
    .collect()
}

async fn wait_for(
    client: &HttpOciClient,
    id: &str,
    state: PublicIpState,
) -> Result<PublicIp, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ip = client.get_public_ip(id).await?;
        if ip.lifecycle_state == state {
            return Ok(ip);
        }
        if Instant::now() > deadline {
            return Err(format!("{id} stayed {:?}, expected {state:?}", ip.lifecycle_state).into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A TCP relay in front of the emulator that keeps every byte the client
/// sends, so its requests can be checked as they were on the wire (after the
/// client's own encoding and signing).
struct Tap {
    url: String,
    /// What each accepted connection sent and is not yet taken.
    connections: Arc<Mutex<Vec<Sent>>>,
}

/// The bytes one connection sent.
type Sent = Arc<Mutex<Vec<u8>>>;

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Tap {
    async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let connections: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let accepted = connections.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let sent = Arc::new(Mutex::new(Vec::new()));
                locked(&accepted).push(sent.clone());
                tokio::spawn(relay(client, server, sent));
            }
        });
        Ok(Self { url, connections })
    }

    /// The complete requests sent since the last call, parsed.
    fn take(&self) -> Result<Vec<Value>, String> {
        let mut requests = Vec::new();
        for connection in locked(&self.connections).iter() {
            let mut bytes = locked(connection);
            while let Some((request, length)) = parse_request(&bytes)? {
                requests.push(request);
                bytes.drain(..length);
            }
        }
        Ok(requests)
    }
}

async fn relay(client: TcpStream, server: TcpStream, sent: Sent) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n) = client_read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            // Kept before it is forwarded: once the answer is back, the
            // whole request is here.
            locked(&sent).extend_from_slice(&buffer[..n]);
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// One HTTP/1.1 request from the front of `bytes` and its length, or `None`
/// while incomplete.
fn parse_request(bytes: &[u8]) -> Result<Option<(Value, usize)>, String> {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|e| format!("request head: {e}"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!("malformed request line {request_line:?}"));
    };
    let mut headers = serde_json::Map::new();
    let mut length = 0usize;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header line {line:?}"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "transfer-encoding" => return Err(format!("unexpected transfer-encoding {value}")),
            "content-length" => {
                length = value
                    .parse()
                    .map_err(|e| format!("content-length {value:?}: {e}"))?
            }
            _ => {}
        }
        if headers.insert(name.clone(), json!(value)).is_some() {
            return Err(format!("header {name} sent twice"));
        }
    }
    let total = head_end + 4 + length;
    if bytes.len() < total {
        return Ok(None);
    }
    let body = &bytes[head_end + 4..total];
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| format!("request body is not JSON: {e}"))?
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query: Vec<Value> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| json!([name, value]))
        .collect();
    Ok(Some((
        json!({"method": method, "path": path, "query": query, "headers": headers, "body": body}),
        total,
    )))
}
