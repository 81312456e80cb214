//! Whether a module is the one the platform team meant to run: an expected
//! digest pinned in the policy's configuration, and Ed25519 signatures
//! checked against public keys the platform team gives the operator.
//!
//! Why Ed25519 over the module's bytes: the policy travels in a ConfigMap,
//! not a registry, so there is no OCI artifact for cosign to attach to and no
//! transparency log to reach offline; a detached signature made with the
//! `openssl` every team already has (`openssl pkeyutl -sign -rawin`) is
//! enough, and ring (already our signer's crypto) verifies it. Keys are PEM
//! `PUBLIC KEY` blocks (`openssl pkey -pubout`).
//!
//! Both checks are over the decompressed module, so `policy.wasm` and
//! `policy.wasm.gz` of the same module share a digest and a signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use pkcs8::der::Decode;
use ring::signature::{ED25519, UnparsedPublicKey};

use super::error::LoadError;

/// Ed25519's object identifier (RFC 8410).
const ED25519_OID: &str = "1.3.101.112";

/// The public keys policies may be signed with, and whether a signature is
/// required.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    keys: Vec<[u8; 32]>,
    /// Refuse modules without a valid signature.
    pub require_signature: bool,
}

/// Why a trusted-keys file cannot be used (a start-up error).
#[derive(Debug, thiserror::Error)]
#[error("policy trusted keys: {0}")]
pub struct TrustError(String);

impl Trust {
    /// Reads every `PUBLIC KEY` PEM block of `pem` (Ed25519 only).
    pub fn from_pem(pem: &str, require_signature: bool) -> Result<Self, TrustError> {
        let mut keys = Vec::new();
        for block in pem.split("-----BEGIN ").skip(1) {
            let block = format!("-----BEGIN {}", block.trim());
            let (label, der) = pkcs8::der::pem::decode_vec(block.as_bytes())
                .map_err(|e| TrustError(format!("a PEM block cannot be read: {e}")))?;
            if label != "PUBLIC KEY" {
                return Err(TrustError(format!(
                    "a `{label}` block: expected `PUBLIC KEY` (openssl pkey -in key.pem -pubout)"
                )));
            }
            let spki = pkcs8::spki::SubjectPublicKeyInfoRef::from_der(&der)
                .map_err(|e| TrustError(format!("a public key cannot be read: {e}")))?;
            if spki.algorithm.oid.to_string() != ED25519_OID {
                return Err(TrustError(format!(
                    "a key of algorithm {} is not Ed25519 (openssl genpkey -algorithm ed25519)",
                    spki.algorithm.oid
                )));
            }
            let key = spki
                .subject_public_key
                .as_bytes()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| TrustError("an Ed25519 key that is not 32 bytes".into()))?;
            keys.push(key);
        }
        if keys.is_empty() && require_signature {
            return Err(TrustError(
                "signatures are required but no `PUBLIC KEY` block was given".into(),
            ));
        }
        Ok(Trust {
            keys,
            require_signature,
        })
    }

    /// Whether any key is configured.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks `wasm` (decompressed, with hex SHA-256 `sha256`) against the
    /// pinned digest and the signature, as configured.
    pub(crate) fn check(
        &self,
        wasm: &[u8],
        sha256: &str,
        expected_sha256: Option<&str>,
        signature: Option<&[u8]>,
    ) -> Result<(), LoadError> {
        if let Some(expected) = expected_sha256
            && !expected.eq_ignore_ascii_case(sha256)
        {
            return Err(LoadError::DigestMismatch {
                expected: expected.to_string(),
                found: sha256.to_string(),
            });
        }
        match signature {
            // Without keys there is nothing to check a signature with; a
            // signature alone does not make a module trusted.
            Some(_) if self.keys.is_empty() => Ok(()),
            Some(signature) => {
                let signature = decode_signature(signature)?;
                if self.keys.iter().any(|key| {
                    UnparsedPublicKey::new(&ED25519, key)
                        .verify(wasm, &signature)
                        .is_ok()
                }) {
                    Ok(())
                } else {
                    Err(LoadError::Signature(
                        "the signature does not match the module with any trusted key".into(),
                    ))
                }
            }
            None if self.require_signature => Err(LoadError::Signature(format!(
                "signatures are required: add a `{}` key",
                super::source::KEY_SIGNATURE
            ))),
            None => Ok(()),
        }
    }
}

