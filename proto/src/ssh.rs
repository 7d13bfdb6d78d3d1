//! What a node's sshd trusts, as the panel's SSH certificate authority says it: the CA
//! keys (for `TrustedUserCAKeys`) and the revocation list (an OpenSSH KRL, for
//! `RevokedKeys`). The agent installs them where its operator enabled it
//! (`ssh_trust_dir`), with an `AuthorizedPrincipalsFile` per login naming
//! `node:<node id>:<login>`.

use serde::{Deserialize, Serialize};

/// Body of `PUT /v1/ssh/trust`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SshTrust {
    /// OpenSSH public keys, one per line.
    pub ca_keys: String,
    /// The KRL, base64.
    pub krl_base64: String,
}

/// What the agent did with it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct TrustInstalled {
    /// False when this node's operator did not enable it (no `ssh_trust_dir`).
    pub installed: bool,
    /// The directory the files went to.
    #[serde(default)]
    pub dir: Option<String>,
}
