//! OpenSSH key revocation lists (KRL), the binary format `sshd`'s `RevokedKeys` reads
//! (OpenSSH's `PROTOCOL.krl`). Written here, as no crate writes it: a header, then one
//! certificate section per CA key listing the revoked serials and key ids. Serials are
//! sorted and unique, as `sshd` requires.

/// `"SSHKRL\n\0"`.
const MAGIC: u64 = 0x5353_484b_524c_0a00;
const FORMAT_VERSION: u32 = 1;
const SECTION_CERTIFICATES: u8 = 1;
const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_KEY_ID: u8 = 0x23;

/// What one CA revoked.
#[derive(Debug, Clone, Default)]
pub struct Revoked {
    /// The CA's public key, in SSH wire encoding.
    pub ca_key: Vec<u8>,
    pub serials: Vec<u64>,
    pub key_ids: Vec<String>,
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The KRL of `revoked`, at `version` (it grows with each change), generated at
/// `generated` (seconds since the epoch).
#[must_use]
pub fn write(version: u64, generated: u64, comment: &str, revoked: &[Revoked]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&generated.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    put_string(&mut out, b"");
    put_string(&mut out, comment.as_bytes());
    for ca in revoked {
        if ca.serials.is_empty() && ca.key_ids.is_empty() {
            continue;
        }
        let mut section = Vec::new();
        put_string(&mut section, &ca.ca_key);
        put_string(&mut section, b"");
        let mut serials = ca.serials.clone();
        serials.sort_unstable();
        serials.dedup();
        if !serials.is_empty() {
            let mut list = Vec::with_capacity(serials.len() * 8);
            for s in serials {
                list.extend_from_slice(&s.to_be_bytes());
            }
            section.push(CERT_SERIAL_LIST);
            put_string(&mut section, &list);
        }
        let mut ids = ca.key_ids.clone();
        ids.sort();
        ids.dedup();
        if !ids.is_empty() {
            let mut list = Vec::new();
            for id in &ids {
                put_string(&mut list, id.as_bytes());
            }
            section.push(CERT_KEY_ID);
            put_string(&mut section, &list);
        }
        out.push(SECTION_CERTIFICATES);
        put_string(&mut out, &section);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_krl_is_only_its_header() {
        let krl = write(7, 1_700_000_000, "", &[]);
        assert_eq!(&krl[..8], b"SSHKRL\n\0");
        assert_eq!(krl.len(), 8 + 4 + 8 + 8 + 8 + 4 + 4);
        assert_eq!(u64::from_be_bytes(krl[12..20].try_into().expect("8")), 7);
    }

    #[test]
    fn serials_are_sorted_and_unique() {
        let krl = write(
            1,
            0,
            "c",
            &[Revoked {
                ca_key: vec![1, 2],
                serials: vec![9, 3, 9],
                key_ids: vec![],
            }],
        );
        let tail = &krl[krl.len() - 16..];
        assert_eq!(u64::from_be_bytes(tail[..8].try_into().expect("8")), 3);
        assert_eq!(u64::from_be_bytes(tail[8..].try_into().expect("8")), 9);
    }
}
