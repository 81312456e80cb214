//! The OCI checks against a fake [`OciNetwork`]: which line each answer
//! gives, what its fix says, and that the check never creates or deletes.

use super::*;
use crate::check::Status;
use crate::check::test_config as config;
use crate::oci::{CreatePublicIpDetails, Deletion, FreeformTags, PublicIpPool};
use std::sync::Mutex;

const COMPARTMENT_ID: &str = "ocid1.compartment.oc1..c";
const SUBNET_ID: &str = "ocid1.subnet.oc1..pods";
const KEY_ID: &str = "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/aa:bb";

fn service(status: u16, code: &str) -> OciError {
    OciError::Service {
        operation: "Fake",
        status,
        code: code.into(),
        message: "m".into(),
        request_id: Some("rid-1".into()),
    }
}

fn not_found() -> OciError {
    service(404, "NotAuthorizedOrNotFound")
}

fn unfaked<T>() -> OciResult<T> {
    Err(OciError::Config("not faked".into()))
}

fn at_rest_ip() -> PublicIp {
    let mut ip = PublicIp::for_test(PublicIpState::Available, None, FreeformTags::new());
    ip.display_name = Some("web".into());
    ip
}

/// Answers as configured and records every call.
struct Fake {
    listing: OciResult<Vec<PublicIp>>,
    subnet: OciResult<Subnet>,
    private_ips: OciResult<Vec<PrivateIp>>,
    attachments: OciResult<Vec<VnicAttachment>>,
    vnic: OciResult<Vnic>,
    update: OciResult<PublicIp>,
    calls: Mutex<Vec<String>>,
    updates: Mutex<Vec<(UpdatePublicIpDetails, Option<String>)>>,
}

impl Fake {
    /// Everything allowed: the probe answers 412 as OCI does for an
    /// authorized update with a wrong If-Match.
    fn good() -> Self {
        Self {
            listing: Ok(vec![at_rest_ip()]),
            subnet: Ok(Subnet {
                id: SUBNET_ID.into(),
                cidr_block: Some("10.0.64.0/18".into()),
                compartment_id: Some("ocid1.compartment.oc1..net".into()),
                vcn_id: Some("ocid1.vcn.oc1..v".into()),
                display_name: Some("pods".into()),
                availability_domain: None,
                prohibit_public_ip_on_vnic: Some(false),
                lifecycle_state: Some("AVAILABLE".into()),
            }),
            private_ips: Ok(vec![]),
            attachments: Ok(vec![VnicAttachment {
                id: "ocid1.vnicattachment.oc1..a".into(),
                instance_id: Some("ocid1.instance.oc1..i".into()),
                vnic_id: Some("ocid1.vnic.oc1..n".into()),
                subnet_id: Some(SUBNET_ID.into()),
                nic_index: Some(0),
                lifecycle_state: Some("ATTACHED".into()),
                compartment_id: Some(COMPARTMENT_ID.into()),
                availability_domain: None,
            }]),
            vnic: Ok(Vnic {
                id: "ocid1.vnic.oc1..n".into(),
                compartment_id: None,
                availability_domain: None,
                subnet_id: Some(SUBNET_ID.into()),
                is_primary: Some(true),
                private_ip: Some("10.0.64.10".into()),
                public_ip: None,
                lifecycle_state: Some("AVAILABLE".into()),
                display_name: None,
                mac_address: None,
            }),
            update: Err(service(412, "NoEtagMatch")),
            calls: Mutex::default(),
            updates: Mutex::default(),
        }
    }

    fn record(&self, call: &str) {
        self.calls.lock().expect("lock").push(call.to_string());
    }

    fn called(&self, call: &str) -> bool {
        self.calls.lock().expect("lock").iter().any(|c| c == call)
    }
}

