//! An API key given field by field, as OCI's own Kubernetes components take
//! it from a Secret (tenancy, user, fingerprint, region, key, passphrase):
//! the OCIDs and the fingerprint as settings, the private key and its
//! passphrase as files, so that key material is never in the environment.
//!
//! Each field is checked before OCI sees it: a wrong field fails here, naming
//! the setting, rather than as an anonymous 401. The fingerprint, in
//! particular, is compared with the key's own (OCI's fingerprint of an API key
//! is the MD5 of its public key's DER), the usual mistake being a key and a
//! fingerprint of two different uploads.

use super::auth::ApiKey;
use super::sign::{KeyError, SigningKey};
use md5::{Digest, Md5};
use std::path::{Path, PathBuf};

/// The settings, as the operator names them (flags and environment).
pub const TENANCY_ENV: &str = "OCI_TENANCY_ID";
pub const USER_ENV: &str = "OCI_USER_ID";
pub const FINGERPRINT_ENV: &str = "OCI_FINGERPRINT";
pub const PRIVATE_KEY_FILE_ENV: &str = "OCI_PRIVATE_KEY_FILE";
pub const PASSPHRASE_ENV: &str = "OCI_PRIVATE_KEY_PASSPHRASE";
pub const PASSPHRASE_FILE_ENV: &str = "OCI_PRIVATE_KEY_PASSPHRASE_FILE";

/// A passphrase given as a setting; `Debug` does not show it.
#[derive(Clone)]
pub struct Passphrase(pub String);

impl std::str::FromStr for Passphrase {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// The fields as given; `None` (or empty) is "not set".
#[derive(Clone, Default)]
pub struct ApiKeyFields {
    pub tenancy: Option<String>,
    pub user: Option<String>,
    pub fingerprint: Option<String>,
    pub region: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub passphrase: Option<String>,
    /// A file holding the passphrase. A file that does not exist is no
    /// passphrase: a Secret's optional `passphrase` key can then be mounted
    /// as it is, present or not.
    pub passphrase_file: Option<PathBuf>,
}

impl std::fmt::Debug for ApiKeyFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyFields")
            .field("tenancy", &self.tenancy)
            .field("user", &self.user)
            .field("fingerprint", &self.fingerprint)
            .field("private_key_file", &self.private_key_file)
            .field("passphrase_file", &self.passphrase_file)
            .finish_non_exhaustive()
    }
}

/// What is wrong with a field. Every message starts with the setting to
/// correct; none quotes key material or a passphrase.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyFieldError {
    #[error("{setting} is not set: it is {what}")]
    Missing {
        setting: &'static str,
        what: &'static str,
    },
    #[error("{setting} {value:?} is not {what}")]
    Malformed {
        setting: &'static str,
        value: String,
        what: &'static str,
    },
    #[error("{setting} {}: cannot read it: {message}", path.display())]
    Unreadable {
        setting: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{PASSPHRASE_ENV} and {PASSPHRASE_FILE_ENV} are both set: keep one")]
    TwoPassphrases,
    #[error(
        "{PRIVATE_KEY_FILE_ENV} {} is encrypted: give its passphrase in {PASSPHRASE_FILE_ENV} (or {PASSPHRASE_ENV})",
        path.display()
    )]
    PassphraseNeeded { path: PathBuf },
    #[error("{PRIVATE_KEY_FILE_ENV} {}: {error}", path.display())]
    Key { path: PathBuf, error: KeyError },
    #[error(
        "{FINGERPRINT_ENV} {given} is not the fingerprint of the key in {PRIVATE_KEY_FILE_ENV} {} (that key's is {actual})",
        path.display()
    )]
    FingerprintMismatch {
        given: String,
        actual: String,
        path: PathBuf,
    },
}

impl ApiKeyFields {
    /// Reads the key and checks every field: the [`ApiKey`] to sign with.
    pub fn load(&self) -> Result<ApiKey, ApiKeyFieldError> {
        let tenancy = required(
            &self.tenancy,
            TENANCY_ENV,
            "the OCID of the API key's tenancy",
        )?;
        check_ocid(&tenancy, TENANCY_ENV, "tenancy")?;
        let user = required(
            &self.user,
            USER_ENV,
            "the OCID of the user the API key belongs to",
        )?;
        check_ocid(&user, USER_ENV, "user")?;
        let fingerprint = required(
            &self.fingerprint,
            FINGERPRINT_ENV,
            "the API key's fingerprint as the OCI console shows it (aa:bb:...)",
        )?
        .to_ascii_lowercase();
        if !is_fingerprint(&fingerprint) {
            return Err(ApiKeyFieldError::Malformed {
                setting: FINGERPRINT_ENV,
                value: fingerprint,
                what: "a key fingerprint: 16 hexadecimal pairs separated by colons, as the OCI console shows it",
            });
        }
        let path = self
            .private_key_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or(ApiKeyFieldError::Missing {
                setting: PRIVATE_KEY_FILE_ENV,
                what: "the path of the API key's private key (PEM)",
            })?;
        let pem = read(&path, PRIVATE_KEY_FILE_ENV)?;
        let passphrase = self.passphrase()?;
        let key =
            SigningKey::from_pem(&pem, passphrase.as_deref()).map_err(|error| match error {
                KeyError::PassphraseNeeded => {
                    ApiKeyFieldError::PassphraseNeeded { path: path.clone() }
                }
                error => ApiKeyFieldError::Key {
                    path: path.clone(),
                    error,
                },
            })?;
        let actual = fingerprint_of(&key).map_err(|error| ApiKeyFieldError::Key {
            path: path.clone(),
            error,
        })?;
        if actual != fingerprint {
            return Err(ApiKeyFieldError::FingerprintMismatch {
                given: fingerprint,
                actual,
                path,
            });
        }
        Ok(ApiKey {
            tenancy,
            user,
            fingerprint,
            private_key_pem: pem,
            passphrase,
            region: self.region.clone().filter(|r| !r.trim().is_empty()),
        })
    }

