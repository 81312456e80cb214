//! The identities behind the emulated auth services, made once per start:
//!
//! - the instance principal: an "instance CA" (self-signed), an intermediate
//!   it signs, and a leaf certificate with an RSA 2048 key that the
//!   intermediate signs. The leaf's subject names the instance and the
//!   tenancy the way OCI's SDKs read them: `OU=opc-instance:<instance ocid>`
//!   and `OU=opc-tenant:<tenancy ocid>`;
//! - a "cluster CA" and the proxymux's TLS server certificate (127.0.0.1 and
//!   `localhost`), as a pod trusts OKE's proxymux through its ServiceAccount's
//!   `ca.crt`.
//!
//! Also [`IdentityConfig`], what the auth services say about the instance
//! (tenancy, region, realm) and how they issue sessions.

use crate::signature::colon_hex;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use std::fmt;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

/// organizationalUnitName (2.5.4.11). rcgen keeps one value per attribute
/// type, so the leaf's second OU goes in as a custom type with the same OID.
const OU_OID: &[u64] = &[2, 5, 4, 11];

/// Bits of the instance leaf's RSA key (what OCI's instance certificates use).
const LEAF_KEY_BITS: usize = 2048;

/// What the auth services say about the instance and how they issue sessions.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// The tenancy in the leaf certificate (`opc-tenant:`) and in tokens.
    pub tenancy_id: String,
    /// The instance the metadata service describes (`opc-instance:`, `instance/id`).
    pub instance_id: String,
    /// `instance/region` and `regionIdentifier` (e.g. `us-ashburn-1`).
    pub region: String,
    /// `regionKey` (e.g. `IAD`).
    pub region_key: String,
    /// `realmKey` (e.g. `oc1`).
    pub realm_key: String,
    /// `realmDomainComponent` (e.g. `oraclecloud.com`).
    pub realm_domain: String,
    /// Lifetime of session tokens issued from now on (both flows).
    pub session_ttl: Duration,
    /// Where the proxymux's TLS listener listens (port 0 picks one).
    pub proxymux_listen: SocketAddr,
    /// Bearer tokens the proxymux accepts; empty accepts any non-empty one.
    pub service_account_tokens: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            tenancy_id: "ocid1.tenancy.oc1..emulator".into(),
            instance_id: "ocid1.instance.oc1.iad.emulator".into(),
            region: "us-ashburn-1".into(),
            region_key: "IAD".into(),
            realm_key: "oc1".into(),
            realm_domain: "oraclecloud.com".into(),
            session_ttl: Duration::from_secs(20 * 60),
            proxymux_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            service_account_tokens: Vec::new(),
        }
    }
}

/// Why the identity material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot generate the instance certificate's RSA key: {0}")]
    KeyGeneration(#[from] rsa::Error),
    #[error("cannot encode the instance certificate's RSA key: {0}")]
    KeyEncoding(String),
    #[error("cannot make the {what}: {source}")]
    Certificate {
        what: &'static str,
        source: rcgen::Error,
    },
}

/// Maps an rcgen error to the step it failed in.
fn step(what: &'static str) -> impl FnOnce(rcgen::Error) -> IdentityError {
    move |source| IdentityError::Certificate { what, source }
}

/// Certificates and keys the auth services hand out or serve with.
/// `Debug` leaves the private keys out.
pub struct IdentityMaterial {
    leaf_pem: String,
    leaf_der: Vec<u8>,
    leaf_key_pem: String,
    leaf_public_key: RsaPublicKey,
    leaf_fingerprint: String,
    intermediate_pem: String,
    intermediate_der: Vec<u8>,
    cluster_ca_pem: String,
    tls_cert_der: Vec<u8>,
    tls_key_der: Vec<u8>,
}

impl fmt::Debug for IdentityMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityMaterial")
            .field("leaf_fingerprint", &self.leaf_fingerprint)
            .finish_non_exhaustive()
    }
}

impl IdentityMaterial {
    /// Makes every certificate, and every key but the leaf's RSA key (see
    /// [`leaf_rsa_key`]); the CAs and the TLS key are ECDSA P-256.
    pub fn generate(config: &IdentityConfig) -> Result<Self, IdentityError> {
        let rsa_key = leaf_rsa_key()?;
        let leaf_public_key = rsa_key.to_public_key();
        let leaf_key_pem = rsa_key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| IdentityError::KeyEncoding(e.to_string()))?
            .to_string();
        let leaf_key = KeyPair::from_pem(&leaf_key_pem).map_err(step("instance key pair"))?;

        let instance_ca = CertifiedIssuer::self_signed(
            ca_params("OCI emulator instance CA", BasicConstraints::Unconstrained),
            KeyPair::generate().map_err(step("instance CA key"))?,
        )
        .map_err(step("instance CA certificate"))?;
        let intermediate = CertifiedIssuer::signed_by(
            ca_params(
                "OCI emulator instance intermediate",
                BasicConstraints::Constrained(0),
            ),
            KeyPair::generate().map_err(step("intermediate key"))?,
            &instance_ca,
        )
        .map_err(step("intermediate certificate"))?;
        let leaf = leaf_params(config)
            .signed_by(&leaf_key, &intermediate)
            .map_err(step("instance leaf certificate"))?;

        let cluster_ca = CertifiedIssuer::self_signed(
            ca_params("OCI emulator cluster CA", BasicConstraints::Unconstrained),
            KeyPair::generate().map_err(step("cluster CA key"))?,
        )
        .map_err(step("cluster CA certificate"))?;
        let tls_key = KeyPair::generate().map_err(step("proxymux TLS key"))?;
        let tls_cert = tls_params()
            .map_err(step("proxymux TLS certificate"))?
            .signed_by(&tls_key, &cluster_ca)
            .map_err(step("proxymux TLS certificate"))?;