#[async_trait::async_trait]
impl OciNetwork for Fake {
    async fn create_public_ip(&self, _: &CreatePublicIpDetails, _: &str) -> OciResult<PublicIp> {
        self.record("CreatePublicIp");
        unfaked()
    }
    async fn get_public_ip(&self, _: &str) -> OciResult<PublicIp> {
        self.record("GetPublicIp");
        unfaked()
    }
    async fn get_public_ip_by_ip_address(&self, _: &str) -> OciResult<PublicIp> {
        self.record("GetPublicIpByIpAddress");
        unfaked()
    }
    async fn get_public_ip_by_private_ip_id(&self, _: &str) -> OciResult<Option<PublicIp>> {
        self.record("GetPublicIpByPrivateIpId");
        unfaked()
    }
    async fn update_public_ip(
        &self,
        _: &str,
        details: &UpdatePublicIpDetails,
        if_match: Option<&str>,
    ) -> OciResult<PublicIp> {
        self.record("UpdatePublicIp");
        self.updates
            .lock()
            .expect("lock")
            .push((details.clone(), if_match.map(str::to_string)));
        self.update.clone()
    }
    async fn delete_public_ip(&self, _: &str, _: Option<&str>) -> OciResult<Deletion> {
        self.record("DeletePublicIp");
        unfaked()
    }
    async fn list_public_ips(&self, query: &ListPublicIpsQuery) -> OciResult<Vec<PublicIp>> {
        self.record("ListPublicIps");
        assert_eq!(query.scope, "REGION");
        assert_eq!(query.lifetime, Some(Lifetime::Reserved));
        self.listing.clone()
    }
    async fn list_private_ips(&self, filter: &PrivateIpFilter) -> OciResult<Vec<PrivateIp>> {
        self.record("ListPrivateIps");
        assert!(matches!(filter, PrivateIpFilter::AddressInSubnet { .. }));
        self.private_ips.clone()
    }
    async fn get_private_ip(&self, _: &str) -> OciResult<PrivateIp> {
        self.record("GetPrivateIp");
        unfaked()
    }
    async fn get_vnic(&self, _: &str) -> OciResult<Vnic> {
        self.record("GetVnic");
        self.vnic.clone()
    }
    async fn list_vnic_attachments(
        &self,
        _: &str,
        _: Option<&str>,
    ) -> OciResult<Vec<VnicAttachment>> {
        self.record("ListVnicAttachments");
        self.attachments.clone()
    }
    async fn get_subnet(&self, _: &str) -> OciResult<Subnet> {
        self.record("GetSubnet");
        self.subnet.clone()
    }
    async fn list_public_ip_pools(&self, _: &str) -> OciResult<Vec<PublicIpPool>> {
        self.record("ListPublicIpPools");
        unfaked()
    }
    async fn get_public_ip_pool(&self, _: &str) -> OciResult<PublicIpPool> {
        self.record("GetPublicIpPool");
        unfaked()
    }
}

fn target() -> Target {
    Target {
        endpoint: "https://iaas.eu-frankfurt-1.oraclecloud.com".into(),
        endpoint_source: "OCI_REGION=eu-frankfurt-1".into(),
        compartment_id: COMPARTMENT_ID.into(),
        subnet_ids: vec![SUBNET_ID.into()],
        principal: Principal::ApiKey {
            key_id: KEY_ID.into(),
        },
    }
}

async fn run(fake: &Fake) -> Vec<CheckLine> {
    probe(fake, &target(), true).await
}

fn line<'a>(lines: &'a [CheckLine], name: &str) -> &'a CheckLine {
    lines
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no line {name} in {lines:#?}"))
}

fn fix(line: &CheckLine) -> &str {
    line.fix.as_deref().unwrap_or("")
}

