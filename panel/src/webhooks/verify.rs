//! Signature checks of the three providers: pure functions over the raw body, every
//! comparison in constant time. GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
//! the body>`; GitLab: `X-Gitlab-Token` is the secret itself; Stripe:
//! `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">[,v1=...]`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery is refused; every variant answers 401 and records nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The signature header is absent.
    Missing,
    /// The header cannot be parsed.
    Malformed,
    /// No signature matches the secret.
    Mismatch,
    /// The signed timestamp is outside the tolerance (Stripe).
    Stale,
}

impl Refusal {
    /// The message shown to the sender.
    #[must_use]
    pub fn message(self, header: &str) -> String {
        match self {
            Self::Missing => format!("missing {header} header"),
            Self::Malformed => format!("malformed {header} header"),
            Self::Mismatch => format!("{header} does not match"),
            Self::Stale => format!("{header} timestamp is outside the accepted tolerance"),
        }
    }
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], Refusal> {
    // HMAC takes keys of any length; the error branch is unreachable but not a panic.
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| Refusal::Mismatch)?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// Whether a hex signature equals `expected`, in constant time for well-formed input.
fn hex_matches(expected: &[u8; 32], candidate: &str) -> bool {
    match hex::decode(candidate.trim()) {
        Ok(bytes) if bytes.len() == expected.len() => bytes.ct_eq(expected).into(),
        _ => false,
    }
}

/// Checks GitHub's `X-Hub-Signature-256`.
///
/// # Errors
/// The header is absent, not `sha256=<hex>`, or does not match.
pub fn github(secret: &[u8], header: Option<&str>, body: &[u8]) -> Result<(), Refusal> {
    let header = header.map(str::trim).ok_or(Refusal::Missing)?;
    let hex_sig = header.strip_prefix("sha256=").ok_or(Refusal::Malformed)?;
    if hex_sig.len() != 64 || !hex_sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal::Malformed);
    }
    let expected = mac(secret, &[body])?;
    if hex_matches(&expected, hex_sig) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

