//! A WebSocket as a byte stream: binary messages in, binary messages out. HTTP/2 runs
//! over it (hyper does the framing, multiplexing and flow control), so the tunnel needs no
//! protocol of its own. Both ends use this adapter: the agent as HTTP/2 server, the panel
//! as HTTP/2 client.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Read buffer of a tunnel's WebSocket. tungstenite zero-fills its read buffer up to this
/// size before every read, so all of it is resident for every connection: the 128 KiB
/// default cost the panel 128 KiB per idle agent. A larger frame still arrives whole (the
/// buffer grows to fit it), and HTTP/2 frames are 16 KiB by default, so streaming stays
/// far above what consoles need (measured in `panel/benches/tunnel_scale.rs`).
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

/// HTTP/2 settings of both ends of a tunnel. Frames up to 256 KiB carry a bulk transfer
/// (uploads, downloads, backups) in 16 times fewer messages than the 16 KiB default, and
/// windows of a few MiB keep the pipe full; none of it is allocated until used, so idle
/// tunnels cost the same.
pub const H2_MAX_FRAME_BYTES: u32 = 256 * 1024;
/// Per-stream receive window.
pub const H2_STREAM_WINDOW_BYTES: u32 = 4 * 1024 * 1024;
/// Per-connection receive window.
pub const H2_CONN_WINDOW_BYTES: u32 = 8 * 1024 * 1024;

/// WebSocket settings for a tunnel: tungstenite's defaults with a small read buffer.
#[must_use]
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES)
}

/// Adapts a WebSocket (`Stream` + `Sink` of messages) to `AsyncRead` + `AsyncWrite`.
pub struct WsIo<S> {
    inner: S,
    pending: Bytes,
    eof: bool,
}

impl<S> WsIo<S> {
    /// Wraps an established WebSocket.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            pending: Bytes::new(),
            eof: false,
        }
    }
}

fn to_io(err: WsError) -> io::Error {
    match err {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "tunnel closed")
        }
        other => io::Error::other(other),
    }
}

impl<S> AsyncRead for WsIo<S>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending.advance(n);
                if this.pending.is_empty() {
                    // Even empty, the message pins tungstenite's read buffer it was cut
                    // from; let go so the buffer is reused instead of reallocated.
                    this.pending = Bytes::new();
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => this.pending = data,
                Some(Ok(Message::Close(_))) | None => this.eof = true,
                // Pings are answered by tungstenite on the next flush; text is not ours.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl<S> AsyncWrite for WsIo<S>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_ready(cx)).map_err(to_io)?;
        Pin::new(&mut this.inner)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    /// HTTP/2 writes a frame as its header plus its payload: gathering both into one
    /// message halves the messages (and their framing work) of a transfer.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_ready(cx)).map_err(to_io)?;
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        let mut message = bytes::BytesMut::with_capacity(len);
        for buf in bufs {
            message.extend_from_slice(buf);
        }
        Pin::new(&mut this.inner)
            .start_send(Message::Binary(message.freeze()))
            .map_err(to_io)?;
        Poll::Ready(Ok(len))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_flush(cx)
            .map_err(to_io)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_close(cx)
            .map_err(to_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[tokio::test]
    async fn bytes_cross_in_both_directions_and_close_is_eof() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let client = WebSocketStream::from_raw_socket(a, Role::Client, None).await;
        let server = WebSocketStream::from_raw_socket(b, Role::Server, None).await;
        let mut client = WsIo::new(client);
        let mut server = WsIo::new(server);
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sent = payload.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.expect("write");
            client.flush().await.expect("flush");
            client.shutdown().await.expect("close");
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.expect("read to close");
        writer.await.expect("writer");
        assert_eq!(got, payload);
    }
}
