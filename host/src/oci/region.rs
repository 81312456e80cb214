//! OCI regions and realms: a region given by key (`fra`) or identifier
//! (`eu-frankfurt-1`), in any case, resolved to its identifier and its
//! realm's domain, from which every endpoint is derived
//! (`https://<service>.<region>.<realm domain>`).
//!
//! The tables are the public regions and realms as OCI's official SDKs define
//! them (facts taken from oci-go-sdk's `common/regions.json` of June 2026,
//! which agrees with oci-python-sdk's `oci/regions_definitions.py` where both
//! list a region). As in those SDKs:
//!
//! - a region outside the tables but shaped like one (`<x>-<y>-<n>`) is taken
//!   to be in realm oc1, `oraclecloud.com` (regions are added to the SDKs
//!   after they open; most are commercial);
//! - `OCI_REGION_METADATA`, a JSON object `{"realmKey", "realmDomainComponent",
//!   "regionKey", "regionIdentifier"}`, adds one region (one the tables do not
//!   know; a known region keeps its table entry).
//!
//! Credentials that know their realm's domain (the instance metadata of
//! instance principals) pass it in, and it wins over the tables.

use serde::Deserialize;

/// The environment variable OCI's SDKs read one extra region from.
pub const REGION_METADATA_ENV: &str = "OCI_REGION_METADATA";

/// The realm of regions outside the tables.
const DEFAULT_REALM: &str = "oc1";

