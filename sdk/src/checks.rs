//! The operator's rules for a policy's answers, and for the freeform tags a
//! public IP carries. The operator runs exactly these functions before it
//! acts on an answer (an answer that breaks one fails the policy for that
//! decision, "invalid answer: ..."), and [`testing`](crate::testing) runs
//! them too, so a native test refuses what the operator refuses, with the
//! operator's message.
//!
//! Tag keys: 1 to 100 ASCII letters, digits, `-` or `_`. OCI refuses
//! periods and spaces in tag keys; allowing only ASCII also shuts out
//! look-alike Unicode (a Cyrillic `о`, a non-breaking hyphen) that could pass
//! for the operator's own keys. Keys starting with `k8s-oci-operator-`, in
//! any case, are the operator's. Values: up to 256 characters, none of them a
//! control or format character (NUL, newlines, bidi overrides, zero-width
//! spaces), which would make a value display as something it is not.
//!
//! ```
//! use k8s_oci_operator_policy_sdk::{checks, TagDefaultsResponse};
//!
//! let answer = TagDefaultsResponse::default().enforce_tag("k8s-oci-operator-owner", "me");
//! let refused = checks::tag_defaults(&answer).unwrap_err();
//! assert_eq!(
//!     refused.to_string(),
//!     "tag key `k8s-oci-operator-owner` starts with k8s-oci-operator-, which is reserved for the operator"
//! );
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::{EligibilityResponse, PoolResponse, TagDefaultsResponse};

/// Longest tag key OCI accepts.
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::{check_tag_key, MAX_TAG_KEY_LEN};
/// assert!(check_tag_key(&"k".repeat(MAX_TAG_KEY_LEN + 1)).is_err());
/// ```
pub const MAX_TAG_KEY_LEN: usize = 100;

/// Longest tag value OCI accepts, in characters.
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::{check_tag, MAX_TAG_VALUE_LEN};
/// assert!(check_tag("k", &"é".repeat(MAX_TAG_VALUE_LEN)).is_ok());
/// ```
pub const MAX_TAG_VALUE_LEN: usize = 256;

/// Most freeform tags a public IP may carry from users and policies: OCI's
/// per-resource budget, less room for the operator's own ownership tags.
///
/// ```
/// assert_eq!(k8s_oci_operator_policy_sdk::checks::MAX_USER_TAGS, 40);
/// ```
pub const MAX_USER_TAGS: usize = 40;

/// Longest deny reason a policy may give, in bytes (it ends up in the
/// ReservedIP's status and in events).
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::{reason, MAX_REASON_LEN};
/// assert!(reason(&"x".repeat(MAX_REASON_LEN + 1)).is_err());
/// ```
pub const MAX_REASON_LEN: usize = 1024;

/// The prefix of the operator's own tag keys (ownership, claims), in any
/// case; neither users nor policies may set such a key.
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::{is_reserved_key, RESERVED_TAG_PREFIX};
/// assert!(is_reserved_key(&format!("{RESERVED_TAG_PREFIX}owner")));
/// ```
pub const RESERVED_TAG_PREFIX: &str = "k8s-oci-operator-";