#[tokio::test]
async fn check_all_good_is_ok_and_changes_nothing() {
    let fake = Fake::good();
    let lines = run(&fake).await;
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    let private_ips = private_ips_name(SUBNET_ID);
    let subnet = subnet_name(SUBNET_ID);
    assert_eq!(
        names,
        [
            ENDPOINT,
            AUTHENTICATION,
            COMPARTMENT,
            subnet.as_str(),
            private_ips.as_str(),
            VNIC_ATTACHMENTS,
            VNIC,
            UPDATE_PUBLIC_IPS,
            OTHER_WRITES
        ]
    );
    for l in &lines[..lines.len() - 1] {
        assert_eq!(l.status, Status::Ok, "{l:#?}");
    }
    // What cannot be checked says so, with the statements it needs.
    let other = line(&lines, OTHER_WRITES);
    assert_eq!(other.status, Status::NotChecked);
    assert!(fix(other).contains("manage public-ips"), "{other:#?}");
    assert!(fix(other).contains("use private-ips"), "{other:#?}");
    // The probe: a never-matching If-Match and the current display name.
    let updates = fake.updates.lock().expect("lock").clone();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].1.as_deref(), Some(NEVER_MATCHING_ETAG));
    assert_eq!(updates[0].0.display_name.as_deref(), Some("web"));
    assert_eq!(updates[0].0.private_ip_id, None, "never moves an IP");
    assert!(!fake.called("CreatePublicIp"));
    assert!(!fake.called("DeletePublicIp"));
}