/// Region key, region identifier, realm key.
const REGIONS: &[(&str, &str, &str)] = &[
    ("lej", "af-casablanca-1", "oc1"),
    ("jnb", "af-johannesburg-1", "oc1"),
    ("hsg", "ap-batam-1", "oc1"),
    ("yny", "ap-chuncheon-1", "oc1"),
    ("onm", "ap-delhi-1", "oc1"),
    ("hyd", "ap-hyderabad-1", "oc1"),
    ("jbp", "ap-kulai-2", "oc1"),
    ("mel", "ap-melbourne-1", "oc1"),
    ("bom", "ap-mumbai-1", "oc1"),
    ("kix", "ap-osaka-1", "oc1"),
    ("icn", "ap-seoul-1", "oc1"),
    ("sin", "ap-singapore-1", "oc1"),
    ("xsp", "ap-singapore-2", "oc1"),
    ("syd", "ap-sydney-1", "oc1"),
    ("nrt", "ap-tokyo-1", "oc1"),
    ("yul", "ca-montreal-1", "oc1"),
    ("yyz", "ca-toronto-1", "oc1"),
    ("ams", "eu-amsterdam-1", "oc1"),
    ("fra", "eu-frankfurt-1", "oc1"),
    ("mad", "eu-madrid-1", "oc1"),
    ("orf", "eu-madrid-3", "oc1"),
    ("mrs", "eu-marseille-1", "oc1"),
    ("lin", "eu-milan-1", "oc1"),
    ("cdg", "eu-paris-1", "oc1"),
    ("arn", "eu-stockholm-1", "oc1"),
    ("nrq", "eu-turin-1", "oc1"),
    ("zrh", "eu-zurich-1", "oc1"),
    ("mtz", "il-jerusalem-1", "oc1"),
    ("auh", "me-abudhabi-1", "oc1"),
    ("dxb", "me-dubai-1", "oc1"),
    ("jed", "me-jeddah-1", "oc1"),
    ("ruh", "me-riyadh-1", "oc1"),
    ("mty", "mx-monterrey-1", "oc1"),
    ("qro", "mx-queretaro-1", "oc1"),
    ("bog", "sa-bogota-1", "oc1"),
    ("scl", "sa-santiago-1", "oc1"),
    ("gru", "sa-saopaulo-1", "oc1"),
    ("vap", "sa-valparaiso-1", "oc1"),
    ("vcp", "sa-vinhedo-1", "oc1"),
    ("cwl", "uk-cardiff-1", "oc1"),
    ("lhr", "uk-london-1", "oc1"),
    ("iad", "us-ashburn-1", "oc1"),
    ("ord", "us-chicago-1", "oc1"),
    ("phx", "us-phoenix-1", "oc1"),
    ("aga", "us-saltlake-2", "oc1"),
    ("sjc", "us-sanjose-1", "oc1"),
    ("lfi", "us-langley-1", "oc2"),
    ("luf", "us-luke-1", "oc2"),
    ("ric", "us-gov-ashburn-1", "oc3"),
    ("pia", "us-gov-chicago-1", "oc3"),
    ("tus", "us-gov-phoenix-1", "oc3"),
    ("brs", "uk-gov-cardiff-1", "oc4"),
    ("ltn", "uk-gov-london-1", "oc4"),
    ("nja", "ap-chiyoda-1", "oc8"),
    ("ukb", "ap-ibaraki-1", "oc8"),
    ("mct", "me-dcc-muscat-1", "oc9"),
    ("ibr", "me-ibri-1", "oc9"),
    ("wga", "ap-dcc-canberra-1", "oc10"),
    ("ork", "eu-dcc-dublin-1", "oc14"),
    ("snn", "eu-dcc-dublin-2", "oc14"),
    ("bgy", "eu-dcc-milan-1", "oc14"),
    ("mxp", "eu-dcc-milan-2", "oc14"),
    ("dus", "eu-dcc-rating-1", "oc14"),
    ("dtm", "eu-dcc-rating-2", "oc14"),
    ("dac", "ap-dcc-gazipur-1", "oc15"),
    ("str", "eu-frankfurt-2", "oc19"),
    ("vll", "eu-madrid-2", "oc19"),
    ("beg", "eu-jovanovac-1", "oc20"),
    ("vve", "me-alrayyan-1", "oc21"),
    ("doh", "me-dcc-doha-1", "oc21"),
    ("ebb", "us-somerset-1", "oc23"),
    ("ebl", "us-thames-1", "oc23"),
    ("avf", "eu-crissier-1", "oc24"),
    ("avz", "eu-dcc-zurich-1", "oc24"),
    ("ahu", "me-abudhabi-3", "oc26"),
    ("rba", "me-alain-1", "oc26"),
    ("rkt", "me-abudhabi-2", "oc29"),
    ("shj", "me-abudhabi-4", "oc29"),
    ("bno", "ap-chuncheon-2", "oc35"),
    ("dtz", "ap-seoul-2", "oc35"),
    ("dln", "ap-suwon-1", "oc35"),
    ("yxj", "us-ashburn-2", "oc42"),
    ("pgc", "us-newark-1", "oc42"),
    ("jsk", "eu-budapest-1", "oc51"),
    ("hnw", "sa-riodejaneiro-1", "oc52"),
];

/// Realm key, realm domain.
const REALMS: &[(&str, &str)] = &[
    ("oc1", "oraclecloud.com"),
    ("oc2", "oraclegovcloud.com"),
    ("oc3", "oraclegovcloud.com"),
    ("oc4", "oraclegovcloud.uk"),
    ("oc8", "oraclecloud8.com"),
    ("oc9", "oraclecloud9.com"),
    ("oc10", "oraclecloud10.com"),
    ("oc14", "oraclecloud14.com"),
    ("oc15", "oraclecloud15.com"),
    ("oc19", "oraclecloud.eu"),
    ("oc20", "oraclecloud20.com"),
    ("oc21", "oraclecloud21.com"),
    ("oc23", "oraclecloud23.com"),
    ("oc24", "oraclecloud24.com"),
    ("oc26", "oraclecloud26.com"),
    ("oc29", "oraclecloud29.com"),
    ("oc35", "oraclecloud35.com"),
    ("oc42", "oraclecloud42.com"),
    ("oc51", "oraclecloud51.com"),
    ("oc52", "oraclecloud52.com"),
];

/// A resolved region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// E.g. `eu-frankfurt-1`, lower case.
    pub identifier: String,
    /// E.g. `oraclecloud.com`.
    pub realm_domain: String,
    /// E.g. `oc1`; `None` for a region outside the tables (assumed commercial).
    pub realm_key: Option<String>,
    /// Where the region was found.
    pub source: RegionSource,
}