/// Why the operator refuses a tag or an answer. Its `Display` is the message
/// the operator reports.
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::{self, Violation};
/// assert_eq!(checks::reason(" "), Err(Violation::MissingReason));
/// assert_eq!(Violation::MissingReason.to_string(), "deny without a reason");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// A tag key that is empty or longer than [`MAX_TAG_KEY_LEN`].
    TagKeyLength {
        /// The key.
        key: String,
    },
    /// A tag key with a character other than ASCII letters, digits, `-`, `_`.
    TagKeyCharacters {
        /// The key.
        key: String,
    },
    /// A tag key starting with [`RESERVED_TAG_PREFIX`].
    ReservedTagKey {
        /// The key.
        key: String,
    },
    /// A tag value longer than [`MAX_TAG_VALUE_LEN`] characters.
    TagValueLength {
        /// The tag's key.
        key: String,
    },
    /// A tag value with a control or format character.
    TagValueInvisible {
        /// The tag's key.
        key: String,
        /// The first such character.
        character: char,
    },
    /// More than [`MAX_USER_TAGS`] tags in one set (or one answer).
    TooManyTags {
        /// How many.
        count: usize,
    },
    /// The user's tags and the policies' together exceed [`MAX_USER_TAGS`].
    TagBudget {
        /// How many distinct keys they make.
        count: usize,
    },
    /// A chosen pool that is not a public IP pool OCID.
    NotAPoolOcid {
        /// The pool as chosen.
        pool: String,
    },
    /// A chosen pool outside the operator's allowed pools.
    PoolNotAllowed {
        /// The pool as chosen.
        pool: String,
    },
    /// A chosen pool other than the one the ReservedIP names.
    PoolDiffersFromSpec {
        /// The pool the policy chose.
        chosen: String,
        /// The pool the spec asks for.
        asked: String,
    },
    /// A deny without a reason (empty or blank).
    MissingReason,
    /// A deny reason longer than [`MAX_REASON_LEN`] bytes.
    ReasonTooLong,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::TagKeyLength { key } => write!(
                f,
                "tag key `{}` must be 1 to {MAX_TAG_KEY_LEN} characters",
                key.escape_debug()
            ),
            Violation::TagKeyCharacters { key } => write!(
                f,
                "tag key `{}` may contain only ASCII letters, digits, '-' and '_'",
                key.escape_debug()
            ),
            Violation::ReservedTagKey { key } => write!(
                f,
                "tag key `{key}` starts with {RESERVED_TAG_PREFIX}, which is reserved for the operator"
            ),
            Violation::TagValueLength { key } => write!(
                f,
                "value of tag `{key}` is longer than {MAX_TAG_VALUE_LEN} characters"
            ),
            Violation::TagValueInvisible { key, character } => write!(
                f,
                "value of tag `{key}` contains the invisible character U+{:04X}; control and format characters are not allowed",
                u32::from(*character)
            ),
            Violation::TooManyTags { count } => write!(
                f,
                "{count} tags, more than the {MAX_USER_TAGS} a public IP may carry"
            ),
            Violation::TagBudget { count } => write!(
                f,
                "with these tags the public IP would carry {count} tags, more than {MAX_USER_TAGS}"
            ),
            Violation::NotAPoolOcid { pool } => {
                write!(f, "`{pool}` is not a public IP pool OCID")
            }
            Violation::PoolNotAllowed { pool } => {
                write!(f, "pool {pool} is not among the operator's allowed pools")
            }
            Violation::PoolDiffersFromSpec { chosen, asked } => write!(
                f,
                "chose pool {chosen}, but the ReservedIP asks for {asked}; deny instead"
            ),
            Violation::MissingReason => f.write_str("deny without a reason"),
            Violation::ReasonTooLong => write!(f, "reason longer than {MAX_REASON_LEN} bytes"),
        }
    }
}

impl std::error::Error for Violation {}

/// Whether a tag key is the operator's ([`RESERVED_TAG_PREFIX`], in any case).
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::is_reserved_key;
/// assert!(is_reserved_key("K8S-OCI-OPERATOR-owner"));
/// assert!(!is_reserved_key("owner"));
/// ```
pub fn is_reserved_key(key: &str) -> bool {
    key.get(..RESERVED_TAG_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_TAG_PREFIX))
}

/// Checks a tag key: length, characters, not the operator's.
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::check_tag_key;
/// assert!(check_tag_key("cost-center").is_ok());
/// assert!(check_tag_key("app.kubernetes.io/name").is_err());
/// ```
pub fn check_tag_key(key: &str) -> Result<(), Violation> {
    if key.is_empty() || key.len() > MAX_TAG_KEY_LEN {
        return Err(Violation::TagKeyLength { key: key.into() });
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Violation::TagKeyCharacters { key: key.into() });
    }
    if is_reserved_key(key) {
        return Err(Violation::ReservedTagKey { key: key.into() });
    }
    Ok(())
}

/// Checks the value of tag `key`: length in characters, nothing invisible.
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::check_tag_value;
/// assert!(check_tag_value("team", "Zürich").is_ok());
/// assert!(check_tag_value("team", "line\nbreak").is_err());
/// ```
pub fn check_tag_value(key: &str, value: &str) -> Result<(), Violation> {
    if value.chars().count() > MAX_TAG_VALUE_LEN {
        return Err(Violation::TagValueLength { key: key.into() });
    }
    if let Some(character) = value.chars().find(|c| is_control_or_format(*c)) {
        return Err(Violation::TagValueInvisible {
            key: key.into(),
            character,
        });
    }
    Ok(())
}

/// Checks one tag, key first.
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::check_tag;
/// assert!(check_tag("owner", "My team").is_ok());
/// assert!(check_tag("k8s-oci-operator-owner", "me").is_err());
/// ```
pub fn check_tag(key: &str, value: &str) -> Result<(), Violation> {
    check_tag_key(key)?;
    check_tag_value(key, value)
}

/// Checks a set of tags: at most [`MAX_USER_TAGS`], each valid.
///
/// ```
/// use std::collections::BTreeMap;
/// use k8s_oci_operator_policy_sdk::checks::check_tags;
/// let tags = BTreeMap::from([("owner".to_string(), "me".to_string())]);
/// assert!(check_tags(&tags).is_ok());
/// ```
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), Violation> {
    if tags.len() > MAX_USER_TAGS {
        return Err(Violation::TooManyTags { count: tags.len() });
    }
    tags.iter().try_for_each(|(k, v)| check_tag(k, v))
}

