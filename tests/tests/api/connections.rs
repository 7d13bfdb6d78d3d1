//! The panel's HTTP connections as a reverse proxy sees them.

use shardlyn_tests::{Engine, spawn_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A refusal given before the request's body was read (an upload to a server that does
/// not exist: 404) goes out once the panel read the rest of the body, and the connection
/// serves the next request. Before, the panel closed it with the body's bytes still
/// arriving, the kernel reset it, and Caddy, which streams bodies to the panel, read that
/// reset instead of the answer: `502` (seen in `operator_docs`'s Caddy test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_before_the_body_was_read_keeps_the_connection() {
    let app = spawn_app(Engine::Sqlite).await;
    let admin = app.bootstrap_admin().await;
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let body = vec![0u8; 2 * 1024 * 1024];
    let head = format!(
        "POST /v1/instances/no-such-instance/files/tus HTTP/1.1\r\nHost: panel\r\n\
         Authorization: Bearer {}\r\nTus-Resumable: 1.0.0\r\nUpload-Length: {len}\r\n\
         Content-Type: application/offset+octet-stream\r\nContent-Length: {len}\r\n\r\n",
        admin.access,
        len = body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body)
        .await
        .expect("the whole body is taken, not cut by a reset");
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: panel\r\nConnection: close\r\n\r\n")
        .await
        .expect("a second request on the connection");
    let mut answers = Vec::new();
    stream
        .read_to_end(&mut answers)
        .await
        .expect("both answers, no reset");
    let answers = String::from_utf8_lossy(&answers);
    let refusal = answers.find("HTTP/1.1 404").expect("the refusal");
    assert!(answers.contains("\"code\":\"NOT_FOUND\""), "{answers}");
    let next = answers
        .find("HTTP/1.1 200")
        .expect("the next request's answer");
    assert!(refusal < next, "{answers}");
}