/// Where a region's realm came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    /// The SDKs' tables.
    Known,
    /// `OCI_REGION_METADATA`.
    Metadata,
    /// Not known, shaped like a region: realm oc1 assumed.
    Assumed,
}

impl Region {
    /// `https://<service>.<region>.<realm domain>`.
    pub fn endpoint(&self, service: &str) -> String {
        format!(
            "https://{service}.{}.{}",
            self.identifier, self.realm_domain
        )
    }

    /// Core Services (VCN, public IPs): `https://iaas.<region>.<realm domain>`.
    pub fn core_services_endpoint(&self) -> String {
        self.endpoint("iaas")
    }

    /// The auth service (instance principals' federation):
    /// `https://auth.<region>.<realm domain>`.
    pub fn auth_endpoint(&self) -> String {
        self.endpoint("auth")
    }

    /// The same region in the realm whose domain the credentials know
    /// (the instance metadata's), which wins over the tables.
    pub fn in_realm_domain(mut self, realm_domain: Option<&str>) -> Self {
        if let Some(domain) = realm_domain.filter(|d| !d.is_empty()) {
            self.realm_domain = domain.to_ascii_lowercase();
        }
        self
    }
}

/// One region described as OCI's SDKs take it from `OCI_REGION_METADATA`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionMetadata {
    pub realm_key: String,
    pub realm_domain_component: String,
    pub region_key: String,
    pub region_identifier: String,
}

impl RegionMetadata {
    /// Parses the JSON of `OCI_REGION_METADATA`; every field must be there
    /// and non-empty. Values are lower-cased, as the SDKs do.
    pub fn parse(json: &str) -> Result<Self, RegionError> {
        let mut metadata: Self = serde_json::from_str(json).map_err(|e| {
            RegionError::Metadata(format!("not the JSON object OCI's SDKs take: {e}"))
        })?;
        for (name, value) in [
            ("realmKey", &mut metadata.realm_key),
            ("realmDomainComponent", &mut metadata.realm_domain_component),
            ("regionKey", &mut metadata.region_key),
            ("regionIdentifier", &mut metadata.region_identifier),
        ] {
            let trimmed = value.trim().to_ascii_lowercase();
            if trimmed.is_empty() {
                return Err(RegionError::Metadata(format!("{name} is empty")));
            }
            *value = trimmed;
        }
        Ok(metadata)
    }

    /// `OCI_REGION_METADATA` of this process, if set (and not empty).
    pub fn from_env() -> Result<Option<Self>, RegionError> {
        match std::env::var(REGION_METADATA_ENV) {
            Ok(json) if !json.trim().is_empty() => Self::parse(&json).map(Some),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(RegionError::Metadata("not UTF-8".into()))
            }
        }
    }
}

/// Why a region cannot be resolved. Each message says what to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error(
        "the OCI region is empty: give a region identifier such as eu-frankfurt-1 or a key such as fra"
    )]
    Empty,
    #[error(
        "unknown OCI region {0:?}: give a region identifier such as eu-frankfurt-1 or a region key such as fra; a region this build does not know can be described in {REGION_METADATA_ENV}"
    )]
    Unknown(String),
    #[error("{REGION_METADATA_ENV}: {0}")]
    Metadata(String),
}

/// Resolves a region given by key or identifier, with `OCI_REGION_METADATA`
/// of this process.
pub fn resolve(region: &str) -> Result<Region, RegionError> {
    resolve_with(region, RegionMetadata::from_env()?.as_ref())
}

