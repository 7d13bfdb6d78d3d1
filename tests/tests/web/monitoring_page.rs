//! The admin's Replicas page says whether this replica's `/metrics` asks for a token,
//! never the token itself.

use super::typed_pages::{page, sign_in};
use shardlyn_tests::{Engine, spawn_app, spawn_app_with};

const TOKEN: &str = "page-token-0123456789abcdef";

#[tokio::test]
async fn the_replicas_page_says_whether_metrics_need_a_token() {
    let app = spawn_app_with(Engine::Sqlite, |c| {
        c.metrics.token = shardlyn_panel::config::Secret(TOKEN.into());
    })
    .await;
    app.bootstrap_admin().await;
    let (jar, _) = sign_in(&app).await;
    let (status, html) = page(&app, &jar, "/admin/replicas").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("require a bearer token"), "{html}");
    assert!(!html.contains(TOKEN), "the token is never shown");
    app.stop().await;

    let app = spawn_app(Engine::Sqlite).await;
    app.bootstrap_admin().await;
    let (jar, _) = sign_in(&app).await;
    let (status, html) = page(&app, &jar, "/admin/replicas").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("are public"), "{html}");
    assert!(!html.contains("require a bearer token"), "{html}");
}