/// A signature as configured: the 64 raw bytes (`binaryData`, from
/// `openssl pkeyutl -sign`) or their base64 (`data`).
fn decode_signature(configured: &[u8]) -> Result<Vec<u8>, LoadError> {
    if configured.len() == 64 {
        return Ok(configured.to_vec());
    }
    let text = std::str::from_utf8(configured)
        .map_err(|_| LoadError::Signature("the signature is neither 64 bytes nor base64".into()))?;
    let decoded = BASE64
        .decode(text.trim())
        .map_err(|_| LoadError::Signature("the signature is neither 64 bytes nor base64".into()))?;
    if decoded.len() != 64 {
        return Err(LoadError::Signature(format!(
            "an Ed25519 signature is 64 bytes, this one {}",
            decoded.len()
        )));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    /// A key pair and its public key as a PEM `PUBLIC KEY` block.
    pub(crate) fn key_pair() -> (Ed25519KeyPair, String) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
        // SPKI of an Ed25519 key: a fixed prefix then the 32 key bytes.
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(pair.public_key().as_ref());
        let pem =
            pkcs8::der::pem::encode_string("PUBLIC KEY", pkcs8::der::pem::LineEnding::LF, &der)
                .expect("pem");
        (pair, pem)
    }

    const WASM: &[u8] = b"\0asm\x01\0\0\0";
    const SHA: &str = "93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476";

    #[test]
    fn a_pinned_digest_must_match() {
        let trust = Trust::default();
        assert_eq!(crate::policy::module::sha256_hex(WASM), SHA);
        assert_eq!(
            trust.check(WASM, SHA, Some(&SHA.to_uppercase()), None),
            Ok(())
        );
        let err = trust
            .check(WASM, SHA, Some("00"), None)
            .expect_err("mismatch");
        assert!(matches!(err, LoadError::DigestMismatch { .. }), "{err}");
    }

    #[test]
    fn signatures_are_checked_with_the_trusted_keys() {
        let (pair, pem) = key_pair();
        let (other, other_pem) = key_pair();
        let trust = Trust::from_pem(&format!("{other_pem}\n{pem}"), true).expect("keys");
        let good = pair.sign(WASM);
        assert_eq!(trust.check(WASM, SHA, None, Some(good.as_ref())), Ok(()));
        // Base64 text, as in a ConfigMap's `data`.
        let text = format!("{}\n", BASE64.encode(good.as_ref()));
        assert_eq!(trust.check(WASM, SHA, None, Some(text.as_bytes())), Ok(()));

        let forged = Trust::from_pem(&other_pem, true).expect("keys").check(
            WASM,
            SHA,
            None,
            Some(good.as_ref()),
        );
        assert!(matches!(forged, Err(LoadError::Signature(_))));
        let tampered = trust.check(b"\0asm\x01\0\0\x01", SHA, None, Some(good.as_ref()));
        assert!(matches!(tampered, Err(LoadError::Signature(_))));
        let unsigned = trust.check(WASM, SHA, None, None);
        assert!(matches!(unsigned, Err(LoadError::Signature(m)) if m.contains("required")));
        let garbage = trust.check(WASM, SHA, None, Some(b"not a signature"));
        assert!(matches!(garbage, Err(LoadError::Signature(_))));
        let _ = other;
    }

    #[test]
    fn unsigned_modules_load_unless_signatures_are_required() {
        let (_, pem) = key_pair();
        let trust = Trust::from_pem(&pem, false).expect("keys");
        assert_eq!(trust.check(WASM, SHA, None, None), Ok(()));
        assert!(Trust::from_pem("", true).is_err());
    }

    #[test]
    fn keys_that_are_not_ed25519_public_keys_are_refused() {
        let err = Trust::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            false,
        )
        .expect_err("private key");
        assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
        // An Ed448 key (OID 1.3.101.113): read, then refused by algorithm.
        let mut der = vec![
            0x30, 0x43, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x71, 0x03, 0x3a, 0x00,
        ];
        der.extend_from_slice(&[7; 57]);
        let ed448 =
            pkcs8::der::pem::encode_string("PUBLIC KEY", pkcs8::der::pem::LineEnding::LF, &der)
                .expect("pem");
        let err = Trust::from_pem(&ed448, false).expect_err("ed448");
        assert!(err.to_string().contains("not Ed25519"), "{err}");
    }
}
