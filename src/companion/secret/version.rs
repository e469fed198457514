//! Secret versions: the family name rules, the `NAME_<UTC YYYYMMDDHHMMSS>` version names, and the
//! random values a rotation creates (from the OS RNG; never printed or logged).

use super::SecretError;
use std::time::SystemTime;

/// `_YYYYMMDDHHMMSS`.
const SUFFIX_LEN: usize = 15;
/// Docker's limit on secret names.
const MAX_NAME_LEN: usize = 64;
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A family member as prune sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: String,
    pub name: String,
    pub family: String,
    pub created: SystemTime,
}

/// Whether `name` is the family itself or one of its versions.
pub fn is_of_family(name: &str, family: &str) -> bool {
    name == family
        || name
            .strip_prefix(family)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|ts| ts.len() == SUFFIX_LEN - 1 && ts.bytes().all(|b| b.is_ascii_digit()))
}

/// The family must be a valid secret name that still is one with the suffix, and not a version.
pub fn check_family(name: &str) -> Result<(), SecretError> {
    let bad = |why: &str| SecretError::BadName {
        name: name.into(),
        why: why.into(),
    };
    let valid_chars = name
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'_' | b'-' | b'.')));
    if name.is_empty() || !valid_chars {
        return Err(bad(
            "use letters, digits, _ - . (starting with a letter or digit)",
        ));
    }
    if name.len() + SUFFIX_LEN > MAX_NAME_LEN {
        return Err(bad(&format!(
            "at most {} characters, so the version suffix fits Docker's {MAX_NAME_LEN}",
            MAX_NAME_LEN - SUFFIX_LEN
        )));
    }
    if let Some((family, _)) = name.rsplit_once('_') {
        if is_of_family(name, family) {
            return Err(bad(&format!(
                "this is a version; rotate the family {family:?}"
            )));
        }
    }
    Ok(())
}

/// `NAME_YYYYMMDDHHMMSS` in UTC.
pub fn version_name(family: &str, now: SystemTime) -> String {
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{family}_{stamp}")
}

/// A random alphanumeric value. Bytes ≥ 248 are drawn again so each of the 62 characters is
/// equally likely (248 = 4 × 62).
pub fn random_value(length: usize) -> Result<Vec<u8>, SecretError> {
    if !(16..=4096).contains(&length) {
        return Err(SecretError::Length(length));
    }
    let mut out = Vec::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buf).map_err(|e| SecretError::Random(e.to_string()))?;
        out.extend(
            buf.iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHANUMERIC[usize::from(*b) % ALPHANUMERIC.len()])
                .take(length - out.len()),
        );
    }
    Ok(out)
}