/// Resolves a region given by key or identifier (any case): the tables
/// first, then `metadata`, then, for a name shaped like a region, realm oc1.
pub fn resolve_with(
    region: &str,
    metadata: Option<&RegionMetadata>,
) -> Result<Region, RegionError> {
    let name = region.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(RegionError::Empty);
    }
    if let Some(&(_, identifier, realm)) = REGIONS
        .iter()
        .find(|(key, identifier, _)| *key == name || *identifier == name)
    {
        return Ok(Region {
            identifier: identifier.to_string(),
            realm_domain: realm_domain(realm).unwrap_or_default().to_string(),
            realm_key: Some(realm.to_string()),
            source: RegionSource::Known,
        });
    }
    if let Some(metadata) = metadata.filter(|m| m.region_key == name || m.region_identifier == name)
    {
        return Ok(Region {
            identifier: metadata.region_identifier.clone(),
            realm_domain: metadata.realm_domain_component.clone(),
            realm_key: Some(metadata.realm_key.clone()),
            source: RegionSource::Metadata,
        });
    }
    if looks_like_region(&name) {
        return Ok(Region {
            identifier: name,
            realm_domain: realm_domain(DEFAULT_REALM).unwrap_or_default().to_string(),
            realm_key: None,
            source: RegionSource::Assumed,
        });
    }
    Err(RegionError::Unknown(region.trim().to_string()))
}

/// The Core Services endpoint of `region` (key or identifier); the realm
/// domain is `realm_domain` when the credentials know it, else the tables'.
pub fn region_endpoint(region: &str, realm_domain: Option<&str>) -> Result<String, RegionError> {
    Ok(resolve(region)?
        .in_realm_domain(realm_domain)
        .core_services_endpoint())
}

/// The domain of a realm of the tables (`oc1` → `oraclecloud.com`).
pub fn realm_domain(realm_key: &str) -> Option<&'static str> {
    REALMS
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(realm_key))
        .map(|(_, domain)| *domain)
}

