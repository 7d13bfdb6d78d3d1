//! Certificate logins to SFTP: an OpenSSH user certificate the agent's SFTP server
//! received (russh has checked the client holds the certified key) is let in only when
//! one of the CA keys still trusted signed it, now lies inside its validity window, the
//! panel stored it (`ssh_certificates`, which also says whether it was revoked: the KRL is
//! built from the same rows), the SFTP username is one of its principals, and its stored
//! user is the account the username names. The caller ([`super::auth`]) then refuses a
//! suspended account and lets [`super::auth`]'s `grant` decide the instance and rights,
//! as for password logins.

use std::net::IpAddr;

use shardlyn_proto::sftp::split_username;
use ssh_key::certificate::CertType;
use ssh_key::{Certificate, HashAlg, PublicKey};

use crate::config::Net;
use crate::db::now_ms;
use crate::error::AppResult;
use crate::ssh::store;
use crate::state::AppState;
use crate::users::store::UserAuthRow;

/// Longest certificate looked at (an RSA 4096 CA's is about 2.5 kB).
const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// `None` when `text` is a certificate the panel issued to `account` for `username`,
/// trusted, in its window and not revoked; otherwise why not.
///
/// # Errors
/// Database failure.
pub async fn check(
    state: &AppState,
    account: Option<&UserAuthRow>,
    username: &str,
    text: &str,
    remote_ip: &str,
) -> AppResult<Option<String>> {
    if text.len() > MAX_CERTIFICATE_BYTES {
        return Ok(Some("certificate too long".into()));
    }
    let Ok(cert) = Certificate::from_openssh(text.trim()) else {
        return Ok(Some("unreadable certificate".into()));
    };
    if cert.cert_type() != CertType::User {
        return Ok(Some("not a user certificate".into()));
    }
    let now = now_ms();
    let trusted: Vec<_> = store::keys(&state.db.pool)
        .await?
        .iter()
        .filter(|k| k.trusted_at(now))
        .filter_map(|k| PublicKey::from_openssh(&k.public_key).ok())
        .map(|k| k.fingerprint(HashAlg::Sha256))
        .collect();
    let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
    if !trusted.contains(&signer) {
        return Ok(Some("not signed by a CA key the panel trusts".into()));
    }
    // The signature, the CA once more, and valid_after <= now < valid_before.
    let now_secs = u64::try_from(now / 1000).unwrap_or(0);
    if cert.validate_at(now_secs, &trusted).is_err() {
        return Ok(Some(
            "the certificate is expired, not yet valid or badly signed".into(),
        ));
    }
    let Ok(serial) = i64::try_from(cert.serial()) else {
        return Ok(Some("the panel did not issue this certificate".into()));
    };
    let Some(stored) = store::cert_by_serial(&state.db.pool, serial).await? else {
        return Ok(Some("the panel did not issue this certificate".into()));
    };
    // Exactly the one issued: same key, principals, window, options and CA signature.
    let issued = Certificate::from_openssh(&stored.certificate)
        .ok()
        .and_then(|c| c.to_bytes().ok());
    if issued.is_none() || issued != cert.to_bytes().ok() {
        return Ok(Some("the panel did not issue this certificate".into()));
    }
    if stored.revoked_at.is_some() {
        return Ok(Some("the certificate is revoked".into()));
    }
    if !cert
        .valid_principals()
        .iter()
        .any(|p| same_username(p, username))
    {
        return Ok(Some("the certificate is not for this username".into()));
    }
    if account.is_none_or(|a| a.user.id != stored.user_id) {
        return Ok(Some("the certificate was issued to another account".into()));
    }
    Ok(refused_option(&cert, remote_ip))
}

/// Whether certificate principal `principal` names SFTP username `username` (the email
/// part compared as the login compares it, the instance part without case).
fn same_username(principal: &str, username: &str) -> bool {
    match (split_username(principal), split_username(username)) {
        (Some((a, ia)), Some((b, ib))) => a == b && ia.eq_ignore_ascii_case(ib),
        _ => false,
    }
}

/// Why the certificate's critical options keep it out of SFTP, if they do: a
/// `source-address` that does not list the client, a `force-command` (an SFTP session
/// runs no command) or an option we do not know (OpenSSH refuses those too).
fn refused_option(cert: &Certificate, remote_ip: &str) -> Option<String> {
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "source-address" => {
                let ip = remote_ip.parse::<IpAddr>().ok();
                let listed = ip.is_some_and(|ip| {
                    value
                        .split(',')
                        .filter_map(|n| Net::parse(n).ok())
                        .any(|n| n.contains(ip))
                });
                if !listed {
                    return Some("the certificate is bound to other addresses".into());
                }
            }
            "force-command" => {
                return Some("a certificate with force-command cannot open SFTP".into());
            }
            other => return Some(format!("unknown critical option {other:?}")),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_name_a_username_like_the_login_reads_it() {
        assert!(same_username(
            "admin@example.com.0192abcd",
            "Admin@Example.COM.0192ABCD"
        ));
        assert!(!same_username(
            "admin@example.com.0192abcd",
            "admin@example.com.0192abce"
        ));
        assert!(!same_username(
            "admin@example.com.0192abcd",
            "other@example.com.0192abcd"
        ));
        assert!(!same_username("node:n1:root", "node:n1:root"));
        assert!(!same_username("", "admin@example.com.0192abcd"));
    }

    fn cert_with(options: &[(&str, &str)]) -> Certificate {
        let ca = crate::ssh::ca::generate("ed25519").expect("ca");
        let subject = crate::ssh::ca::generate("ed25519").expect("key");
        let mut b = ssh_key::certificate::Builder::new(
            [0u8; 32],
            subject.public_key().key_data().clone(),
            0,
            u64::MAX,
        )
        .expect("builder");
        b.valid_principal("a@b.c.01234567").expect("principal");
        for (k, v) in options {
            b.critical_option(*k, *v).expect("option");
        }
        b.sign(&ca).expect("sign")
    }

    #[test]
    fn critical_options_are_honoured_or_refused() {
        assert_eq!(refused_option(&cert_with(&[]), "127.0.0.1"), None);
        let bound = cert_with(&[("source-address", "10.0.0.0/8,127.0.0.1")]);
        assert_eq!(refused_option(&bound, "127.0.0.1"), None);
        assert_eq!(refused_option(&bound, "10.1.2.3"), None);
        assert!(refused_option(&bound, "192.0.2.7").is_some());
        assert!(refused_option(&bound, "not-an-ip").is_some());
        assert!(refused_option(&cert_with(&[("force-command", "ls")]), "127.0.0.1").is_some());
        assert!(refused_option(&cert_with(&[("verify-required", "")]), "127.0.0.1").is_some());
    }
}