    /// The passphrase, from the setting or the file; `None` without either.
    fn passphrase(&self) -> Result<Option<String>, ApiKeyFieldError> {
        let inline = self.passphrase.clone().filter(|p| !p.is_empty());
        let file = self
            .passphrase_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty());
        match (inline, file) {
            (Some(_), Some(_)) => Err(ApiKeyFieldError::TwoPassphrases),
            (Some(inline), None) => Ok(Some(inline)),
            (None, None) => Ok(None),
            (None, Some(path)) if !path.exists() => Ok(None),
            (None, Some(path)) => {
                let text = read(path, PASSPHRASE_FILE_ENV)?;
                // `echo secret > file` adds a newline the passphrase never had.
                let text = text.trim_end_matches(['\n', '\r']);
                Ok((!text.is_empty()).then(|| text.to_string()))
            }
        }
    }
}

/// A set, non-blank value, trimmed (a Secret made with `--from-file` often
/// ends its values with a newline).
fn required(
    value: &Option<String>,
    setting: &'static str,
    what: &'static str,
) -> Result<String, ApiKeyFieldError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or(ApiKeyFieldError::Missing { setting, what })
}

/// `ocid1.<kind>.…`: catches the usual swap of tenancy, user and compartment.
fn check_ocid(value: &str, setting: &'static str, kind: &str) -> Result<(), ApiKeyFieldError> {
    let mut parts = value.splitn(3, '.');
    let well_formed = parts.next().is_some_and(|v| {
        v.strip_prefix("ocid")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }) && parts.next() == Some(kind)
        && parts.next().is_some_and(|rest| !rest.is_empty());
    if well_formed {
        Ok(())
    } else {
        Err(ApiKeyFieldError::Malformed {
            setting,
            value: value.to_string(),
            what: if kind == "tenancy" {
                "a tenancy OCID (ocid1.tenancy.oc1..…)"
            } else {
                "a user OCID (ocid1.user.oc1..…)"
            },
        })
    }
}