/// Checks GitLab's `X-Gitlab-Token` against a token's secret. Both sides are hashed
/// first so the comparison takes the same time whatever their lengths.
///
/// # Errors
/// The header is absent or differs.
pub fn gitlab(secret: &str, header: Option<&str>) -> Result<(), Refusal> {
    let given = header.ok_or(Refusal::Missing)?;
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(secret.as_bytes());
    if bool::from(a.ct_eq(&b)) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

/// Checks Stripe's `Stripe-Signature` at `now` (unix seconds); returns the signed time.
/// Any one `v1` value may match (Stripe sends several while a secret is being rolled);
/// other schemes (`v0`) are ignored, as Stripe's libraries do.
///
/// # Errors
/// The header is absent or lacks `t`/`v1`, no `v1` matches, or `t` is more than
/// `tolerance_secs` away from `now`.
pub fn stripe(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: u64,
) -> Result<i64, Refusal> {
    let header = header.ok_or(Refusal::Missing)?;
    let mut timestamp: Option<&str> = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" if timestamp.is_none() => timestamp = Some(value.trim()),
            "v1" => signatures.push(value.trim()),
            _ => {}
        }
    }
    let t_text = timestamp.ok_or(Refusal::Malformed)?;
    let t: i64 = t_text.parse().map_err(|_| Refusal::Malformed)?;
    if signatures.is_empty() {
        return Err(Refusal::Malformed);
    }
    let expected = mac(secret, &[t_text.as_bytes(), b".", body])?;
    // Every candidate is compared (no early exit) so timing says nothing about which.
    let matched = signatures
        .iter()
        .fold(false, |found, sig| hex_matches(&expected, sig) | found);
    if !matched {
        return Err(Refusal::Mismatch);
    }
    if now.abs_diff(t) > tolerance_secs {
        return Err(Refusal::Stale);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_mac(secret: &[u8], data: &[u8]) -> String {
        hex::encode(mac(secret, &[data]).expect("mac"))
    }

    #[test]
    fn github_signatures() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let good = format!("sha256={}", hex_mac(b"s3cret", body));
        assert_eq!(github(b"s3cret", Some(&good), body), Ok(()));
        assert_eq!(
            github(
                b"s3cret",
                Some(&good.to_uppercase().replace("SHA256=", "sha256=")),
                body
            ),
            Ok(()),
            "hex case does not matter"
        );
        assert_eq!(github(b"other", Some(&good), body), Err(Refusal::Mismatch));
        assert_eq!(
            github(b"s3cret", Some(&good), b"{}"),
            Err(Refusal::Mismatch)
        );
        assert_eq!(github(b"s3cret", None, body), Err(Refusal::Missing));
        for bad in [
            "",
            "sha1=abc",
            "sha256=",
            "sha256=zz",
            &good[..good.len() - 1],
        ] {
            assert_eq!(
                github(b"s3cret", Some(bad), body),
                Err(Refusal::Malformed),
                "{bad}"
            );
        }
        let non_ascii = format!("sha256={}", "é".repeat(32));
        assert_eq!(
            github(b"s3cret", Some(&non_ascii), body),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn gitlab_tokens() {
        assert_eq!(gitlab("abc", Some("abc")), Ok(()));
        assert_eq!(gitlab("abc", Some("abd")), Err(Refusal::Mismatch));
        assert_eq!(gitlab("abc", Some("")), Err(Refusal::Mismatch));
        assert_eq!(gitlab("abc", None), Err(Refusal::Missing));
    }

    #[test]
    fn stripe_signatures() {
        let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
        let now = 1_700_000_000;
        let sign = |t: i64, secret: &[u8]| {
            hex_mac(
                secret,
                format!("{t}.{}", String::from_utf8_lossy(body)).as_bytes(),
            )
        };
        let good = format!("t={now},v1={}", sign(now, b"whsec_x"));
        assert_eq!(stripe(b"whsec_x", Some(&good), body, now, 300), Ok(now));
        assert_eq!(
            stripe(b"whsec_x", Some(&good), body, now + 300, 300),
            Ok(now)
        );
        assert_eq!(
            stripe(b"whsec_x", Some(&good), body, now + 301, 300),
            Err(Refusal::Stale)
        );
        assert_eq!(
            stripe(b"whsec_x", Some(&good), body, now - 301, 300),
            Err(Refusal::Stale)
        );
        assert_eq!(
            stripe(b"whsec_y", Some(&good), body, now, 300),
            Err(Refusal::Mismatch)
        );
        // Several v1 values: any one matching is enough; v0 is ignored.
        let many = format!(
            "t={now},v1={},v1={},v0={}",
            sign(now, b"whsec_old"),
            sign(now, b"whsec_x"),
            "00".repeat(32)
        );
        assert_eq!(stripe(b"whsec_x", Some(&many), body, now, 300), Ok(now));
        // A signature made for another timestamp does not verify.
        let moved = format!("t={},v1={}", now + 1, sign(now, b"whsec_x"));
        assert_eq!(
            stripe(b"whsec_x", Some(&moved), body, now, 300),
            Err(Refusal::Mismatch)
        );
        for bad in [
            "",
            "garbage",
            "v1=abc",
            &format!("t={now}"),
            &format!("t=soon,v1={}", sign(now, b"whsec_x")),
            &format!("t={now},v0={}", sign(now, b"whsec_x")),
        ] {
            assert!(
                matches!(
                    stripe(b"whsec_x", Some(bad), body, now, 300),
                    Err(Refusal::Malformed)
                ),
                "{bad}"
            );
        }
        assert_eq!(
            stripe(b"whsec_x", None, body, now, 300),
            Err(Refusal::Missing)
        );
        // Extreme timestamps neither overflow nor pass.
        let extreme = format!("t={},v1={}", i64::MIN, sign(i64::MIN, b"whsec_x"));
        assert_eq!(
            stripe(b"whsec_x", Some(&extreme), body, now, 300),
            Err(Refusal::Stale)
        );
    }
}