/// Checks the tags an answer to [`DecisionKind::TagDefaults`](crate::DecisionKind::TagDefaults) sets.
///
/// ```
/// use k8s_oci_operator_policy_sdk::{checks, TagDefaultsResponse};
/// assert!(checks::tag_defaults(&TagDefaultsResponse::default().default_tag("team", "a")).is_ok());
/// assert!(checks::tag_defaults(&TagDefaultsResponse::default().default_tag("", "a")).is_err());
/// ```
pub fn tag_defaults(answer: &TagDefaultsResponse) -> Result<(), Violation> {
    let count = answer.defaults.len() + answer.enforced.len();
    if count > MAX_USER_TAGS {
        return Err(Violation::TooManyTags { count });
    }
    check_tags(&answer.defaults)?;
    check_tags(&answer.enforced)
}

/// Checks that tag sets together (the user's, and each policy's defaults and
/// enforced tags so far) stay within [`MAX_USER_TAGS`] distinct keys.
///
/// ```
/// use std::collections::BTreeMap;
/// use k8s_oci_operator_policy_sdk::checks;
/// let user: BTreeMap<String, String> = (0..30).map(|i| (format!("u{i}"), "v".into())).collect();
/// let policy: BTreeMap<String, String> = (0..11).map(|i| (format!("p{i}"), "v".into())).collect();
/// assert!(checks::tag_budget([&user, &policy]).is_err());
/// assert!(checks::tag_budget([&user, &user]).is_ok()); // the same keys count once
/// ```
pub fn tag_budget<'a>(
    sets: impl IntoIterator<Item = &'a BTreeMap<String, String>>,
) -> Result<(), Violation> {
    let keys: BTreeSet<&String> = sets.into_iter().flat_map(BTreeMap::keys).collect();
    if keys.len() > MAX_USER_TAGS {
        return Err(Violation::TagBudget { count: keys.len() });
    }
    Ok(())
}

/// Checks an answer to [`DecisionKind::SelectPool`](crate::DecisionKind::SelectPool):
/// a chosen pool is a pool OCID, among `allowed_pools` (`None`: any pool)
/// and the spec's own pool when it names one; a deny has a
/// [`reason`](reason()).
///
/// ```
/// use k8s_oci_operator_policy_sdk::{checks, PoolResponse};
/// let choose = PoolResponse::Choose { pool: "ocid1.publicippool.oc1..a".into() };
/// assert!(checks::select_pool(&choose, None, None).is_ok());
/// assert!(checks::select_pool(&choose, Some("ocid1.publicippool.oc1..b"), None).is_err());
/// assert!(checks::select_pool(&choose, None, Some(&[])).is_err());
/// ```
pub fn select_pool(
    answer: &PoolResponse,
    spec_pool: Option<&str>,
    allowed_pools: Option<&[String]>,
) -> Result<(), Violation> {
    match answer {
        PoolResponse::Keep => Ok(()),
        PoolResponse::Deny { reason: why } => reason(why),
        PoolResponse::Choose { pool } => {
            if !is_pool_ocid(pool) {
                return Err(Violation::NotAPoolOcid { pool: pool.clone() });
            }
            if allowed_pools.is_some_and(|pools| !pools.iter().any(|p| p == pool)) {
                return Err(Violation::PoolNotAllowed { pool: pool.clone() });
            }
            match spec_pool {
                // The spec's pool is the user's explicit (immutable) choice;
                // a policy that disagrees must deny, not silently override.
                Some(asked) if asked != pool => Err(Violation::PoolDiffersFromSpec {
                    chosen: pool.clone(),
                    asked: asked.into(),
                }),
                _ => Ok(()),
            }
        }
    }
}

/// Checks an answer to [`DecisionKind::Eligibility`](crate::DecisionKind::Eligibility):
/// a deny has a [`reason`](reason()).
///
/// ```
/// use k8s_oci_operator_policy_sdk::{checks, EligibilityResponse};
/// assert!(checks::eligibility(&EligibilityResponse::Allow).is_ok());
/// assert!(checks::eligibility(&EligibilityResponse::Deny { reason: "".into() }).is_err());
/// ```
pub fn eligibility(answer: &EligibilityResponse) -> Result<(), Violation> {
    match answer {
        EligibilityResponse::Allow => Ok(()),
        EligibilityResponse::Deny { reason: why } => reason(why),
    }
}

