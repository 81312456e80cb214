//! Injected faults as the client experiences them.

use crate::support::*;
use k8s_oci_operator::oci::{
    CreatePublicIpDetails, OciError, OciNetwork, PublicIpState, UpdatePublicIpDetails,
};
use oci_emulator::{FaultConfig, FaultRule, RateLimit};
use std::time::{Duration, Instant};

fn only(operation: &str, rule: FaultRule) -> FaultConfig {
    let mut config = FaultConfig::default();
    config.operations.insert(operation.to_string(), rule);
    config
}

#[tokio::test]
async fn rate_limit_answers_429() {
    let env = start().await;
    env.emulator.set_faults(only(
        "GetPublicIp",
        FaultRule {
            rate_limit: Some(RateLimit {
                per_second: 0.0,
                burst: 2.0,
            }),
            ..FaultRule::default()
        },
    ));
    let client = &env.client;
    client.get_public_ip(SPECIFIC_IP_ID).await.expect("1");
    client.get_public_ip(SPECIFIC_IP_ID).await.expect("2");
    let error = client
        .get_public_ip(SPECIFIC_IP_ID)
        .await
        .expect_err("throttled");
    assert_eq!(
        (error.status(), error.code()),
        (Some(429), Some("TooManyRequests"))
    );
    assert!(error.is_throttled() && error.is_retryable());
    assert!(error.request_id().is_some());
    // Other operations have their own (here: no) limit.
    client.get_subnet(PODS_SUBNET).await.expect("not limited");
    let calls = env.emulator.calls();
    assert_eq!(
        (
            calls.count("GetPublicIp", "200"),
            calls.count("GetPublicIp", "429")
        ),
        (2, 1)
    );
}

#[tokio::test]
async fn server_errors_change_nothing() {
    let env = start().await;
    let before = public_ip_count(&env.emulator);
    for (rule, status) in [
        (
            FaultRule {
                error500_probability: 1.0,
                ..FaultRule::default()
            },
            500,
        ),
        (
            FaultRule {
                error503_probability: 1.0,
                ..FaultRule::default()
            },
            503,
        ),
    ] {
        env.emulator.set_faults(only("CreatePublicIp", rule));
        let error = env
            .client
            .create_public_ip(&CreatePublicIpDetails::reserved(COMPARTMENT), "t")
            .await
            .expect_err("injected");
        assert_eq!(error.status(), Some(status));
        assert!(error.is_retryable());
    }
    assert_eq!(public_ip_count(&env.emulator), before);
    // Once the fault is gone, the same retry token creates the IP.
    env.emulator.set_faults(FaultConfig::default());
    env.client
        .create_public_ip(&CreatePublicIpDetails::reserved(COMPARTMENT), "t")
        .await
        .expect("created");
    assert_eq!(public_ip_count(&env.emulator), before + 1);
}

#[tokio::test]
async fn dropped_connection_after_create_applies_it() {
    let env = start().await;
    env.emulator.set_faults(only(
        "CreatePublicIp",
        FaultRule {
            drop_after_apply_probability: 1.0,
            ..FaultRule::default()
        },
    ));
    let before = public_ip_count(&env.emulator);
    let details = CreatePublicIpDetails::reserved(COMPARTMENT);
    let error = env
        .client
        .create_public_ip(&details, "uid-drop")
        .await
        .expect_err("no answer");
    assert!(matches!(error, OciError::Transport { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(
        public_ip_count(&env.emulator),
        before + 1,
        "the create happened"
    );
    assert_eq!(env.emulator.calls().count("CreatePublicIp", "dropped"), 1);

    // Retrying with the same token returns the IP created by the lost call.
    env.emulator.set_faults(FaultConfig::default());
    let created = env
        .client
        .create_public_ip(&details, "uid-drop")
        .await
        .expect("replay");
    assert_eq!(public_ip_count(&env.emulator), before + 1, "no second IP");
    assert!(state_public_ip(&env.emulator, &created.id).is_some());
}

#[tokio::test]
async fn dropped_connection_after_update_applies_it() {
    let env = start().await;
    env.emulator.set_faults(only(
        "UpdatePublicIp",
        FaultRule {
            drop_after_apply_probability: 1.0,
            ..FaultRule::default()
        },
    ));
    let pod = pod_ip(0, 50);
    let error = env
        .client
        .update_public_ip(SPECIFIC_IP_ID, &UpdatePublicIpDetails::assign(&pod), None)
        .await
        .expect_err("no answer");
    assert!(matches!(error, OciError::Transport { .. }), "{error:?}");
    let state = state_public_ip(&env.emulator, SPECIFIC_IP_ID).expect("in state");
    assert_eq!(state["assignedEntityId"], pod.as_str());
    let ip = wait_for(&env.client, SPECIFIC_IP_ID, PublicIpState::Assigned).await;
    assert_eq!(ip.private_ip_id.as_deref(), Some(pod.as_str()));
}

#[tokio::test]
async fn latency_and_client_timeout() {
    let env = start().await;
    let mut faults = FaultConfig::default();
    faults.default.latency_ms = 200;
    env.emulator.set_faults(faults);
    let started = Instant::now();
    env.client
        .get_subnet(PODS_SUBNET)
        .await
        .expect("slow but fine");
    assert!(started.elapsed() >= Duration::from_millis(200));

    let credentials =
        k8s_oci_operator::oci::OciCredentials::from_config_file(&testdata("oci-config"), "DEFAULT")
            .expect("config");
    let impatient = k8s_oci_operator::oci::HttpOciClient::new(
        credentials,
        &env.emulator.base_url(),
        Duration::from_millis(50),
    )
    .expect("client");
    let error = impatient
        .get_subnet(PODS_SUBNET)
        .await
        .expect_err("times out");
    assert!(
        matches!(error, OciError::Transport { timeout: true, .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
}
