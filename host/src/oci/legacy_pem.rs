//! Decryption of the legacy OpenSSL encrypted PEM format
//! (`Proc-Type: 4,ENCRYPTED` / `DEK-Info: AES-128-CBC,<iv>`), which OCI's own
//! "generate an API signing key" instructions produce with OpenSSL 1.x
//! (`openssl genrsa -aes128`) and OpenSSL 3 with `-traditional`.
//!
//! No well-kept crate reads this format (the RustCrypto PEM crates implement
//! RFC 7468, which has no headers), so the few steps are here: the key is
//! OpenSSL's `EVP_BytesToKey` with MD5 and one iteration over the passphrase
//! and the first 8 bytes of the IV, the body is AES-CBC with PKCS#7 padding,
//! and the plaintext is a PKCS#1 `RSAPrivateKey`. AES and CBC come from the
//! RustCrypto crates.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use md5::{Digest, Md5};

/// Why a legacy encrypted key could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LegacyPemError {
    #[error("malformed legacy encrypted PEM: {0}")]
    Malformed(&'static str),
    #[error(
        "legacy encrypted PEM with cipher {0}: only AES-128/192/256-CBC are read; \
         convert with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
    )]
    Cipher(String),
    #[error("wrong passphrase (the key did not decrypt)")]
    Decrypt,
}

/// Whether `pem` is in the legacy encrypted format.
pub fn is_legacy_encrypted(pem: &str) -> bool {
    pem.lines()
        .any(|line| line.trim().eq_ignore_ascii_case("Proc-Type: 4,ENCRYPTED"))
}

/// Decrypts a legacy encrypted `RSA PRIVATE KEY` PEM to its PKCS#1 DER.
pub fn decrypt(pem: &str, passphrase: &str) -> Result<Vec<u8>, LegacyPemError> {
    let mut dek_info = None;
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            inside = true;
        } else if line.starts_with("-----END") {
            break;
        } else if !inside || line.is_empty() || line.starts_with("Proc-Type:") {
            continue;
        } else if let Some(value) = line.strip_prefix("DEK-Info:") {
            dek_info = Some(value.trim().to_string());
        } else {
            body.push_str(line);
        }
    }
    let dek_info = dek_info.ok_or(LegacyPemError::Malformed("no DEK-Info header"))?;
    let (cipher, iv_hex) = dek_info
        .split_once(',')
        .ok_or(LegacyPemError::Malformed("DEK-Info without an IV"))?;
    let iv = hex_decode(iv_hex.trim()).ok_or(LegacyPemError::Malformed("IV is not hex"))?;
    if iv.len() != 16 {
        return Err(LegacyPemError::Malformed("IV is not 16 bytes"));
    }
    let ciphertext = BASE64
        .decode(body.as_bytes())
        .map_err(|_| LegacyPemError::Malformed("body is not base64"))?;
    let cipher = cipher.trim().to_ascii_uppercase();
    let key_len = match cipher.as_str() {
        "AES-128-CBC" => 16,
        "AES-192-CBC" => 24,
        "AES-256-CBC" => 32,
        _ => return Err(LegacyPemError::Cipher(cipher)),
    };
    let key = bytes_to_key(passphrase.as_bytes(), &iv[..8], key_len);
    let plaintext = match key_len {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
            .map_err(|_| LegacyPemError::Malformed("key or IV length"))?
            .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(&key, &iv)
            .map_err(|_| LegacyPemError::Malformed("key or IV length"))?
            .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&key, &iv)
            .map_err(|_| LegacyPemError::Malformed("key or IV length"))?
            .decrypt_padded_vec_mut::<Pkcs7>(&ciphertext),
    };
    // A wrong passphrase usually breaks the padding; when it does not, the
    // DER parse that follows fails instead.
    plaintext.map_err(|_| LegacyPemError::Decrypt)
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration.
fn bytes_to_key(passphrase: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(len + 16);
    let mut previous: Vec<u8> = Vec::new();
    while key.len() < len {
        let mut md5 = Md5::new();
        md5.update(&previous);
        md5.update(passphrase);
        md5.update(salt);
        previous = md5.finalize().to_vec();
        key.extend_from_slice(&previous);
    }
    key.truncate(len);
    key
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `EVP_BytesToKey` output for a known input, computed with
    /// `openssl enc -aes-128-cbc -P -md md5 -pass pass:secret -S 0001020304050607`.
    #[test]
    fn bytes_to_key_matches_openssl() {
        let key = bytes_to_key(b"secret", &[0, 1, 2, 3, 4, 5, 6, 7], 16);
        let hex: String = key.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(hex, OPENSSL_KEY);
    }

    const OPENSSL_KEY: &str = "035FB8145B73CF111570DC936112BE9C";

    #[test]
    fn malformed_headers_are_named() {
        let no_dek = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(is_legacy_encrypted(no_dek));
        assert_eq!(
            decrypt(no_dek, "p"),
            Err(LegacyPemError::Malformed("no DEK-Info header"))
        );
        let des = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: DES-EDE3-CBC,0001020304050607\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(matches!(
            decrypt(des, "p"),
            Err(LegacyPemError::Malformed(_))
        ));
        let des = des.replace("0001020304050607", "000102030405060708090A0B0C0D0E0F");
        assert_eq!(
            decrypt(&des, "p"),
            Err(LegacyPemError::Cipher("DES-EDE3-CBC".into()))
        );
    }
}
