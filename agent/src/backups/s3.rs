//! S3-compatible targets through `object_store`: a streamed multipart upload fed by the
//! blocking archive writer over a channel (never a full local copy), and a streamed
//! read for verify and restore.

use std::io::{self, Write};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};
use shardlyn_net::outbound::{Outbound, PinnedConnector};
use shardlyn_proto::backup::S3Target;
use tokio::sync::mpsc;

/// The smallest part S3 accepts (but the last).
pub const MIN_PART: u64 = 5 * 1024 * 1024;

/// A client for the target's bucket, connecting only to the endpoint's addresses the
/// node's outbound guard checked (the panel checked too, but this node's DNS and allow
/// list are the ones that count here).
///
/// # Errors
/// The endpoint is refused or the configuration is invalid.
pub async fn store(t: &S3Target, outbound: &Outbound) -> Result<AmazonS3, String> {
    let region = if t.region.is_empty() {
        "us-east-1"
    } else {
        &t.region
    };
    let endpoint = if t.endpoint.is_empty() {
        format!("https://s3.{region}.amazonaws.com")
    } else {
        t.endpoint.trim_end_matches('/').to_owned()
    };
    let checked = outbound
        .resolve_url(&endpoint)
        .await
        .map_err(|e| e.to_string())?;
    AmazonS3Builder::new()
        .with_bucket_name(&t.bucket)
        .with_region(region)
        .with_access_key_id(&t.access_key_id)
        .with_secret_access_key(&t.secret_access_key)
        .with_endpoint(&endpoint)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_virtual_hosted_style_request(false)
        .with_http_connector(PinnedConnector(checked))
        .build()
        .map_err(|e| e.to_string())
}

/// A `Write` that hands chunks of `chunk` bytes to an async task.
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    chunk: usize,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Bytes>, chunk: usize) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(chunk),
            chunk,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(self.chunk),
        ));
        self.tx
            .blocking_send(data)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= self.chunk {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Uploads what arrives on `rx` to `t.key` as a multipart upload of `t.part_size`
/// parts; completes it when the channel closes and `ok()` says the writer finished
/// cleanly, aborts it otherwise.
///
/// # Errors
/// The upload fails.
pub async fn upload(
    t: &S3Target,
    outbound: &Outbound,
    mut rx: mpsc::Receiver<Bytes>,
    writer_done: tokio::task::JoinHandle<io::Result<(String, u64)>>,
) -> Result<(String, u64), String> {
    let store = match store(t, outbound).await {
        Ok(s) => s,
        Err(e) => {
            // Stops the archive writer (its channel closes) before answering.
            drop(rx);
            let _ = writer_done.await;
            return Err(e);
        }
    };
    let part = usize::try_from(t.part_size.max(MIN_PART)).unwrap_or(usize::MAX);
    let upload = store
        .put_multipart(&ObjectPath::from(t.key.as_str()))
        .await
        .map_err(|e| format!("starting the upload: {e}"))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
    let mut failed = None;
    while let Some(chunk) = rx.recv().await {
        if let Err(e) = writer.wait_for_capacity(2).await {
            failed = Some(format!("uploading a part: {e}"));
            break;
        }
        writer.write(&chunk);
    }
    drop(rx);
    let written = match writer_done.await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(format!("writing the archive: {e}")),
        Err(e) => Err(format!("archive task: {e}")),
    };
    match (failed, written) {
        (None, Ok(done)) => {
            writer
                .finish()
                .await
                .map_err(|e| format!("completing the upload: {e}"))?;
            Ok(done)
        }
        (Some(e), _) | (None, Err(e)) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// A blocking reader over the object (for verify and extract, on a blocking thread) and
/// the object's size.
///
/// # Errors
/// The object cannot be fetched.
pub async fn reader(
    t: &S3Target,
    outbound: &Outbound,
) -> Result<(impl io::Read + Send + 'static, u64), String> {
    let store = store(t, outbound).await?;
    let got = store
        .get(&ObjectPath::from(t.key.as_str()))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => "the archive is missing from the bucket".into(),
            e => format!("fetching the archive: {e}"),
        })?;
    let size = got.meta.size;
    let stream = got.into_stream().map(|r| r.map_err(io::Error::other));
    let reader = tokio_util::io::StreamReader::new(stream);
    Ok((tokio_util::io::SyncIoBridge::new(reader), size))
}