fn is_fingerprint(value: &str) -> bool {
    let pairs: Vec<&str> = value.split(':').collect();
    pairs.len() == 16
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn read(path: &Path, setting: &'static str) -> Result<String, ApiKeyFieldError> {
    std::fs::read_to_string(path).map_err(|e| ApiKeyFieldError::Unreadable {
        setting,
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// OCI's fingerprint of an API key: MD5 of the public key's DER
/// (SubjectPublicKeyInfo), as colon-separated lower-case hex.
fn fingerprint_of(key: &SigningKey) -> Result<String, KeyError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::EncodePublicKey;
    let public = rsa::RsaPublicKey::from_pkcs1_der(key.public_key_pkcs1_der())
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
    let der = public
        .to_public_key_der()
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
    let digest = Md5::digest(der.as_bytes());
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The emulator's test-only key and its fingerprint as `openssl rsa
    /// -pubout -outform DER | openssl md5 -c` prints it.
    const KEY: &str = include_str!("../../../tests/oci-emulator/testdata/oci_api_key.pem");
    const FINGERPRINT: &str = "2a:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6";

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("api-key-fields-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).expect("write");
            path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn fields(dir: &Dir) -> ApiKeyFields {
        ApiKeyFields {
            tenancy: Some("ocid1.tenancy.oc1..t\n".into()),
            user: Some(" ocid1.user.oc1..u".into()),
            fingerprint: Some(FINGERPRINT.to_uppercase()),
            region: Some("fra".into()),
            private_key_file: Some(dir.file("key", KEY)),
            passphrase: None,
            passphrase_file: Some(dir.0.join("passphrase")),
        }
    }

    fn error(fields: &ApiKeyFields) -> String {
        fields.load().map(|_| ()).expect_err("refused").to_string()
    }

    #[test]
    fn a_complete_set_of_fields_is_an_api_key() {
        let dir = Dir::new("ok");
        // The passphrase file is absent: the Secret has no `passphrase`.
        let key = fields(&dir).load().expect("loads");
        assert_eq!(
            key.key_id(),
            format!("ocid1.tenancy.oc1..t/ocid1.user.oc1..u/{FINGERPRINT}")
        );
        assert_eq!(key.region.as_deref(), Some("fra"));
        assert_eq!(key.passphrase, None);
    }

    #[test]
    fn each_missing_field_names_its_setting() {
        let dir = Dir::new("missing");
        for (setting, clear) in [
            (
                TENANCY_ENV,
                (|f: &mut ApiKeyFields| f.tenancy = Some("  ".into())) as fn(&mut ApiKeyFields),
            ),
            (USER_ENV, |f| f.user = None),
            (FINGERPRINT_ENV, |f| f.fingerprint = None),
            (PRIVATE_KEY_FILE_ENV, |f| f.private_key_file = None),
        ] {
            let mut given = fields(&dir);
            clear(&mut given);
            let message = error(&given);
            assert!(
                message.starts_with(&format!("{setting} is not set")),
                "{message}"
            );
        }
    }

    #[test]
    fn malformed_fields_are_refused_before_oci_sees_them() {
        let dir = Dir::new("malformed");
        let mut swapped = fields(&dir);
        swapped.tenancy = Some("ocid1.user.oc1..u".into());
        assert!(error(&swapped).starts_with(&format!(
            "{TENANCY_ENV} \"ocid1.user.oc1..u\" is not a tenancy OCID"
        )));
        let mut compartment = fields(&dir);
        compartment.user = Some("ocid1.compartment.oc1..c".into());
        assert!(error(&compartment).starts_with(&format!("{USER_ENV} ")));
        let mut short = fields(&dir);
        short.fingerprint = Some("2a:34:c2".into());
        assert!(error(&short).starts_with(&format!(
            "{FINGERPRINT_ENV} \"2a:34:c2\" is not a key fingerprint"
        )));
        let mut other = fields(&dir);
        other.fingerprint = Some("00:34:c2:f5:f7:23:48:cd:5d:38:f8:ec:75:ba:82:e6".into());
        let message = error(&other);
        assert!(
            message.contains("is not the fingerprint of the key"),
            "{message}"
        );
        assert!(
            message.contains(FINGERPRINT),
            "names the key's own: {message}"
        );
    }

    #[test]
    fn key_file_problems_name_the_file_and_never_quote_it() {
        let dir = Dir::new("key");
        let mut missing = fields(&dir);
        missing.private_key_file = Some(dir.0.join("nowhere"));
        let message = error(&missing);
        assert!(
            message.starts_with(&format!("{PRIVATE_KEY_FILE_ENV} ")),
            "{message}"
        );
        assert!(message.contains("cannot read it"), "{message}");
        let mut garbage = fields(&dir);
        garbage.private_key_file = Some(dir.file("garbage", "secret-looking garbage"));
        let message = error(&garbage);
        assert!(message.contains("not a PEM private key"), "{message}");
        assert!(!message.contains("secret-looking"), "{message}");
    }

    #[test]
    fn the_passphrase_comes_from_the_setting_or_the_file() {
        let dir = Dir::new("passphrase");
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("key");
        let encrypted = rsa::pkcs8::EncodePrivateKey::to_pkcs8_encrypted_pem(
            &key,
            &mut rand::thread_rng(),
            "right",
            rsa::pkcs8::LineEnding::LF,
        )
        .expect("encrypts");
        let signing = SigningKey::from_pem(&encrypted, Some("right")).expect("opens");
        let mut given = fields(&dir);
        given.private_key_file = Some(dir.file("encrypted", &encrypted));
        given.fingerprint = Some(fingerprint_of(&signing).expect("fingerprint"));

        let message = error(&given);
        assert!(
            message
                .contains("is encrypted: give its passphrase in OCI_PRIVATE_KEY_PASSPHRASE_FILE"),
            "{message}"
        );
        dir.file("passphrase", "right\n");
        assert_eq!(
            given.load().expect("file").passphrase.as_deref(),
            Some("right")
        );
        dir.file("passphrase", "wrong");
        assert!(error(&given).contains("cannot decrypt"));

        given.passphrase = Some("right".into());
        assert_eq!(error(&given), ApiKeyFieldError::TwoPassphrases.to_string());
        given.passphrase_file = None;
        assert!(given.load().is_ok());

        // A passphrase for a key that has none.
        let mut plain = fields(&dir);
        dir.file("passphrase", "right");
        assert!(error(&plain).contains("not encrypted"));
        plain.passphrase_file = None;
        assert!(plain.load().is_ok());
    }

    #[test]
    fn debug_shows_no_passphrase() {
        let given = ApiKeyFields {
            passphrase: Some("hunter2".into()),
            ..ApiKeyFields::default()
        };
        assert!(!format!("{given:?}").contains("hunter2"));
    }
}
