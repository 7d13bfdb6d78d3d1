//! An `object_store` HTTP connector pinned to the addresses [`Outbound`](super::Outbound)
//! checked: S3 requests reach exactly those, follow no redirect, and never trigger a
//! second DNS lookup.

use std::time::Duration;

use object_store::ClientOptions;
use object_store::client::{HttpClient, HttpConnector};

use super::Checked;

/// Connect timeout of the pinned client (object_store's default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of each request (object_store's default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the store's HTTP client from a [`Checked`] endpoint instead of the store's
/// own options (which would resolve the host again).
#[derive(Debug, Clone)]
pub struct PinnedConnector(pub Checked);

impl HttpConnector for PinnedConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let builder = reqwest::Client::builder()
            .user_agent(concat!("shardlyn/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // Compression would change the Content-Length object_store relies on.
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate()
            .https_only(self.0.url.scheme() == "https");
        let client = self
            .0
            .pin(builder)
            .build()
            .map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })?;
        Ok(HttpClient::new(client))
    }
}