/// `<x>-<y>-<n>` (or more parts, as `us-gov-ashburn-1`): lower-case letters
/// and digits, a number last. A key such as `fra` is not: an unknown key
/// cannot be turned into an identifier.
fn looks_like_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> (String, String, Option<String>) {
        let region = resolve_with(name, None).expect(name);
        assert_eq!(region.source, RegionSource::Known, "{name}");
        (region.identifier, region.realm_domain, region.realm_key)
    }

    #[test]
    fn regions_of_several_realms_resolve_by_key_and_by_name_in_any_case() {
        for (key, identifier, realm, domain) in [
            ("iad", "us-ashburn-1", "oc1", "oraclecloud.com"),
            ("fra", "eu-frankfurt-1", "oc1", "oraclecloud.com"),
            ("lfi", "us-langley-1", "oc2", "oraclegovcloud.com"),
            ("ric", "us-gov-ashburn-1", "oc3", "oraclegovcloud.com"),
            ("ltn", "uk-gov-london-1", "oc4", "oraclegovcloud.uk"),
            ("nja", "ap-chiyoda-1", "oc8", "oraclecloud8.com"),
            ("str", "eu-frankfurt-2", "oc19", "oraclecloud.eu"),
            ("dtz", "ap-seoul-2", "oc35", "oraclecloud35.com"),
        ] {
            let expected = (
                identifier.to_string(),
                domain.to_string(),
                Some(realm.to_string()),
            );
            assert_eq!(known(key), expected);
            assert_eq!(known(&key.to_uppercase()), expected);
            assert_eq!(known(identifier), expected);
            assert_eq!(known(&identifier.to_uppercase()), expected);
        }
    }

    #[test]
    fn the_tables_agree_with_themselves() {
        for (key, identifier, realm) in REGIONS {
            assert!(
                realm_domain(realm).is_some(),
                "{identifier}: realm {realm} has no domain"
            );
            assert!(looks_like_region(identifier), "{identifier}");
            assert_eq!(
                REGIONS.iter().filter(|r| r.0 == *key).count(),
                1,
                "{key} twice"
            );
            assert_eq!(
                REGIONS.iter().filter(|r| r.1 == *identifier).count(),
                1,
                "{identifier} twice"
            );
        }
    }

    #[test]
    fn endpoints_are_derived_from_the_realm() {
        let frankfurt = resolve_with("fra", None).expect("known");
        assert_eq!(
            frankfurt.core_services_endpoint(),
            "https://iaas.eu-frankfurt-1.oraclecloud.com"
        );
        assert_eq!(
            frankfurt.auth_endpoint(),
            "https://auth.eu-frankfurt-1.oraclecloud.com"
        );
        let sovereign = resolve_with("eu-madrid-2", None).expect("known");
        assert_eq!(
            sovereign.core_services_endpoint(),
            "https://iaas.eu-madrid-2.oraclecloud.eu"
        );
        // The instance metadata's domain wins.
        assert_eq!(
            sovereign
                .in_realm_domain(Some("example.test"))
                .core_services_endpoint(),
            "https://iaas.eu-madrid-2.example.test"
        );
    }

    #[test]
    fn an_unknown_region_shaped_like_one_is_assumed_commercial() {
        let region = resolve_with("xx-newcity-1", None).expect("assumed");
        assert_eq!(region.source, RegionSource::Assumed);
        assert_eq!(region.realm_key, None);
        assert_eq!(
            region.core_services_endpoint(),
            "https://iaas.xx-newcity-1.oraclecloud.com"
        );
        assert_eq!(
            resolve_with("US-Sandbox-1", None).map(|r| r.identifier),
            Ok("us-sandbox-1".to_string())
        );
        for name in [
            "xyz",
            "frankfurt",
            "eu-frankfurt",
            "eu-frankfurt-x",
            "eu--1",
            "1-a-1",
            "eu.frankfurt.1",
        ] {
            let error = resolve_with(name, None).expect_err(name);
            assert!(matches!(error, RegionError::Unknown(_)), "{name}: {error}");
            assert!(error.to_string().contains("eu-frankfurt-1"), "{error}");
        }
        assert_eq!(resolve_with("  ", None), Err(RegionError::Empty));
    }

    #[test]
    fn region_metadata_adds_a_region_by_key_and_by_name() {
        let metadata = RegionMetadata::parse(
            r#"{"realmKey":"OC99","realmDomainComponent":"Example.Cloud","regionKey":"ABC","regionIdentifier":"xx-somewhere-1"}"#,
        )
        .expect("valid");
        for name in ["abc", "ABC", "xx-somewhere-1"] {
            let region = resolve_with(name, Some(&metadata)).expect(name);
            assert_eq!(region.source, RegionSource::Metadata);
            assert_eq!(region.realm_key.as_deref(), Some("oc99"));
            assert_eq!(
                region.core_services_endpoint(),
                "https://iaas.xx-somewhere-1.example.cloud"
            );
        }
        // A known region keeps the tables' realm, as in the SDKs.
        let known = RegionMetadata {
            region_key: "fra".into(),
            region_identifier: "eu-frankfurt-1".into(),
            ..metadata.clone()
        };
        assert_eq!(
            resolve_with("fra", Some(&known)).map(|r| r.realm_domain),
            Ok("oraclecloud.com".to_string())
        );
        // Other regions are unaffected.
        assert_eq!(
            resolve_with("iad", Some(&metadata)).map(|r| r.identifier),
            Ok("us-ashburn-1".to_string())
        );
    }

    #[test]
    fn region_metadata_must_be_complete() {
        let missing = RegionMetadata::parse(
            r#"{"realmKey":"oc1","regionKey":"abc","regionIdentifier":"xx-a-1"}"#,
        )
        .expect_err("incomplete");
        assert!(
            missing.to_string().contains("realmDomainComponent"),
            "{missing}"
        );
        assert!(
            missing.to_string().starts_with(REGION_METADATA_ENV),
            "{missing}"
        );
        let empty = RegionMetadata::parse(
            r#"{"realmKey":"oc1","realmDomainComponent":" ","regionKey":"abc","regionIdentifier":"xx-a-1"}"#,
        )
        .expect_err("empty");
        assert!(
            empty.to_string().contains("realmDomainComponent is empty"),
            "{empty}"
        );
        assert!(RegionMetadata::parse("not json").is_err());
    }
}
