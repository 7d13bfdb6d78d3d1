//! Invitations (mail, accept, expiry, replacement, revocation), permission overrides
//! through the API, and `invite_only` registration.

use serde_json::{Value, json};
use shardlyn_panel::config::Registration;
use shardlyn_tests::{PASSWORD, TestApp, both_engines, spawn_app, spawn_app_with};

/// The token of the last invitation mailed to `email`, checking the link is in the text.
fn mailed_token(app: &TestApp, email: &str) -> String {
    let mail = app
        .mailer
        .sent()
        .into_iter()
        .rev()
        .find(|m| m.to == email && m.text.contains("/invites/"))
        .unwrap_or_else(|| panic!("no mail to {email}"));
    let (_, rest) = mail.text.split_once("/invites/").expect("link in the mail");
    let token: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    assert_eq!(token.len(), 64, "{}", mail.text);
    assert!(
        mail.text
            .contains(&format!("{}/invites/{token}", app.state.base_url()))
    );
    assert!(mail.text.contains(&format!("token {token}")));
    token
}

async fn invite(app: &TestApp, token: &str, org: &str, email: &str, role: &str) -> Value {
    app.post(
        &format!("/v1/organizations/{org}/members/invite"),
        Some(token),
        json!({"email": email, "role": role}),
    )
    .await
    .expect(201)
    .body
}

