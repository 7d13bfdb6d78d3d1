//! Appending one request body to a part file: frames are handed to a blocking writer
//! thread (which also hashes them for the checksum extension) as they arrive, so network
//! and disk overlap. A body cut short keeps what arrived (tus semantics) unless a
//! checksum was asked for, in which case the whole chunk is dropped.

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use sha1::Digest;

/// A checksum algorithm of the tus checksum extension.
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// An `Upload-Checksum` value: the algorithm and the expected digest.
pub struct Checksum {
    pub hasher: Hasher,
    pub expected: Vec<u8>,
}

impl Checksum {
    /// Parses `sha1 <base64>` / `sha256 <base64>`; `Err` names what is wrong.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let (algo, digest) = value
            .trim()
            .split_once(' ')
            .ok_or("Upload-Checksum must be `<algorithm> <base64 digest>`")?;
        let expected = base64::engine::general_purpose::STANDARD
            .decode(digest.trim())
            .map_err(|_| "Upload-Checksum digest is not base64")?;
        let hasher = match algo.to_ascii_lowercase().as_str() {
            "sha1" => Hasher::Sha1(sha1::Sha1::new()),
            "sha256" => Hasher::Sha256(sha2::Sha256::new()),
            _ => return Err("unsupported checksum algorithm (sha1, sha256)"),
        };
        Ok(Self { hasher, expected })
    }
}

/// How an append ended.
pub enum Outcome {
    /// Every byte of the body arrived: the new end of data.
    Done(u64),
    /// The body broke off; `u64` is the end of data written so far.
    Cut(u64),
    /// The body went past the upload's length.
    TooLong,
    /// The checksum did not match.
    Mismatch,
}

/// Writes `body` into `part` from `offset` on, at most `limit` bytes. Everything past
/// `offset` is dropped first (an unsynced tail), and again on `TooLong` and `Mismatch`,
/// and on `Cut` with a checksum. The file is synced before this returns.
///
/// # Errors
/// The part file cannot be written.
pub async fn append(
    part: PathBuf,
    offset: u64,
    limit: u64,
    checksum: Option<Checksum>,
    body: Body,
) -> std::io::Result<Outcome> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(64);
    let writer = tokio::task::spawn_blocking(move || write_all(&part, offset, checksum, &rx));
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut cut = false;
    let mut too_long = false;
    while let Some(frame) = stream.next().await {
        let Ok(data) = frame else {
            cut = true;
            break;
        };
        received += data.len() as u64;
        if received > limit {
            too_long = true;
            break;
        }
        // The writer failing drops its receiver; its error is reported below.
        if send(&tx, data).await.is_err() {
            break;
        }
    }
    drop(tx);
    let (file_end, digest_ok) = writer
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
    let rollback = too_long || !digest_ok.unwrap_or(true) || (cut && digest_ok.is_some());
    if rollback {
        truncate(file_end.0, offset).await?;
    }
    Ok(if too_long {
        Outcome::TooLong
    } else if digest_ok == Some(false) && !cut {
        Outcome::Mismatch
    } else if cut {
        Outcome::Cut(if digest_ok.is_some() {
            offset
        } else {
            file_end.1
        })
    } else {
        Outcome::Done(file_end.1)
    })
}

/// Hands `data` to the writer without blocking the runtime when its queue is full.
async fn send(tx: &std::sync::mpsc::SyncSender<Bytes>, data: Bytes) -> Result<(), ()> {
    match tx.try_send(data) {
        Ok(()) => Ok(()),
        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(()),
        Err(std::sync::mpsc::TrySendError::Full(data)) => {
            let tx = tx.clone();
            tokio::task::spawn_blocking(move || tx.send(data).map_err(|_| ()))
                .await
                .map_err(|_| ())?
        }
    }
}

async fn truncate(part: PathBuf, len: u64) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        let f = std::fs::OpenOptions::new().write(true).open(part)?;
        f.set_len(len)?;
        f.sync_all()
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))?
}

type Written = ((PathBuf, u64), Option<bool>);

/// The blocking side: writes what arrives, syncs, and says whether the digest matched
/// (`None` without a checksum).
fn write_all(
    part: &std::path::Path,
    offset: u64,
    checksum: Option<Checksum>,
    rx: &std::sync::mpsc::Receiver<Bytes>,
) -> std::io::Result<Written> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(part)?;
    file.set_len(offset)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut out = std::io::BufWriter::with_capacity(4 << 20, file);
    let mut checksum = checksum;
    let mut written = 0u64;
    while let Ok(data) = rx.recv() {
        if let Some(c) = checksum.as_mut() {
            c.hasher.update(&data);
        }
        out.write_all(&data)?;
        written += data.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()?;
    let ok = checksum.map(|c| c.hasher.finish() == c.expected);
    Ok(((part.to_path_buf(), offset + written), ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn checksum_headers_parse() {
        // The tus spec's example: sha1 of "hello world".
        let c = Checksum::parse("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").expect("sha1");
        assert_eq!(c.expected.len(), 20);
        assert_eq!(c.expected, sha1::Sha1::digest(b"hello world").to_vec());
        assert!(Checksum::parse("sha256 ").is_err());
        assert!(Checksum::parse("md5 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").is_err());
        assert!(Checksum::parse("sha1 not!base64").is_err());
        assert!(Checksum::parse("sha1").is_err());
    }

    #[tokio::test]
    async fn appends_check_digests_and_limits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("u.part");
        let out = append(part.clone(), 0, 11, None, Body::from("hello "))
            .await
            .expect("append");
        assert!(matches!(out, Outcome::Done(6)));
        let good = Checksum::parse(&format!("sha256 {}", b64(&sha2::Sha256::digest(b"world"))))
            .expect("checksum");
        let out = append(part.clone(), 6, 5, Some(good), Body::from("world"))
            .await
            .expect("append");
        assert!(matches!(out, Outcome::Done(11)));
        let bad = Checksum::parse("sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=").expect("checksum");
        let out = append(part.clone(), 11, 10, Some(bad), Body::from("nope"))
            .await
            .expect("append");
        assert!(matches!(out, Outcome::Mismatch));
        let out = append(part.clone(), 11, 2, None, Body::from("too long"))
            .await
            .expect("append");
        assert!(matches!(out, Outcome::TooLong));
        assert_eq!(std::fs::read(&part).expect("read"), b"hello world");
    }
}
