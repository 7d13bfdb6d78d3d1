//! Every route declared in `shardlyn_proto::agent_api` is served by [`super::router`]
//! with its declared method: one request per declaration, none may reach the fallback
//! (404 "no such agent route") or answer 405.

use axum::body::Body;
use http::{Request, StatusCode};
use shardlyn_proto::agent_api::ROUTES;
use tower::ServiceExt;

use super::{AgentState, router};
use crate::config::Settings;
use crate::instances::Manager;

/// `template` with every `{param}` replaced by a value no handler knows.
fn sample_path(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        out.push('1');
        rest = &rest[open + rest[open..].find('}').unwrap_or(0) + 1..];
    }
    out + rest
}

#[tokio::test]
async fn every_declared_route_is_served_with_its_method() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::with_docker(dir.path(), Settings::default(), None).unwrap();
    let app = router(AgentState::new("node-test".into(), manager));
    for route in ROUTES {
        let uri = sample_path(route.path);
        let request = Request::builder()
            .method(route.method.as_str())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        // Only a 404 is read: a streamed answer (events) never ends.
        let text = if status == StatusCode::NOT_FOUND {
            let body = axum::body::to_bytes(response.into_body(), 1 << 16).await;
            String::from_utf8_lossy(&body.unwrap_or_default()).into_owned()
        } else {
            String::new()
        };
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {} {uri}",
            route.name,
            route.method.as_str()
        );
        assert!(
            !text.contains("no such agent route"),
            "{} ({} {uri}) is declared but not routed",
            route.name,
            route.method.as_str()
        );
    }
}

#[tokio::test]
async fn an_undeclared_route_reaches_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let manager = Manager::with_docker(dir.path(), Settings::default(), None).unwrap();
    let app = router(AgentState::new("node-test".into(), manager));
    let request = Request::builder()
        .uri("/v1/instances/1/nothing")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("no such agent route"));
}