#[tokio::test]
async fn check_wrong_key_fails_authentication_naming_the_key_id() {
    let fake = Fake {
        listing: Err(service(401, "NotAuthenticated")),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    assert_eq!(line(&lines, ENDPOINT).status, Status::Ok);
    let auth = line(&lines, AUTHENTICATION);
    assert_eq!(auth.status, Status::Fail);
    assert!(auth.detail.contains(KEY_ID), "{auth:#?}");
    assert!(fix(auth).contains("fingerprint"), "{auth:#?}");
    // Everything after it is not checked, for that one reason.
    for l in lines.iter().skip(2) {
        assert_eq!(l.status, Status::NotChecked, "{l:#?}");
    }
    assert_eq!(
        line(&lines, COMPARTMENT).detail,
        "oci authentication failed"
    );
    assert!(!fake.called("GetSubnet"));
    assert!(!fake.called("UpdatePublicIp"));
}

#[tokio::test]
async fn check_unreachable_endpoint_names_the_endpoint_and_settings() {
    let fake = Fake {
        listing: Err(OciError::Transport {
            operation: "ListPublicIps",
            timeout: false,
            elapsed: Duration::from_millis(3),
            message: "connection refused".into(),
        }),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    let endpoint = line(&lines, ENDPOINT);
    assert_eq!(endpoint.status, Status::Fail);
    assert!(endpoint.detail.contains("connection refused"));
    assert!(fix(endpoint).contains("OCI_REGION"), "{endpoint:#?}");
    assert!(fix(endpoint).contains("OCI_ENDPOINT"), "{endpoint:#?}");
    assert!(
        fix(endpoint).contains("iaas.eu-frankfurt-1"),
        "{endpoint:#?}"
    );
    assert_eq!(line(&lines, AUTHENTICATION).status, Status::NotChecked);
    assert_eq!(line(&lines, COMPARTMENT).detail, "oci endpoint failed");
    assert_eq!(
        lines.iter().filter(|l| l.status == Status::Fail).count(),
        1,
        "one cause, one failure: {lines:#?}"
    );
}

#[tokio::test]
async fn check_wrong_compartment_says_both_causes_and_the_statement() {
    let fake = Fake {
        listing: Err(not_found()),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    let compartment = line(&lines, COMPARTMENT);
    assert_eq!(compartment.status, Status::Fail);
    assert!(compartment.detail.contains("rid-1"), "opc-request-id");
    assert!(fix(compartment).contains("OCI_COMPARTMENT_ID"));
    assert!(fix(compartment).contains(&format!(
        "Allow group <a group with user ocid1.user.oc1..u> to manage public-ips in compartment id {COMPARTMENT_ID}"
    )));
    // Subnets have their own IAM: still checked. The compartment's VNICs and the probe are not.
    assert_eq!(line(&lines, &subnet_name(SUBNET_ID)).status, Status::Ok);
    for name in [VNIC_ATTACHMENTS, VNIC, UPDATE_PUBLIC_IPS] {
        assert_eq!(line(&lines, name).status, Status::NotChecked, "{name}");
        assert_eq!(line(&lines, name).detail, "oci compartment failed");
    }
}

#[tokio::test]
async fn check_missing_private_ip_permission_fails_with_use_private_ips() {
    let fake = Fake {
        private_ips: Err(not_found()),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    let private_ips = line(&lines, &private_ips_name(SUBNET_ID));
    assert_eq!(private_ips.status, Status::Fail);
    assert!(
        fix(private_ips)
            .contains("to use private-ips in compartment id ocid1.compartment.oc1..net"),
        "{private_ips:#?}"
    );
    assert!(private_ips.detail.contains("10.0.64.1"), "{private_ips:#?}");
}

#[tokio::test]
async fn check_missing_subnet_fails_and_skips_its_private_ips() {
    let fake = Fake {
        subnet: Err(not_found()),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    let subnet = line(&lines, &subnet_name(SUBNET_ID));
    assert_eq!(subnet.status, Status::Fail);
    assert!(fix(subnet).contains("OCI_SUBNET_IDS"));
    assert!(fix(subnet).contains("read subnets"));
    assert_eq!(
        line(&lines, &private_ips_name(SUBNET_ID)).status,
        Status::NotChecked
    );
    assert!(!fake.called("ListPrivateIps"));
}

#[tokio::test]
async fn check_private_subnet_fails() {
    let mut fake = Fake::good();
    if let Ok(subnet) = &mut fake.subnet {
        subnet.prohibit_public_ip_on_vnic = Some(true);
    }
    let lines = run(&fake).await;
    let subnet = line(&lines, &subnet_name(SUBNET_ID));
    assert_eq!(subnet.status, Status::Fail);
    assert!(subnet.detail.contains("private subnet"));
}

#[tokio::test]
async fn check_vnic_lines() {
    let fake = Fake {
        attachments: Ok(vec![]),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    assert_eq!(line(&lines, VNIC_ATTACHMENTS).status, Status::Ok);
    let vnic = line(&lines, VNIC);
    assert_eq!(vnic.status, Status::NotChecked);
    assert_eq!(vnic.detail, "no VNIC attachment in the compartment");

    let fake = Fake {
        attachments: Err(not_found()),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    assert!(fix(line(&lines, VNIC_ATTACHMENTS)).contains("read vnic-attachments"));
    assert_eq!(line(&lines, VNIC).status, Status::NotChecked);

    let fake = Fake {
        vnic: Err(not_found()),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    assert!(fix(line(&lines, VNIC)).contains("read vnics"));
}

#[tokio::test]
async fn check_write_probe_interprets_412_404_409() {
    let fake = Fake {
        update: Err(not_found()),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    let update = line(&lines, UPDATE_PUBLIC_IPS);
    assert_eq!(update.status, Status::Fail);
    assert!(fix(update).contains("manage public-ips"));

    let fake = Fake {
        update: Err(service(409, "IncorrectState")),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    assert_eq!(line(&lines, UPDATE_PUBLIC_IPS).status, Status::NotChecked);

    // No IP at rest to probe with: not checked, never created.
    let fake = Fake {
        listing: Ok(vec![PublicIp::for_test(
            PublicIpState::Assigning,
            Some("p"),
            FreeformTags::new(),
        )]),
        ..Fake::good()
    };
    let lines = run(&fake).await;
    let update = line(&lines, UPDATE_PUBLIC_IPS);
    assert_eq!(update.status, Status::NotChecked);
    assert!(fix(update).contains("manage public-ips"));
    assert!(!fake.called("UpdatePublicIp"));
    assert!(!fake.called("CreatePublicIp"));
}

#[tokio::test]
async fn check_write_probe_can_be_skipped() {
    let fake = Fake::good();
    let lines = probe(&fake, &target(), false).await;
    assert_eq!(line(&lines, UPDATE_PUBLIC_IPS).status, Status::NotChecked);
    assert!(!fake.called("UpdatePublicIp"));
}

#[tokio::test]
async fn check_without_subnets_says_so_once() {
    let fake = Fake::good();
    let target = Target {
        subnet_ids: vec![],
        ..target()
    };
    let lines = probe(&fake, &target, true).await;
    let subnets = line(&lines, SUBNETS);
    assert_eq!(subnets.status, Status::NotChecked);
    assert!(subnets.detail.contains("OCI_SUBNET_IDS"));
}

#[test]
fn check_no_change_repeats_the_current_values() {
    let ip = at_rest_ip();
    let body = serde_json::to_value(no_change(&ip)).expect("encodes");
    assert_eq!(body, serde_json::json!({"displayName": "web"}));
    let mut unnamed = at_rest_ip();
    unnamed.display_name = None;
    unnamed.freeform_tags.insert("owner".into(), "me".into());
    let body = serde_json::to_value(no_change(&unnamed)).expect("encodes");
    assert_eq!(body, serde_json::json!({"freeformTags": {"owner": "me"}}));
}

#[test]
fn check_probe_address_is_the_subnets_first_host() {
    let Ok(subnet) = Fake::good().subnet else {
        panic!("fake subnet")
    };
    assert_eq!(probe_address(&subnet).as_deref(), Some("10.0.64.1"));
    let none = Subnet {
        cidr_block: None,
        ..subnet
    };
    assert_eq!(probe_address(&none), None);
}

#[test]
fn check_instance_principal_statements_name_a_dynamic_group() {
    let text = statement(&Principal::Instance, "manage public-ips", "c");
    assert_eq!(
        text,
        "Allow dynamic-group <a dynamic group matching the nodes> to manage public-ips in compartment id c"
    );
}

/// The fixes follow `oci::auth`'s messages: produce each real error and
/// check the fix names the setting to change.
#[test]
fn check_credentials_fix_names_the_file_profile_and_field() {
    let dir = std::env::temp_dir().join(format!("check-creds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("config");
    let fix_for = |profile: &str| {
        let message = match OciCredentials::from_config_file(&config, profile) {
            Err(OciError::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        };
        (
            credentials_fix(AuthMode::ConfigFile, profile, &message),
            message,
        )
    };

    let (fix, message) = fix_for("DEFAULT");
    assert!(message.contains(&config.display().to_string()), "{message}");
    assert!(fix.contains("OCI_CONFIG_FILE"), "{fix}");

    // The key file exists (but is no key): the missing field is reported first.
    std::fs::write(dir.join("key.pem"), "not a key").expect("write");
    std::fs::write(&config, "[DEFAULT]\nuser=u\ntenancy=t\nkey_file=key.pem\n").expect("write");
    let (fix, _) = fix_for("OTHER");
    assert!(
        fix.contains("[OTHER]") && fix.contains("OCI_PROFILE"),
        "{fix}"
    );
    let (fix, message) = fix_for("DEFAULT");
    assert!(message.contains("fingerprint"), "{message}");
    assert!(fix.contains("fingerprint="), "{fix}");

    std::fs::write(
        &config,
        "[DEFAULT]\nuser=u\ntenancy=t\nfingerprint=f\nkey_file=missing.pem\n",
    )
    .expect("write");
    let (fix, _) = fix_for("DEFAULT");
    assert!(fix.starts_with("key_file must name a readable"), "{fix}");

    std::fs::write(
        &config,
        "[DEFAULT]\nuser=u\ntenancy=t\nfingerprint=f\nkey_file=key.pem\n",
    )
    .expect("write");
    let (fix, message) = fix_for("DEFAULT");
    assert!(!message.contains("not a key"), "never quotes the key");
    assert!(fix.contains("RSA private key (PEM"), "{fix}");

    // An encrypted key: without pass_phrase, with a wrong one, and a
    // pass_phrase given for a plain key.
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
    let encrypted = rsa::pkcs8::EncodePrivateKey::to_pkcs8_encrypted_pem(
        &key,
        &mut rand::thread_rng(),
        "right",
        rsa::pkcs8::LineEnding::LF,
    )
    .expect("encrypts");
    std::fs::write(dir.join("key.pem"), encrypted.as_bytes()).expect("write");
    std::fs::write(
        &config,
        "[DEFAULT]\nuser=u\ntenancy=t\nfingerprint=f\nkey_file=key.pem\n",
    )
    .expect("write");
    let (fix, _) = fix_for("DEFAULT");
    assert!(fix.contains("add `pass_phrase=...`"), "{fix}");
    std::fs::write(
        &config,
        "[DEFAULT]\nuser=u\ntenancy=t\nfingerprint=f\nkey_file=key.pem\npass_phrase=wrong\n",
    )
    .expect("write");
    let (fix, _) = fix_for("DEFAULT");
    assert!(fix.contains("does not decrypt"), "{fix}");
    std::fs::write(
        &config,
        "[DEFAULT]\nuser=u\ntenancy=t\nfingerprint=f\nkey_file=key.pem\npass_phrase=right\n",
    )
    .expect("write");
    assert!(
        OciCredentials::from_config_file(&config, "DEFAULT").is_ok(),
        "the right passphrase opens the key"
    );
    let plain =
        rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key, rsa::pkcs8::LineEnding::LF).expect("pem");
    std::fs::write(dir.join("key.pem"), plain.as_bytes()).expect("write");
    let (fix, _) = fix_for("DEFAULT");
    assert!(fix.contains("remove pass_phrase"), "{fix}");
    let _ = std::fs::remove_dir_all(&dir);
}

const TEST_KEY: &str = include_str!("../../../../tests/oci-emulator/testdata/oci_api_key.pem");
const TEST_FINGERPRINT: &str = "2a:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6";

fn credentials_in(region: Option<&str>) -> OciCredentials {
    OciCredentials::from_api_key(
        "ocid1.tenancy.oc1..t",
        "ocid1.user.oc1..u",
        TEST_FINGERPRINT,
        TEST_KEY,
        region.map(str::to_string),
    )
    .expect("test key")
}

#[test]
fn check_endpoint_follows_the_region_by_key_or_name_in_its_realm() {
    let by_key = endpoint_of(&config(&["--region", "FRA"]), &credentials_in(None));
    assert_eq!(
        by_key,
        Ok((
            "https://iaas.eu-frankfurt-1.oraclecloud.com".to_string(),
            "OCI_REGION=FRA".to_string()
        ))
    );
    let gov = endpoint_of(&config(&[]), &credentials_in(Some("us-gov-ashburn-1")));
    assert_eq!(
        gov.map(|(endpoint, _)| endpoint),
        Ok("https://iaas.us-gov-ashburn-1.oraclegovcloud.com".to_string())
    );
    let (detail, fix) = endpoint_of(&config(&["--region", "frankfurt"]), &credentials_in(None))
        .expect_err("unknown");
    assert!(
        detail.starts_with("OCI_REGION=frankfurt: unknown OCI region"),
        "{detail}"
    );
    assert!(fix.contains("OCI_REGION_METADATA"), "{fix}");
    let (_, fix) = endpoint_of(&config(&[]), &credentials_in(None)).expect_err("no region");
    assert!(fix.contains("fra") && fix.contains("Secret"), "{fix}");
}

/// Each `--auth api-key` error, produced for real, gets a fix naming its
/// setting and the chart's Secret key.
#[test]
fn check_api_key_fields_fix_names_the_setting_and_the_secret_key() {
    let dir = std::env::temp_dir().join(format!("check-api-key-fields-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key_file = dir.join("key");
    std::fs::write(&key_file, TEST_KEY).expect("write");
    let good = crate::oci::ApiKeyFields {
        tenancy: Some("ocid1.tenancy.oc1..t".into()),
        user: Some("ocid1.user.oc1..u".into()),
        fingerprint: Some(TEST_FINGERPRINT.into()),
        region: None,
        private_key_file: Some(key_file.clone()),
        passphrase: None,
        passphrase_file: None,
    };
    assert!(good.load().is_ok());
    let fix_for = |change: &dyn Fn(&mut crate::oci::ApiKeyFields)| {
        let mut fields = good.clone();
        change(&mut fields);
        let message = fields.load().map(|_| ()).expect_err("refused").to_string();
        let fix = credentials_fix(AuthMode::ApiKey, "DEFAULT", &message);
        (fix, message)
    };
    for (change, expected) in [
        (
            (|f: &mut crate::oci::ApiKeyFields| f.tenancy = None)
                as fn(&mut crate::oci::ApiKeyFields),
            ["set OCI_TENANCY_ID", "key `tenancy`"],
        ),
        (
            |f| f.tenancy = Some("ocid1.compartment.oc1..c".into()),
            ["set OCI_TENANCY_ID", "key `tenancy`"],
        ),
        (|f| f.user = None, ["set OCI_USER_ID", "key `user`"]),
        (
            |f| f.fingerprint = Some("aa:bb".into()),
            ["set OCI_FINGERPRINT", "key `fingerprint`"],
        ),
        (
            |f| f.fingerprint = Some("00:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6".into()),
            ["two different API keys", "key `key`"],
        ),
        (
            |f| f.private_key_file = None,
            ["set OCI_PRIVATE_KEY_FILE", "key `key`"],
        ),
        (
            |f| f.private_key_file = Some("/nowhere/key".into()),
            ["set OCI_PRIVATE_KEY_FILE", "key `key`"],
        ),
        (
            |f| f.passphrase = Some("p".into()),
            ["not encrypted", "`passphrase`"],
        ),
    ] {
        let (fix, message) = fix_for(&change);
        for part in expected {
            assert!(fix.contains(part), "{message}: {fix}");
        }
    }
    let (fix, _) = fix_for(&|f| {
        f.passphrase = Some("p".into());
        f.passphrase_file = Some("/nowhere/passphrase".into());
    });
    assert!(
        fix.starts_with("unset OCI_PRIVATE_KEY_PASSPHRASE or"),
        "{fix}"
    );
    std::fs::write(&key_file, "garbage").expect("write");
    let (fix, _) = fix_for(&|_| {});
    assert!(fix.contains("RSA private key (PEM"), "{fix}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_session_profile_fixes_say_what_to_run() {
    use base64::Engine as _;
    let dir = std::env::temp_dir().join(format!("check-session-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config_file = dir.join("config");
    std::fs::write(dir.join("key.pem"), TEST_KEY).expect("write");
    std::fs::write(
        &config_file,
        "[dev]\nfingerprint=f\ntenancy=t\nkey_file=key.pem\nsecurity_token_file=token\n",
    )
    .expect("write");
    let fix_for = || {
        let message = match OciCredentials::from_config_file(&config_file, "dev") {
            Err(OciError::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        };
        credentials_fix(AuthMode::ConfigFile, "dev", &message)
    };
    let fix = fix_for();
    assert!(
        fix.starts_with("security_token_file of profile [dev]"),
        "{fix}"
    );
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"exp":1000}"#);
    std::fs::write(dir.join("token"), format!("e30.{claims}.c2ln")).expect("write");
    let fix = fix_for();
    assert!(
        fix.starts_with("run `oci session authenticate --profile-name dev`"),
        "{fix}"
    );
    std::fs::write(dir.join("key.pem"), "garbage").expect("write");
    let fix = fix_for();
    assert!(fix.contains("session key"), "{fix}");
    let _ = std::fs::remove_dir_all(&dir);
}
