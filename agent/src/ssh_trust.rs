//! What this node's sshd trusts, from the panel's SSH certificate authority: the CA keys
//! (`TrustedUserCAKeys`), the revocation list (`RevokedKeys`, an OpenSSH KRL) and one
//! `AuthorizedPrincipalsFile` per login (`principals/<login>`, naming
//! `node:<node id>:<login>`), in the directory the operator enabled (`ssh_trust_dir`).
//!
//! A KRL sshd cannot read makes it refuse every key, so a KRL is parsed in full before
//! it replaces the installed one, and every file is replaced atomically (written beside
//! it, synced, renamed).

use std::io::{self, Write};
use std::path::Path;

use base64::Engine as _;

/// `"SSHKRL\n\0"`.
const MAGIC: &[u8; 8] = b"SSHKRL\n\0";

/// A cursor over KRL bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the list ends in the middle of a field".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.u32()?).map_err(|e| e.to_string())?;
        self.take(n)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Checks that `krl` is a KRL sshd reads: the header, and every section and
/// subsection of a known type, well formed, nothing left over.
///
/// # Errors
/// What is wrong with it.
pub fn validate_krl(krl: &[u8]) -> Result<(), String> {
    let mut r = Reader(krl);
    if r.take(8)? != MAGIC {
        return Err("not an OpenSSH KRL (bad magic)".into());
    }
    if r.u32()? != 1 {
        return Err("unknown KRL format version".into());
    }
    r.u64()?; // version
    r.u64()?; // generated
    r.u64()?; // flags
    r.string()?; // reserved
    r.string()?; // comment
    while !r.is_empty() {
        let kind = r.byte()?;
        let mut section = Reader(r.string()?);
        match kind {
            // Certificates: the CA key, reserved, then subsections.
            1 => {
                section.string()?;
                section.string()?;
                while !section.is_empty() {
                    let sub = section.byte()?;
                    let mut data = Reader(section.string()?);
                    match sub {
                        0x20 => {
                            let mut last = None;
                            while !data.is_empty() {
                                let serial = data.u64()?;
                                if last.is_some_and(|l| serial <= l) {
                                    return Err("serials are not in ascending order".into());
                                }
                                last = Some(serial);
                            }
                        }
                        0x21 => {
                            while !data.is_empty() {
                                let (lo, hi) = (data.u64()?, data.u64()?);
                                if lo > hi {
                                    return Err("a serial range ends before it starts".into());
                                }
                            }
                        }
                        0x22 => {
                            data.u64()?;
                            data.string()?;
                            if !data.is_empty() {
                                return Err("trailing bytes after a serial bitmap".into());
                            }
                        }
                        0x23 => {
                            while !data.is_empty() {
                                data.string()?;
                            }
                        }
                        other => return Err(format!("unknown certificate subsection {other:#x}")),
                    }
                }
            }
            // Explicit keys, SHA-1 or SHA-256 fingerprints: strings.
            2 | 3 | 5 => {
                while !section.is_empty() {
                    section.string()?;
                }
            }
            // A signature: a key and a signature.
            4 => {
                section.string()?;
                section.string()?;
            }
            other => return Err(format!("unknown KRL section {other}")),
        }
    }
    Ok(())
}

/// Checks the CA keys: one OpenSSH public key per line (type, base64, comment).
///
/// # Errors
/// The first line that is not one.
pub fn validate_keys(keys: &str) -> Result<(), String> {
    for line in keys.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
            return Err(format!("not a public key: {line:.40}"));
        };
        let ok = kind.starts_with("ssh-") || kind.starts_with("ecdsa-sha2-");
        if !ok
            || base64::engine::general_purpose::STANDARD
                .decode(blob)
                .is_err()
        {
            return Err(format!("not a public key: {line:.40}"));
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically.
fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("new");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// A login name sshd would use for `%u`.
fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 32
        && login
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Installs the trust of node `node_id` into `dir`: `ca.pub`, `revoked.krl` and
/// `principals/<login>` for each of `logins`. Nothing is replaced when the KRL or the
/// keys do not check out.
///
/// # Errors
/// A bad KRL or key list (`InvalidData`), or a write that fails.
pub fn install(
    dir: &Path,
    node_id: &str,
    logins: &[String],
    ca_keys: &str,
    krl_base64: &str,
) -> io::Result<()> {
    let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let krl = base64::engine::general_purpose::STANDARD
        .decode(krl_base64.trim())
        .map_err(|e| bad(format!("the KRL is not base64: {e}")))?;
    validate_krl(&krl).map_err(bad)?;
    validate_keys(ca_keys).map_err(bad)?;
    std::fs::create_dir_all(dir.join("principals"))?;
    for login in logins.iter().filter(|l| valid_login(l)) {
        replace(
            &dir.join("principals").join(login),
            format!("node:{node_id}:{login}\n").as_bytes(),
        )?;
    }
    replace(&dir.join("ca.pub"), ca_keys.as_bytes())?;
    replace(&dir.join("revoked.krl"), &krl)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty KRL as `ssh-keygen -k` writes it: the header only.
    fn empty() -> Vec<u8> {
        let mut k = MAGIC.to_vec();
        k.extend_from_slice(&1u32.to_be_bytes());
        k.extend_from_slice(&[0u8; 24]);
        k.extend_from_slice(&[0u8; 8]);
        k
    }

    #[test]
    fn a_broken_krl_is_refused_and_nothing_is_replaced() {
        let dir = tempfile::tempdir().expect("tmp");
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx3 ca\n";
        install(dir.path(), "n1", &["shardlyn".into()], key, &b64(&empty())).expect("install");
        let good = std::fs::read(dir.path().join("revoked.krl")).expect("krl");
        for broken in [
            b"not a krl at all".to_vec(),
            [empty(), vec![1, 0, 0, 0, 99]].concat(),
            [empty(), vec![9, 0, 0, 0, 0]].concat(),
        ] {
            let e = install(dir.path(), "n1", &["shardlyn".into()], key, &b64(&broken))
                .expect_err("refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        }
        assert_eq!(
            std::fs::read(dir.path().join("revoked.krl")).expect("krl"),
            good,
            "the installed list stays"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("principals/shardlyn")).expect("p"),
            "node:n1:shardlyn\n"
        );
        install(dir.path(), "n1", &[], "garbage", &b64(&empty())).expect_err("bad keys");
    }
}
