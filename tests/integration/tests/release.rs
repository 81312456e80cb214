//! The one release routine (`controller::release`, used by a ReservedIP's
//! delete and by the orphan sweep), against the OCI emulator through the
//! operator's own signed client. No cluster needed.
//!
//! A delete with the etag of the IP as last seen at rest is one call; OCI
//! refuses it if the IP changed in any way since, and the release goes on
//! from a fresh read, which never releases an IP that is no longer ours.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_oci_operator::api::crd::ReclaimPolicy;
use k8s_oci_operator::controller::release::{Released, release};
use k8s_oci_operator::decide::ownership::{Holder, Owner, TAG_CLAIMABLE_BY, TAG_RELEASABLE};
use k8s_oci_operator::oci::{
    CreatePublicIpDetails, HttpOciClient, OciCredentials, OciNetwork, PublicIp, PublicIpState,
    UpdatePublicIpDetails,
};
use oci_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Seed, Timing};

const DELETE: (Option<ReclaimPolicy>, &str) = (None, OWNER.namespace);
const RETAIN: (Option<ReclaimPolicy>, &str) = (Some(ReclaimPolicy::Retain), OWNER.namespace);

const OWNER: Owner<'static> = Owner {
    cluster: "c1",
    namespace: "team-a",
    name: "web",
    uid: "u1",
};

async fn setup() -> Result<(EmulatorHandle, HttpOciClient)> {
    let emulator =
        Emulator::start(EmulatorConfig::with_seed(Seed::sandbox()?).timing(Timing::fast())).await?;
    let config = oci_emulator::crate_dir()
        .join("testdata")
        .join("oci-config");
    let oci = HttpOciClient::new(
        OciCredentials::from_config_file(&config, "DEFAULT")?,
        &emulator.base_url(),
        Duration::from_secs(5),
    )?;
    Ok((emulator, oci))
}

/// A reserved IP with `OWNER`'s tags, read back at rest (with its etag).
async fn our_ip(oci: &HttpOciClient) -> Result<PublicIp> {
    let details = CreatePublicIpDetails {
        freeform_tags: Some(OWNER.desired_tags(&BTreeMap::new(), None)),
        ..CreatePublicIpDetails::reserved(integration_tests::COMPARTMENT)
    };
    let created = oci.create_public_ip(&details, "release-test").await?;
    for _ in 0..100 {
        let ip = oci.get_public_ip(&created.id).await?;
        if !ip.lifecycle_state.is_transitional() {
            return Ok(ip);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the public IP never came to rest")
}

fn ours(ip: &PublicIp) -> bool {
    OWNER.classify(ip) == Holder::Us
}

fn calls(emulator: &EmulatorHandle, operation: &str) -> u64 {
    emulator.calls().total(operation)
}

#[tokio::test]
async fn an_ip_seen_at_rest_is_deleted_in_one_call() -> Result<()> {
    let (emulator, oci) = setup().await?;
    let ip = our_ip(&oci).await?;
    let etag = ip.etag.clone().context("a read carries an etag")?;
    emulator.reset_calls();
    let released = release(&oci, &ip.id, ours, DELETE, Some(&etag)).await?;
    ensure!(
        matches!(released, Released::Done { kept: false, .. }),
        "{released:?}"
    );
    assert_eq!(calls(&emulator, "DeletePublicIp"), 1);
    assert_eq!(calls(&emulator, "GetPublicIp"), 0, "no read first");
    Ok(())
}

#[tokio::test]
async fn an_ip_changed_since_is_read_first_and_still_released_if_ours() -> Result<()> {
    let (emulator, oci) = setup().await?;
    let ip = our_ip(&oci).await?;
    let stale = ip.etag.clone().context("etag")?;
    let mut tags = ip.freeform_tags.clone();
    tags.insert("cost-center".into(), "ops".into());
    let retag = UpdatePublicIpDetails {
        freeform_tags: Some(tags),
        ..Default::default()
    };
    oci.update_public_ip(&ip.id, &retag, None).await?;
    emulator.reset_calls();
    let released = release(&oci, &ip.id, ours, DELETE, Some(&stale)).await?;
    ensure!(matches!(released, Released::Done { .. }), "{released:?}");
    assert_eq!(
        calls(&emulator, "DeletePublicIp"),
        2,
        "refused with the stale etag, then made with the fresh one"
    );
    assert_eq!(calls(&emulator, "GetPublicIp"), 1);
    Ok(())
}

#[tokio::test]
async fn an_ip_that_is_no_longer_ours_is_never_released() -> Result<()> {
    let (emulator, oci) = setup().await?;
    let ip = our_ip(&oci).await?;
    let stale = ip.etag.clone().context("etag")?;
    // Re-tagged for another ReservedIP behind the operator's back.
    let mut tags = ip.freeform_tags.clone();
    tags.insert(
        k8s_oci_operator::decide::ownership::TAG_UID.into(),
        "u2".into(),
    );
    let retag = UpdatePublicIpDetails {
        freeform_tags: Some(tags),
        ..Default::default()
    };
    oci.update_public_ip(&ip.id, &retag, None).await?;
    let released = release(&oci, &ip.id, ours, DELETE, Some(&stale)).await?;
    assert_eq!(released, Released::Skipped);
    let left = oci.get_public_ip(&ip.id).await?;
    ensure!(!left.lifecycle_state.is_gone(), "released: {left:?}");
    // Without a remembered etag: the same.
    assert_eq!(
        release(&oci, &ip.id, ours, DELETE, None).await?,
        Released::Skipped
    );
    let _ = emulator;
    Ok(())
}

#[tokio::test]
async fn a_kept_ip_is_unassigned_then_untagged_never_deleted() -> Result<()> {
    let (emulator, oci) = setup().await?;
    let ip = our_ip(&oci).await?;
    let private_ip = oci
        .list_private_ips(&k8s_oci_operator::oci::PrivateIpFilter::AddressInSubnet {
            subnet_id: "ocid1.subnet.oc1.sandbox.pods".into(),
            ip_address: "10.0.65.7".into(),
        })
        .await?
        .into_iter()
        .next()
        .context("a pod private IP of the seed's node0")?;
    oci.update_public_ip(&ip.id, &UpdatePublicIpDetails::assign(&private_ip.id), None)
        .await?;
    let mut released = Released::Skipped;
    for _ in 0..100 {
        released = release(&oci, &ip.id, ours, RETAIN, ip.etag.as_deref()).await?;
        if matches!(released, Released::Done { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        matches!(released, Released::Done { kept: true, .. }),
        "{released:?}"
    );
    let left = oci.get_public_ip(&ip.id).await?;
    assert!(left.lifecycle_state.is_free(), "{:?}", left.lifecycle_state);
    assert_eq!(left.assigned_entity_id, None);
    // Ownership tags gone; only its namespace may claim it back.
    let mut keys: Vec<&str> = left.freeform_tags.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [TAG_CLAIMABLE_BY, TAG_RELEASABLE],
        "{:?}",
        left.freeform_tags
    );
    assert_eq!(left.freeform_tags[TAG_CLAIMABLE_BY], OWNER.namespace);
    assert_eq!(calls(&emulator, "DeletePublicIp"), 0);
    assert_ne!(left.lifecycle_state, PublicIpState::Terminated);
    Ok(())
}
