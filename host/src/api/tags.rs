//! The rules for the freeform tags a user (or a policy) puts on a public IP,
//! in one place: the CRD's CEL rules say the same at admission (see
//! `crd.rs`), and the operator checks again before any OCI write, so a spec
//! stored before the rules existed, or a policy's answer, is held to them.
//!
//! Keys: 1 to 100 ASCII letters, digits, `-` or `_`. OCI refuses periods
//! and spaces in tag keys; allowing only ASCII also shuts out look-alike
//! Unicode (a Cyrillic `о`, a non-breaking hyphen) that could pass for the
//! operator's own keys. Keys starting with `k8s-oci-operator-`, in any case,
//! are the operator's. Values: up to 256 characters, none of them a control
//! or format character (NUL, newlines, bidi overrides, zero-width spaces),
//! which would make a value display as something it is not.

use std::collections::BTreeMap;

use super::crd::OWNERSHIP_TAG_PREFIX;

/// OCI's limits for freeform tags (key length, value length); we leave room
/// under OCI's per-resource tag budget for the operator's own ownership tags.
pub const MAX_TAG_KEY_LEN: usize = 100;
pub const MAX_TAG_VALUE_LEN: usize = 256;
pub const MAX_USER_TAGS: usize = 40;

/// Whether a tag key is the operator's (its prefix, in any case).
pub fn is_reserved_key(key: &str) -> bool {
    key.get(..OWNERSHIP_TAG_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(OWNERSHIP_TAG_PREFIX))
}

/// Checks one tag; the error says what to change.
pub fn check_tag(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_TAG_KEY_LEN {
        return Err(format!(
            "tag key `{}` must be 1 to {MAX_TAG_KEY_LEN} characters",
            key.escape_debug()
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "tag key `{}` may contain only ASCII letters, digits, '-' and '_'",
            key.escape_debug()
        ));
    }
    if is_reserved_key(key) {
        return Err(format!(
            "tag key `{key}` starts with k8s-oci-operator-, which is reserved for the operator"
        ));
    }
    if value.chars().count() > MAX_TAG_VALUE_LEN {
        return Err(format!(
            "value of tag `{key}` is longer than {MAX_TAG_VALUE_LEN} characters"
        ));
    }
    if let Some(c) = value.chars().find(|c| is_control_or_format(*c)) {
        return Err(format!(
            "value of tag `{key}` contains the invisible character U+{:04X}; control and format characters are not allowed",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Checks a set of user tags.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), String> {
    if tags.len() > MAX_USER_TAGS {
        return Err(format!(
            "{} tags, more than the {MAX_USER_TAGS} a public IP may carry",
            tags.len()
        ));
    }
    tags.iter().try_for_each(|(k, v)| check_tag(k, v))
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
    fn keys_are_plain_ascii_and_never_ours_in_any_case() {
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
}
