//! Hostile input never panics the operator: generated specs and statuses go
//! through the decision logic, and generated OCI answers (unexpected, missing
//! or mistyped fields, wrong statuses, garbage bodies) through the OCI client.
//! What is not understood is an error, never a panic. (No cluster needed.)

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_oci_operator::api::crd::ReservedIP;
use k8s_oci_operator::decide::ownership::Owner;
use k8s_oci_operator::decide::{
    Decision, Failure, Gate, How, Observation, Outcome, PublicIpSeen, ResolvedTarget, Target,
    Timing, conclude, decide,
};
use k8s_oci_operator::oci::{
    CreatePublicIpDetails, HttpOciClient, ListPublicIpsQuery, OciCredentials, OciNetwork,
    PrivateIpFilter, PublicIp,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Arbitrary JSON, biased towards the shapes the operator reads.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,40}".prop_map(Value::from),
        prop_oneof![
            Just("AVAILABLE"),
            Just("ASSIGNED"),
            Just("ASSIGNING"),
            Just("TERMINATED"),
            Just("RESERVED"),
            Just("EPHEMERAL"),
            Just("ocid1.privateip.oc1..x"),
            Just("198.51.100.7"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("lifecycleState".to_string()),
                    Just("lifetime".to_string()),
                    Just("ipAddress".to_string()),
                    Just("assignedEntityId".to_string()),
                    Just("freeformTags".to_string()),
                    Just("privateIpId".to_string()),
                    "[a-zA-Z]{1,8}".prop_map(|s| s)
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn spec_value() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map("\\PC{0,120}", "\\PC{0,300}", 0..5),
        prop::option::of("\\PC{0,60}"),
        prop::option::of("\\PC{0,20}"),
        prop::option::of(json_value()),
    )
        .prop_map(|(tags, pool, address, assignment)| {
            json!({ "tags": tags, "publicIPv4Pool": pool, "publicIPv4Address": address, "assignment": assignment })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_specs_and_observations_never_panic_the_decisions(
        spec in spec_value(),
        status in json_value(),
        observed in json_value(),
        seen_kind in 0u8..7,
        target_kind in 0u8..4,
        refused in any::<bool>(),
    ) {
        let object = json!({
            "apiVersion": "oci.k8s.logmein.com/v1alpha1", "kind": "ReservedIP",
            "metadata": { "name": "r", "namespace": "ns", "uid": "u" },
            "spec": spec, "status": status,
        });
        // Whatever passes decoding must be handled; what does not is an error.
        if let Ok(rip) = serde_json::from_value::<ReservedIP>(object) {
            let owner = Owner { cluster: "c", namespace: "ns", name: "r", uid: "u" };
            let failure = Failure {
                reason: "OCIConflict".into(),
                code: Some("Conflict".into()),
                conflict: true,
                message: "refused".into(),
            };
            let found = |how| serde_json::from_value::<PublicIp>(observed.clone())
                .map(|ip| PublicIpSeen::Found { ip, how })
                .unwrap_or(PublicIpSeen::Nothing);
            let public_ip = match seen_kind {
                0 => PublicIpSeen::Nothing,
                1 => found(How::Read),
                2 => found(How::Listed),
                3 => found(How::ByAddress),
                4 => found(How::Recovered),
                5 => PublicIpSeen::NotFound { id: "ocid1.publicip.oc1..x".into() },
                _ => PublicIpSeen::Failed(failure.clone()),
            };
            let target = match target_kind {
                0 => Target::Unassigned,
                1 => Target::Absent { reason: "PodNotFound", message: String::new() },
                2 => Target::Refused { reason: "PolicyDenied", message: String::new() },
                _ => Target::PrivateIp(ResolvedTarget {
                    private_ip_id: "ocid1.privateip.oc1..p".into(),
                    private_ip_address: "10.0.65.9".into(),
                    pod: None,
                    subnet_id: None,
                    primary: false,
                }),
            };
            let denial = refused.then(|| ("p".to_string(), "no".to_string()));
            let gate = Gate { refused: denial.clone(), target_refused: denial, ..Gate::default() };
            let obs = Observation {
                owner,
                compartment_id: "ocid1.compartment.oc1..c",
                spec: &rip.spec,
                generation: rip.metadata.generation,
                status: rip.status.clone().unwrap_or_default(),
                public_ip,
                target: Some(Ok(target)),
                policy: Some(Ok(gate)),
                tenancy: Default::default(),
                timing: Timing {
                    poll: Duration::from_secs(2),
                    resync: Duration::from_secs(600),
                    missing_grace: Duration::from_secs(120),
                },
                now: k8s_openapi::jiff::Timestamp::now(),
                new_token: "token".into(),
            };
            if let Decision::Act(plan) = decide(&obs) {
                let answer = plan.observed.clone();
                let _ = conclude(plan.clone(), Outcome::Answered(answer));
                let _ = conclude(plan.clone(), Outcome::Failed(failure.clone()));
                let _ = conclude(plan, Outcome::TargetTaken { failure, holder: None });
            }
            let _ = k8s_oci_operator::policy::ReservedIpInput::new(&rip, BTreeMap::new());
        }
    }
}

/// Serves one HTTP answer per connection: `status`, `body`, maybe broken headers.
async fn serve(status: u16, body: Vec<u8>, etag: Option<String>, lie_about_length: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            let etag = etag.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                let len = if lie_about_length {
                    body.len() + 7
                } else {
                    body.len()
                };
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len}\r\nopc-request-id: fuzz\r\n"
                );
                if let Some(e) = etag {
                    head.push_str(&format!("etag: {e}\r\nopc-next-page: {e}\r\n"));
                }
                head.push_str("connection: close\r\n\r\n");
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_oci_client_turns_any_answer_into_a_value_or_an_error(
        status in prop_oneof![Just(200u16), Just(204), Just(404), Just(409), Just(429), Just(500), 100u16..600],
        body in prop_oneof![
            json_value().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
            prop::collection::vec(any::<u8>(), 0..200),
        ],
        etag in prop::option::of("[ -~]{0,20}"),
        lie in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let base = serve(status, body, etag, lie).await;
            let config = oci_emulator::crate_dir().join("testdata").join("oci-config");
            let creds = OciCredentials::from_config_file(&config, "DEFAULT").expect("credentials");
            let client = HttpOciClient::new(creds, &base, Duration::from_secs(2)).expect("client");
            // Every kind of call; each must come back, Ok or Err.
            let _ = client.get_public_ip("ocid1.publicip.oc1..x").await;
            let _ = client.get_public_ip_by_private_ip_id("ocid1.privateip.oc1..x").await;
            let _ = client.create_public_ip(&CreatePublicIpDetails::reserved("ocid1.compartment.oc1..c"), "token").await;
            let _ = client.delete_public_ip("ocid1.publicip.oc1..x", None).await;
            let _ = client.list_public_ips(&ListPublicIpsQuery::region("ocid1.compartment.oc1..c")).await;
            let _ = client.list_private_ips(&PrivateIpFilter::Vnic { vnic_id: "ocid1.vnic.oc1..v".into() }).await;
            let _ = client.list_vnic_attachments("ocid1.compartment.oc1..c", None).await;
            let _ = client.get_subnet("ocid1.subnet.oc1..s").await;
        });
    }
}