        let leaf_der = leaf.der().to_vec();
        Ok(Self {
            leaf_pem: leaf.pem(),
            leaf_fingerprint: certificate_fingerprint(&leaf_der),
            leaf_der,
            leaf_key_pem,
            leaf_public_key,
            intermediate_pem: intermediate.pem(),
            intermediate_der: intermediate.der().to_vec(),
            cluster_ca_pem: cluster_ca.pem(),
            tls_cert_der: tls_cert.der().to_vec(),
            tls_key_der: tls_key.serialize_der(),
        })
    }

    /// The instance leaf certificate, PEM (`identity/cert.pem`).
    pub fn leaf_pem(&self) -> &str {
        &self.leaf_pem
    }

    /// The instance leaf certificate, DER (what federation must be sent).
    pub fn leaf_der(&self) -> &[u8] {
        &self.leaf_der
    }

    /// The leaf's private key, PKCS#8 PEM (`identity/key.pem`).
    pub fn leaf_key_pem(&self) -> &str {
        &self.leaf_key_pem
    }

    /// The leaf's public key, which verifies federation requests.
    pub fn leaf_public_key(&self) -> &RsaPublicKey {
        &self.leaf_public_key
    }

    /// SHA-1 of the leaf's DER as colon-separated lowercase hex, the
    /// fingerprint in the federation keyId.
    pub fn leaf_fingerprint(&self) -> &str {
        &self.leaf_fingerprint
    }

    /// The intermediate certificate, PEM (`identity/intermediate.pem`).
    pub fn intermediate_pem(&self) -> &str {
        &self.intermediate_pem
    }

    /// The intermediate certificate, DER.
    pub fn intermediate_der(&self) -> &[u8] {
        &self.intermediate_der
    }

    /// The cluster CA that signs the proxymux's TLS certificate, PEM.
    pub fn cluster_ca_pem(&self) -> &str {
        &self.cluster_ca_pem
    }

    /// The proxymux's TLS certificate, DER.
    pub fn tls_cert_der(&self) -> &[u8] {
        &self.tls_cert_der
    }

    /// The proxymux's TLS private key, PKCS#8 DER.
    pub fn tls_key_der(&self) -> &[u8] {
        &self.tls_key_der
    }
}

/// The instance leaf's RSA key, generated once per process and shared by
/// every emulator it starts: RSA generation takes most of a second in a debug
/// build, and test suites start an emulator per test. The certificates, and
/// so their fingerprints, are still new per start.
fn leaf_rsa_key() -> Result<&'static RsaPrivateKey, IdentityError> {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    if let Some(key) = KEY.get() {
        return Ok(key);
    }
    // Two first starts at once may both generate; one key wins, both are fine.
    let key = RsaPrivateKey::new(&mut rand::thread_rng(), LEAF_KEY_BITS)?;
    Ok(KEY.get_or_init(|| key))
}

/// SHA-1 of a certificate's DER as colon-separated lowercase hex: the
/// fingerprint OCI's X.509 federation keyId carries.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    colon_hex(digest.as_ref())
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// A random positive serial: rcgen's default derives it from the public key,
/// which would repeat if a key were ever reused.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

fn ca_params(name: &str, constraints: BasicConstraints) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(constraints);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    params
}

/// The instance leaf: CN is the instance; the two OUs carry the instance and
/// the tenancy (SDKs take the tenancy from any value starting `opc-tenant:`).
fn leaf_params(config: &IdentityConfig) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = common_name(&config.instance_id);
    dn.push(
        DnType::OrganizationalUnitName,
        format!("opc-instance:{}", config.instance_id),
    );
    dn.push(
        DnType::CustomDnType(OU_OID.to_vec()),
        format!("opc-tenant:{}", config.tenancy_id),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    params
}

/// The proxymux's server certificate: clients connect to 127.0.0.1 (as pods
/// connect to KUBERNETES_SERVICE_HOST, an address) or `localhost`.
fn tls_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])?;
    params.distinguished_name = common_name("oci-emulator proxymux");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;

    #[test]
    fn material_is_consistent() {
        let config = IdentityConfig::default();
        let material = IdentityMaterial::generate(&config).expect("generates");
        assert!(
            material
                .leaf_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(
            material
                .intermediate_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(
            material
                .cluster_ca_pem()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        // key.pem is the private half of the leaf's public key.
        let private = RsaPrivateKey::from_pkcs8_pem(material.leaf_key_pem()).expect("pkcs8");
        assert_eq!(&private.to_public_key(), material.leaf_public_key());
        // The leaf carries its public key and both OU values (DER strings
        // appear verbatim in the encoding).
        let spki = rsa::pkcs8::EncodePublicKey::to_public_key_der(material.leaf_public_key())
            .expect("spki");
        assert!(contains(material.leaf_der(), spki.as_bytes()));
        for value in [
            format!("opc-instance:{}", config.instance_id),
            format!("opc-tenant:{}", config.tenancy_id),
        ] {
            assert!(contains(material.leaf_der(), value.as_bytes()), "{value}");
        }
        assert_eq!(
            material.leaf_fingerprint(),
            certificate_fingerprint(material.leaf_der())
        );
    }

    #[test]
    fn fingerprint_is_colon_separated_sha1() {
        // SHA-1("abc") = a9993e36 4706816a ba3e2571 7850c26c 9cd0d89d.
        assert_eq!(
            certificate_fingerprint(b"abc"),
            "a9:99:3e:36:47:06:81:6a:ba:3e:25:71:78:50:c2:6c:9c:d0:d8:9d"
        );
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }
}