fn has(v: &Value, key: &str) -> bool {
    v["permissions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == key))
}

both_engines! {
    async fn invite_mail_accept_and_single_use(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("owner@example.com").await;
        let org = app.create_org(&owner.access, "Guild").await;
        let body = invite(&app, &owner.access, &org, " Bob@Example.com ", "operator").await;
        assert_eq!(body["email"], "bob@example.com");
        assert_eq!(body["role"], "operator");
        assert_eq!(body["invited_by"], owner.user_id.as_str());
        assert!(body["id"].is_string() && body["expires_at"].is_string() && body["created_at"].is_string());
        let token = mailed_token(&app, "bob@example.com");
        assert!(!body.to_string().contains(&token), "the API never returns the token");
        assert!(body.get("token").is_none() && body.get("token_hash").is_none());

        let bob = app.register("bob@example.com").await;
        let carol = app.register("carol@example.com").await;
        app.post(&format!("/v1/invites/{token}/accept"), Some(&carol.access), json!({}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.post(&format!("/v1/invites/{}/accept", "0".repeat(64)), Some(&bob.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
        let joined = app.post(&format!("/v1/invites/{token}/accept"), Some(&bob.access), json!({})).await.expect(200);
        assert_eq!(joined.body["id"], org.as_str());
        assert_eq!(joined.body["name"], "Guild");
        assert_eq!(joined.body["role"], "operator");
        let members = app.get(&format!("/v1/organizations/{org}/members"), Some(&owner.access)).await.expect(200);
        let bob_row = members.body.as_array().expect("list").iter().find(|m| m["user_id"] == bob.user_id.as_str()).cloned();
        assert_eq!(bob_row.expect("bob is a member")["role"], "operator");
        // Single use, and an accepted invite is no longer pending.
        app.post(&format!("/v1/invites/{token}/accept"), Some(&bob.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
        let pending = app.get(&format!("/v1/organizations/{org}/invites"), Some(&owner.access)).await.expect(200);
        assert_eq!(pending.body.as_array().map(Vec::len), Some(0));
        // Inviting a member again is a conflict.
        app.post(&format!("/v1/organizations/{org}/members/invite"), Some(&owner.access), json!({"email": "BOB@example.com", "role": "viewer"}))
            .await
            .expect_error(409, "CONFLICT");
    }

    async fn expired_and_replaced_invites_stop_working(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("owner@example.com").await;
        let org = app.create_org(&owner.access, "Guild").await;
        let dave = app.register("dave@example.com").await;

        let old = invite(&app, &owner.access, &org, "dave@example.com", "viewer").await;
        sqlx::query("UPDATE org_invites SET expires_at = $1 WHERE id = $2")
            .bind(shardlyn_panel::db::now_ms() - 1)
            .bind(old["id"].as_str().expect("id"))
            .execute(&app.state.db.pool)
            .await
            .expect("expire");
        let expired = mailed_token(&app, "dave@example.com");
        app.post(&format!("/v1/invites/{expired}/accept"), Some(&dave.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
        let pending = app.get(&format!("/v1/organizations/{org}/invites"), Some(&owner.access)).await.expect(200);
        assert_eq!(pending.body.as_array().map(Vec::len), Some(0), "expired invites are not pending");

        invite(&app, &owner.access, &org, "dave@example.com", "viewer").await;
        let first = mailed_token(&app, "dave@example.com");
        let second_body = invite(&app, &owner.access, &org, "dave@example.com", "admin").await;
        let second = mailed_token(&app, "dave@example.com");
        assert_ne!(first, second);
        let pending = app.get(&format!("/v1/organizations/{org}/invites"), Some(&owner.access)).await.expect(200);
        assert_eq!(pending.body.as_array().map(Vec::len), Some(1));
        assert_eq!(pending.body[0]["id"], second_body["id"]);
        app.post(&format!("/v1/invites/{first}/accept"), Some(&dave.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
        let joined = app.post(&format!("/v1/invites/{second}/accept"), Some(&dave.access), json!({})).await.expect(200);
        assert_eq!(joined.body["role"], "admin");
    }

    async fn list_and_delete_invites(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("owner@example.com").await;
        let org = app.create_org(&owner.access, "Guild").await;
        let other = app.create_org(&owner.access, "Other").await;
        let a = invite(&app, &owner.access, &org, "a@example.com", "viewer").await;
        let token_a = mailed_token(&app, "a@example.com");
        invite(&app, &owner.access, &org, "b@example.com", "operator").await;
        let list = app.get(&format!("/v1/organizations/{org}/invites"), Some(&owner.access)).await.expect(200);
        assert_eq!(list.body.as_array().map(Vec::len), Some(2));
        assert!(!list.text.contains(&token_a) && !list.text.contains("token"));
        let a_id = a["id"].as_str().expect("id");
        // Another organization's invite is unknown there.
        app.delete(&format!("/v1/organizations/{other}/invites/{a_id}"), Some(&owner.access)).await.expect_error(404, "NOT_FOUND");
        app.delete(&format!("/v1/organizations/{org}/invites/{a_id}"), Some(&owner.access)).await.expect(204);
        app.delete(&format!("/v1/organizations/{org}/invites/{a_id}"), Some(&owner.access)).await.expect_error(404, "NOT_FOUND");
        let list = app.get(&format!("/v1/organizations/{org}/invites"), Some(&owner.access)).await.expect(200);
        assert_eq!(list.body.as_array().map(Vec::len), Some(1));
        assert_eq!(list.body[0]["email"], "b@example.com");
        let a_user = app.register("a@example.com").await;
        app.post(&format!("/v1/invites/{token_a}/accept"), Some(&a_user.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
    }

    async fn who_may_invite_and_as_what(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("owner@example.com").await;
        let admin = app.register("admin@example.com").await;
        let viewer = app.register("viewer@example.com").await;
        let stranger = app.register("stranger@example.com").await;
        let org = app.create_org(&owner.access, "Guild").await;
        app.add_member(&org, &admin.user_id, "admin").await;
        app.add_member(&org, &viewer.user_id, "viewer").await;
        let path = format!("/v1/organizations/{org}/members/invite");
        let body = json!({"email": "new@example.com", "role": "viewer"});
        app.post(&path, Some(&viewer.access), body.clone()).await.expect_error(403, "FORBIDDEN");
        app.post(&path, Some(&stranger.access), body.clone()).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/organizations/{org}/invites"), Some(&viewer.access)).await.expect_error(403, "FORBIDDEN");
        app.get(&format!("/v1/organizations/{org}/invites"), Some(&stranger.access)).await.expect_error(404, "NOT_FOUND");
        app.post(&path, Some(&admin.access), json!({"email": "new@example.com", "role": "owner"}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.post(&path, Some(&admin.access), json!({"email": "not-an-email", "role": "viewer"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post(&path, Some(&admin.access), json!({"email": "new@example.com", "role": "god"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post(&path, Some(&admin.access), json!({"email": "viewer@example.com", "role": "admin"}))
            .await
            .expect_error(409, "CONFLICT");
        assert_eq!(invite(&app, &admin.access, &org, "new@example.com", "admin").await["role"], "admin");
        assert_eq!(invite(&app, &owner.access, &org, "co@example.com", "owner").await["role"], "owner");
        assert!(app.mailer.sent().iter().all(|m| m.to != "viewer@example.com" || !m.text.contains("/invites/")));
    }

    async fn permission_overrides_through_the_api(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("owner@example.com").await;
        let admin = app.register("admin@example.com").await;
        let op = app.register("op@example.com").await;
        let viewer = app.register("viewer@example.com").await;
        let outsider = app.register("outsider@example.com").await;
        let org = app.create_org(&owner.access, "Guild").await;
        app.add_member(&org, &admin.user_id, "admin").await;
        app.add_member(&org, &op.user_id, "operator").await;
        app.add_member(&org, &viewer.user_id, "viewer").await;
        let perms = |id: &str| format!("/v1/organizations/{org}/members/{id}/permissions");

        // Without the override the operator cannot remove anyone.
        app.delete(&format!("/v1/organizations/{org}/members/{}", viewer.user_id), Some(&op.access))
            .await
            .expect_error(403, "FORBIDDEN");
        let set = app.post(&perms(&op.user_id), Some(&owner.access), json!({"key": "members.remove", "allowed": true})).await.expect(200);
        assert!(has(&set.body, "members.remove"));
        assert_eq!(set.body["overrides"], json!([{"key": "members.remove", "allowed": true}]));
        let got = app.get(&perms(&op.user_id), Some(&op.access)).await.expect(200);
        assert_eq!(got.body, set.body, "POST answers like GET");

        // Deny members.read to the viewer: listing members is refused, until removed.
        let denied = app.post(&perms(&viewer.user_id), Some(&admin.access), json!({"key": "members.read", "allowed": false})).await.expect(200);
        assert!(!has(&denied.body, "members.read"));
        app.get(&format!("/v1/organizations/{org}/members"), Some(&viewer.access)).await.expect_error(403, "FORBIDDEN");
        app.delete(&format!("{}/members.read", perms(&viewer.user_id)), Some(&admin.access)).await.expect(204);
        app.delete(&format!("{}/members.read", perms(&viewer.user_id)), Some(&admin.access)).await.expect_error(404, "NOT_FOUND");
        app.get(&format!("/v1/organizations/{org}/members"), Some(&viewer.access)).await.expect(200);

        // The granted operator now removes the viewer.
        app.delete(&format!("/v1/organizations/{org}/members/{}", viewer.user_id), Some(&op.access)).await.expect(204);
        app.delete(&format!("{}/members.remove", perms(&op.user_id)), Some(&owner.access)).await.expect(204);
        let after = app.get(&perms(&op.user_id), Some(&op.access)).await.expect(200);
        assert!(!has(&after.body, "members.remove"));

        // Validation and guards.
        app.post(&perms(&op.user_id), Some(&owner.access), json!({"key": "no.such.key", "allowed": true}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post(&perms(&op.user_id), Some(&owner.access), json!({"key": "members.remove"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        app.post(&perms(&owner.user_id), Some(&admin.access), json!({"key": "nodes.read", "allowed": false}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.delete(&format!("{}/nodes.read", perms(&owner.user_id)), Some(&admin.access)).await.expect_error(403, "FORBIDDEN");
        app.post(&perms(&admin.user_id), Some(&op.access), json!({"key": "nodes.read", "allowed": false}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.post(&perms(&outsider.user_id), Some(&owner.access), json!({"key": "nodes.read", "allowed": false}))
            .await
            .expect_error(404, "NOT_FOUND");
        app.post(&perms(&op.user_id), Some(&outsider.access), json!({"key": "nodes.read", "allowed": false}))
            .await
            .expect_error(404, "NOT_FOUND");
        // An admin cannot hand out what they do not hold themselves.
        app.post(&perms(&op.user_id), Some(&admin.access), json!({"key": "org.delete", "allowed": true}))
            .await
            .expect_error(403, "FORBIDDEN");
    }

    async fn invite_only_registration_needs_a_matching_invite(engine) {
        let app = spawn_app_with(engine, |c| c.auth.registration = Registration::InviteOnly).await;
        let admin = app.bootstrap_admin().await;
        let org = app.create_org(&admin.access, "Closed club").await;
        app.post("/v1/auth/register", None, json!({"email": "new@example.com", "password": PASSWORD}))
            .await
            .expect_error(403, "FORBIDDEN");
        invite(&app, &admin.access, &org, "new@example.com", "operator").await;
        let token = mailed_token(&app, "new@example.com");
        invite(&app, &admin.access, &org, "other@example.com", "viewer").await;
        let other_token = mailed_token(&app, "other@example.com");
        app.post("/v1/auth/register", None, json!({"email": "new@example.com", "password": PASSWORD, "invite_token": other_token}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.post("/v1/auth/register", None, json!({"email": "new@example.com", "password": PASSWORD, "invite_token": "nope"}))
            .await
            .expect_error(403, "FORBIDDEN");
        let created = app
            .post("/v1/auth/register", None, json!({"email": "New@Example.com", "password": PASSWORD, "invite_token": token}))
            .await
            .expect(201);
        assert_eq!(created.body["email"], "new@example.com");
        let new = app.login("new@example.com", PASSWORD).await;
        let orgs = app.get("/v1/organizations", Some(&new.access)).await.expect(200);
        let club = orgs.body.as_array().expect("list").iter().find(|o| o["id"] == org.as_str()).cloned();
        assert_eq!(club.expect("joined the club")["role"], "operator");
        // The invite is spent.
        app.post(&format!("/v1/invites/{token}/accept"), Some(&new.access), json!({}))
            .await
            .expect_error(404, "NOT_FOUND");
        app.post("/v1/auth/register", None, json!({"email": "new2@example.com", "password": PASSWORD, "invite_token": token}))
            .await
            .expect_error(403, "FORBIDDEN");
    }
}