/// Checks a deny reason: not blank, at most [`MAX_REASON_LEN`] bytes.
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::reason;
/// assert!(reason("pod lacks label public-ip").is_ok());
/// ```
pub fn reason(reason: &str) -> Result<(), Violation> {
    if reason.trim().is_empty() {
        return Err(Violation::MissingReason);
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(Violation::ReasonTooLong);
    }
    Ok(())
}

/// Whether `pool` matches the CRD's pattern for `publicIPv4Pool`
/// (`ocid1.publicippool.` then letters, digits, `.`, `-`, `_`; at most 255).
///
/// ```
/// use k8s_oci_operator_policy_sdk::checks::is_pool_ocid;
/// assert!(is_pool_ocid("ocid1.publicippool.oc1.eu-frankfurt-1.aaa"));
/// assert!(!is_pool_ocid("ocid1.subnet.oc1..aaa"));
/// ```
pub fn is_pool_ocid(pool: &str) -> bool {
    let Some(rest) = pool.strip_prefix("ocid1.publicippool.") else {
        return false;
    };
    pool.len() <= 255
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Unicode general categories Cc (control) and Cf (format), which the CRD's
/// rule names as `\p{Cc}` and `\p{Cf}`. Cf is listed by range: the standard
/// library has no category lookup, and the set is small and stable.
fn is_control_or_format(c: char) -> bool {
    c.is_control()
        || matches!(u32::from(c),
            0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2
            | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064
            | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD
            | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0001 | 0xE0020..=0xE007F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_ascii_and_never_the_operators_in_any_case() {
        assert!(check_tag("owner", "My team").is_ok());
        assert!(check_tag("cost-center_2", "x").is_ok());
        for bad in [
            "",
            "has space",
            "app.kubernetes.io/name",
            "k8s-oci-operator-cluster",
            "K8S-OCI-OPERATOR-cluster",
            "k8s\u{2011}oci\u{2011}operator-cluster", // non-breaking hyphens
            "k8s-оci-operator-cluster",               // Cyrillic о
            &"k".repeat(101),
        ] {
            assert!(check_tag(bad, "v").is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn values_have_no_invisible_characters() {
        assert!(
            check_tag("k", "Zürich 東京 ✓").is_ok(),
            "Unicode text is fine"
        );
        for bad in [
            "a\0b",
            "line\nbreak",
            "\u{202E}evil",
            "zero\u{200B}width",
            "\u{FEFF}",
        ] {
            assert!(check_tag("k", bad).is_err(), "{bad:?} must be refused");
        }
        assert!(check_tag("k", &"v".repeat(257)).is_err());
        assert!(
            check_tag("k", &"é".repeat(256)).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn messages_say_what_to_change() {
        let cases: [(Result<(), Violation>, &str); 6] = [
            (
                check_tag("a b", "v"),
                "tag key `a b` may contain only ASCII letters, digits, '-' and '_'",
            ),
            (
                check_tag("k\n", "v"),
                "tag key `k\\n` may contain only ASCII letters, digits, '-' and '_'",
            ),
            (
                check_tag("k", "\u{200B}"),
                "value of tag `k` contains the invisible character U+200B; control and format characters are not allowed",
            ),
            (
                tag_defaults(&TagDefaultsResponse {
                    defaults: (0..21).map(|i| (format!("d{i}"), "v".into())).collect(),
                    enforced: (0..20).map(|i| (format!("e{i}"), "v".into())).collect(),
                }),
                "41 tags, more than the 40 a public IP may carry",
            ),
            (
                select_pool(
                    &PoolResponse::Choose {
                        pool: "ocid1.publicippool.oc1..a".into(),
                    },
                    None,
                    Some(&["ocid1.publicippool.oc1..b".to_string()]),
                ),
                "pool ocid1.publicippool.oc1..a is not among the operator's allowed pools",
            ),
            (
                eligibility(&EligibilityResponse::Deny {
                    reason: "x".repeat(1025),
                }),
                "reason longer than 1024 bytes",
            ),
        ];
        for (result, message) in cases {
            assert_eq!(result.map_err(|e| e.to_string()), Err(message.to_string()));
        }
    }

    #[test]
    fn pool_ocids_follow_the_crd_pattern() {
        assert!(is_pool_ocid("ocid1.publicippool.oc1..a-b_c.d"));
        for bad in [
            "ocid1.publicippool.",
            "ocid1.publicippool.oc1..a b",
            "OCID1.publicippool.oc1..a",
            &format!("ocid1.publicippool.{}", "a".repeat(237)),
        ] {
            assert!(!is_pool_ocid(bad), "{bad:?} must be refused");
        }
        assert!(is_pool_ocid(&format!(
            "ocid1.publicippool.{}",
            "a".repeat(236)
        )));
    }
}
