//! SFTP logins: the agent's SFTP server asks the panel whether a login may go in.
//!
//! The request travels on the agent's `/v1/events` stream as an
//! [`Event`](crate::instance::Event) named [`SFTP_AUTH`] whose only argument is an
//! [`AuthRequest`]; the panel answers with `POST /v1/sftp/auth/{id}` carrying an
//! [`AuthAnswer`]. The agent refuses the login when no answer comes in time.

use serde::{Deserialize, Serialize};

/// Name of the event carrying an [`AuthRequest`] on the agent's `/v1/events` stream.
pub const SFTP_AUTH: &str = "sftp auth";

/// One login attempt, as the SFTP client presented it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuthRequest {
    /// Random id the answer is posted to (`/v1/sftp/auth/{id}`).
    pub id: String,
    /// `<email>.<instance id prefix>`, as typed by the user.
    pub username: String,
    /// The password, for a password login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The public key in OpenSSH form (`ssh-ed25519 AAAA...`), for a key login; the
    /// client has proven it holds the private half.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// An OpenSSH user certificate in its one-line form
    /// (`ssh-ed25519-cert-v01@openssh.com AAAA...`), for a certificate login; the client
    /// has proven it holds the certified key. Whether the CA is trusted is the panel's
    /// to decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The client's address.
    pub remote_ip: String,
}

/// The panel's decision on an [`AuthRequest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuthAnswer {
    /// Whether the login goes in.
    pub allow: bool,
    /// The instance the session is rooted at (full id) when allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The panel user, for the agent's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// May list, stat and download.
    #[serde(default)]
    pub read: bool,
    /// May upload, create, rename and delete.
    #[serde(default)]
    pub write: bool,
    /// Why a login was refused (logged by the agent, never shown to the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuthAnswer {
    /// A refusal with its reason.
    #[must_use]
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            reason: Some(reason.into()),
            ..Self::default()
        }
    }
}

/// Splits an SFTP username at its last `.` into the account (lower-cased email) and
/// the instance id prefix. `None` when either side is empty.
#[must_use]
pub fn split_username(username: &str) -> Option<(String, &str)> {
    let (user, instance) = username.rsplit_once('.')?;
    let user = user.trim();
    if user.is_empty() || instance.is_empty() {
        return None;
    }
    Some((user.to_lowercase(), instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_split_at_the_last_dot() {
        assert_eq!(
            split_username("Alice.Smith@Example.com.0192abcd"),
            Some(("alice.smith@example.com".to_string(), "0192abcd"))
        );
        assert_eq!(split_username("nodot"), None);
        assert_eq!(split_username(".0192abcd"), None);
        assert_eq!(split_username("a@b.c."), None);
    }

    #[test]
    fn requests_round_trip_without_empty_fields() {
        let r = AuthRequest {
            id: "r1".into(),
            username: "a@b.c.01234567".into(),
            password: Some("pw".into()),
            public_key: None,
            certificate: None,
            remote_ip: "127.0.0.1".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("public_key").is_none());
        assert!(v.get("certificate").is_none());
        assert_eq!(serde_json::from_value::<AuthRequest>(v).unwrap(), r);
    }
}
