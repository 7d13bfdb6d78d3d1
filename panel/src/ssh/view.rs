//! What the SSH CA routes answer.

use serde::{Deserialize, Serialize};

use super::store::{CaKey, Cert};
use crate::types::Timestamp;

/// A CA key (never its private half).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CaKeyView {
    pub id: String,
    /// `ed25519`, `ecdsa-p256`, `rsa-3072` or `rsa-4096`.
    pub algorithm: String,
    /// OpenSSH one-line form, for `TrustedUserCAKeys`.
    pub public_key: String,
    /// SHA-256, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
    /// New certificates are signed with it.
    pub active: bool,
    /// Nodes should trust it (active, or retired with certificates not yet expired).
    pub trusted: bool,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    /// A retired key is trusted until then.
    pub trusted_until: Option<Timestamp>,
}

impl CaKeyView {
    #[must_use]
    pub fn of(k: &CaKey, now: i64) -> Self {
        Self {
            id: k.id.clone(),
            algorithm: k.algorithm.clone(),
            public_key: k.public_key.clone(),
            fingerprint: k.fingerprint.clone(),
            active: k.active,
            trusted: k.trusted_at(now),
            created_at: Timestamp(k.created_at),
            retired_at: k.retired_at.map(Timestamp),
            trusted_until: k.trusted_until.map(Timestamp),
        }
    }
}

/// The CA keys.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CaKeyList {
    pub data: Vec<CaKeyView>,
}

/// A signed certificate, as `POST /v1/ssh/certificate` answers it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Signed {
    pub id: String,
    /// OpenSSH one-line form: save it as `<key>-cert.pub` next to the private key.
    pub certificate: String,
    /// The serial, in decimal (a 64-bit number).
    pub serial_number: String,
    /// What sshd logs for a login with it: user, serial and certificate.
    pub key_id: String,
    pub valid_after: Timestamp,
    pub valid_before: Timestamp,
    /// `node:<node id>:<login>`, one per node and login.
    pub principals: Vec<String>,
}

/// A stored certificate.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertView {
    pub id: String,
    pub serial_number: String,
    pub user_id: String,
    /// The node asked for (none: every node the user could reach then).
    pub node_id: Option<String>,
    pub key_id: String,
    pub principals: Vec<String>,
    /// SHA-256 of the signed public key.
    pub public_key_fingerprint: String,
    pub certificate: String,
    pub force_command: Option<String>,
    pub source_address: Option<String>,
    pub valid_after: Timestamp,
    pub valid_before: Timestamp,
    /// `active`, `expired` or `revoked`.
    pub state: String,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
    pub created_at: Timestamp,
}

impl CertView {
    #[must_use]
    pub fn of(c: &Cert, now: i64) -> Self {
        let state = if c.revoked_at.is_some() {
            "revoked"
        } else if c.valid_before <= now {
            "expired"
        } else {
            "active"
        };
        Self {
            id: c.id.clone(),
            serial_number: c.serial.to_string(),
            user_id: c.user_id.clone(),
            node_id: c.node_id.clone(),
            key_id: c.key_id.clone(),
            principals: c.principals.lines().map(str::to_owned).collect(),
            public_key_fingerprint: c.public_key_fingerprint.clone(),
            certificate: c.certificate.clone(),
            force_command: c.force_command.clone(),
            source_address: c.source_address.clone(),
            valid_after: Timestamp(c.valid_after),
            valid_before: Timestamp(c.valid_before),
            state: state.into(),
            revoked_at: c.revoked_at.map(Timestamp),
            revoked_reason: c.revoked_reason.clone(),
            created_at: Timestamp(c.created_at),
        }
    }
}

/// Certificates, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertList {
    pub data: Vec<CertView>,
}
