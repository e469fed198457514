//! Who may POST: the bearer token or basic-auth pair that Alertmanager's `http_config` sends.
//! Secrets are compared in constant time so a wrong guess learns nothing from the timing.

use crate::settings::{read_secret, AuthSettings, SettingsError};
use base64::Engine;
use subtle::ConstantTimeEq;

/// The credentials a request must carry; none configured means every request is accepted.
#[derive(Clone, Default)]
pub struct Auth {
    bearer: Option<String>,
    basic: Option<(String, String)>,
}

impl std::fmt::Debug for Auth {
    // Never print a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("bearer", &self.bearer.is_some())
            .field("basic", &self.basic.is_some())
            .finish()
    }
}

impl Auth {
    /// Read the secret files named in the settings.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, SettingsError> {
        let bearer = match settings.bearer_token_file.as_str() {
            "" => None,
            path => Some(read_secret("auth.bearer_token_file", path)?),
        };
        let basic = match settings.basic_password_file.as_str() {
            "" => None,
            path => Some((
                settings.basic_username.clone(),
                read_secret("auth.basic_password_file", path)?,
            )),
        };
        Ok(Self { bearer, basic })
    }

    pub fn is_open(&self) -> bool {
        self.bearer.is_none() && self.basic.is_none()
    }

    /// Check an `Authorization` header value.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), &'static str> {
        if self.is_open() {
            return Ok(());
        }
        let Some(value) = authorization else {
            return Err("missing Authorization header");
        };
        let accepted = match split_scheme(value) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"bearer") => self
                .bearer
                .as_ref()
                .is_some_and(|t| ct_eq(rest, t.as_bytes())),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case(b"basic") => self
                .basic
                .as_ref()
                .is_some_and(|pair| basic_matches(rest, pair)),
            _ => false,
        };
        if accepted {
            Ok(())
        } else {
            Err("invalid credentials")
        }
    }
}

fn split_scheme(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = value.iter().position(|&b| b == b' ')?;
    let rest = value[space + 1..].trim_ascii();
    Some((&value[..space], rest))
}

fn basic_matches(encoded: &[u8], (user, password): &(String, String)) -> bool {
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let user_ok = ct_eq(&decoded[..colon], user.as_bytes());
    let password_ok = ct_eq(&decoded[colon + 1..], password.as_bytes());
    user_ok & password_ok
}

/// Equality whose time depends only on the expected secret's length, not on where a guess differs
/// or how long it is.
fn ct_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut padded = vec![0u8; expected.len()];
    let n = given.len().min(expected.len());
    padded[..n].copy_from_slice(&given[..n]);
    let same_len = (given.len() as u64).ct_eq(&(expected.len() as u64));
    (padded.ct_eq(expected) & same_len).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn both() -> Auth {
        Auth {
            bearer: Some("tok3n".into()),
            basic: Some(("am".into(), "pa:ss".into())),
        }
    }

    fn basic(pair: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
        .into_bytes()
    }

    #[rstest]
    #[case::bearer_ok(Some(b"Bearer tok3n".to_vec()), true)]
    #[case::bearer_case_insensitive_scheme(Some(b"bearer tok3n".to_vec()), true)]
    #[case::bearer_wrong(Some(b"Bearer tok3m".to_vec()), false)]
    #[case::bearer_prefix(Some(b"Bearer tok3".to_vec()), false)]
    #[case::bearer_longer(Some(b"Bearer tok3nn".to_vec()), false)]
    #[case::bearer_empty(Some(b"Bearer ".to_vec()), false)]
    #[case::basic_ok(Some(basic("am:pa:ss")), true)]
    #[case::basic_wrong_user(Some(basic("root:pa:ss")), false)]
    #[case::basic_wrong_password(Some(basic("am:pass")), false)]
    #[case::basic_not_base64(Some(b"Basic !!!".to_vec()), false)]
    #[case::basic_no_colon(Some(basic("ampass")), false)]
    #[case::unknown_scheme(Some(b"Digest x".to_vec()), false)]
    #[case::no_scheme(Some(b"tok3n".to_vec()), false)]
    #[case::missing(None, false)]
    fn checks(#[case] header: Option<Vec<u8>>, #[case] ok: bool) {
        assert_eq!(both().check(header.as_deref()).is_ok(), ok);
    }

    #[test]
    fn open_when_nothing_is_configured() {
        assert!(Auth::default().check(None).is_ok());
    }

    #[test]
    fn debug_hides_secrets() {
        assert!(!format!("{:?}", both()).contains("tok3n"));
    }

    /// Median over interleaved rounds of the time `compare` takes on a guess wrong at its first
    /// byte and on one wrong at its last byte; the ratio last/first.
    fn position_ratio(compare: impl Fn(&[u8], &[u8]) -> bool) -> f64 {
        use std::hint::black_box;
        use std::time::Instant;
        let secret = vec![b's'; 64 * 1024];
        let mut first = secret.clone();
        first[0] = b'x';
        let mut last = secret.clone();
        *last.last_mut().unwrap() = b'x';
        let time = |guess: &[u8]| {
            let start = Instant::now();
            for _ in 0..20 {
                black_box(compare(black_box(guess), black_box(&secret)));
            }
            start.elapsed().as_nanos() as f64
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..41 {
            a.push(time(&first));
            b.push(time(&last));
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|x, y| x.total_cmp(y));
            v[v.len() / 2]
        };
        median(&mut b) / median(&mut a)
    }

    /// Where a wrong token differs does not show in the time its check takes. The same harness
    /// sees the early exit of an ordinary comparison, so it is sensitive enough to catch one.
    #[test]
    fn a_wrong_token_takes_as_long_wherever_it_differs() {
        let naive = position_ratio(|a, b| a == b);
        assert!(naive > 3.0, "harness not sensitive: naive ratio {naive:.2}");
        let constant = position_ratio(ct_eq);
        assert!(
            (0.75..1.33).contains(&constant),
            "ct_eq time depends on where the guess differs: ratio {constant:.2} (naive {naive:.2})"
        );
    }
}
