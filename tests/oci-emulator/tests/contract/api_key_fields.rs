//! `--auth api-key`: an API key given field by field (as the chart passes a
//! Secret of separate fields), against the emulator's signature checks.

use crate::support::{COMPARTMENT, client_signing_with, start, testdata};
use k8s_oci_operator::oci::{
    ApiKeyFields, ListPublicIpsQuery, OciCredentials, OciNetwork, SignerImplementation,
};

/// The sandbox key's fields, as testdata/oci-config names them.
fn sandbox_fields() -> ApiKeyFields {
    ApiKeyFields {
        tenancy: Some("ocid1.tenancy.oc1..sandbox\n".into()),
        user: Some("ocid1.user.oc1..sandbox\n".into()),
        fingerprint: Some("2a:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6".into()),
        region: Some("iad".into()),
        private_key_file: Some(testdata("oci_api_key.pem")),
        passphrase: None,
        // The Secret has no `passphrase`: the file is absent.
        passphrase_file: Some(testdata("no-such-passphrase")),
    }
}

#[tokio::test]
async fn fields_of_a_secret_sign_as_the_config_file_does() {
    let env = start().await;
    let credentials =
        OciCredentials::from_api_key_fields(&sandbox_fields(), SignerImplementation::Builtin)
            .expect("the sandbox key's fields");
    assert_eq!(credentials.region(), Some("iad"));
    let client = client_signing_with(&env.emulator, credentials);
    client
        .list_public_ips(&ListPublicIpsQuery::region(COMPARTMENT))
        .await
        .expect("accepted");

    // Another user's OCID with this key: OCI does not know the keyId.
    let other = ApiKeyFields {
        user: Some("ocid1.user.oc1..someone-else".into()),
        ..sandbox_fields()
    };
    let client = client_signing_with(
        &env.emulator,
        OciCredentials::from_api_key_fields(&other, SignerImplementation::Builtin)
            .expect("well-formed"),
    );
    let error = client
        .list_public_ips(&ListPublicIpsQuery::region(COMPARTMENT))
        .await
        .expect_err("unknown keyId");
    assert_eq!(error.status(), Some(401), "{error}");
    env.emulator.shutdown().await;
}
