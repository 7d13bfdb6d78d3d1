//! A refusal given before the request's body was read (401, 404, 413 while a body is
//! still coming) reaches a client behind a reverse proxy only when the rest of that body
//! is read first. hyper closes such a connection at once, the kernel answers the bytes
//! still arriving with a reset, and a proxy that streams the body (Caddy does; nginx
//! buffers it first) reads the reset instead of the answer and says `502 Bad Gateway`.
//! So what a handler left unread is read and dropped before its answer goes out, within
//! a bound; past it the connection closes as before.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};

/// At most this much of a body left unread is read and dropped (here, and by
/// `files::proxy::relay_drained`, whose body another task holds).
pub(crate) const MAX_BYTES: u64 = 64 * 1024 * 1024;
/// And for at most this long.
pub(crate) const MAX_TIME: Duration = Duration::from_secs(10);

/// The request's body, handing what is left of it to [`middleware`] when it is dropped
/// unfinished.
struct Tracked {
    inner: Option<Body>,
    left: Arc<Mutex<Option<Body>>>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        // Finished or broken: nothing is left to read.
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.inner = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(body) = self.inner.take().filter(|b| !b.is_end_stream())
            && let Ok(mut slot) = self.left.lock()
        {
            *slot = Some(body);
        }
    }
}

/// Runs the request, then reads what its handler left of its body (see the module).
pub async fn middleware(req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let left = Arc::new(Mutex::new(None));
    let tracked = Arc::clone(&left);
    let req = req.map(|body| {
        Body::new(Tracked {
            inner: Some(body),
            left: tracked,
        })
    });
    let response = next.run(req).await;
    let rest = left.lock().ok().and_then(|mut slot| slot.take());
    if let Some(rest) = rest {
        let mut chunks = rest.into_data_stream();
        let mut read = 0;
        let _ = tokio::time::timeout(MAX_TIME, async {
            while let Some(Ok(chunk)) = chunks.next().await {
                read += chunk.len() as u64;
                if read > MAX_BYTES {
                    break;
                }
            }
        })
        .await;
    }
    response
}
