//! Organizations: CRUD, members and roles, and tenancy (other organizations answer 404).

use reqwest::Method;
use serde_json::json;
use shardlyn_panel::routes::Access;
use shardlyn_tests::{both_engines, spawn_app};

both_engines! {
    /// An organization id with a NUL byte names no organization: 404 on both engines
    /// (PostgreSQL refuses NUL in text, which was a 500; found by schemathesis).
    async fn an_organization_id_with_a_nul_is_not_found(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("nul@example.com").await;
        for path in ["/v1/nodes?organization_id=a%00b", "/v1/workloads?organization_id=%00", "/v1/organizations/a%00b"] {
            app.get(path, Some(&s.access)).await.expect_error(404, "NOT_FOUND");
        }
    }

    async fn org_crud(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("own@example.com").await;
        let id = app.create_org(&s.access, "Acme Hosting").await;
        let got = app.get(&format!("/v1/organizations/{id}"), Some(&s.access)).await.expect(200);
        assert_eq!(got.body["name"], "Acme Hosting");
        assert_eq!(got.body["role"], "owner");
        insta::assert_json_snapshot!("organization", got.body, {
            ".id" => "[id]", ".slug" => "[slug]", ".created_at" => "[time]", ".updated_at" => "[time]",
        });
        let updated = app.put(&format!("/v1/organizations/{id}"), Some(&s.access), json!({"name": "Acme 2"})).await.expect(200);
        assert_eq!(updated.body["name"], "Acme 2");
        assert_eq!(app.get("/v1/organizations", Some(&s.access)).await.body.as_array().map(Vec::len), Some(2));
        app.delete(&format!("/v1/organizations/{id}"), Some(&s.access)).await.expect(204);
        app.get(&format!("/v1/organizations/{id}"), Some(&s.access)).await.expect_error(404, "NOT_FOUND");
        let personal = app.get("/v1/organizations", Some(&s.access)).await.body[0]["id"].as_str().expect("id").to_string();
        app.delete(&format!("/v1/organizations/{personal}"), Some(&s.access)).await.expect_error(409, "CONFLICT");
    }

    async fn roles_decide_member_management(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("owner@example.com").await;
        let admin = app.register("admin@example.com").await;
        let op = app.register("op@example.com").await;
        let viewer = app.register("viewer@example.com").await;
        let org = app.create_org(&owner.access, "Team").await;
        app.add_member(&org, &admin.user_id, "admin").await;
        app.add_member(&org, &op.user_id, "operator").await;
        app.add_member(&org, &viewer.user_id, "viewer").await;

        let members = app.get(&format!("/v1/organizations/{org}/members"), Some(&viewer.access)).await.expect(200);
        assert_eq!(members.body.as_array().map(Vec::len), Some(4));
        assert_eq!(members.body[0]["role"], "owner");

        // Viewers and operators cannot change anything.
        app.put(&format!("/v1/organizations/{org}"), Some(&viewer.access), json!({"name": "x"})).await.expect_error(403, "FORBIDDEN");
        app.put(&format!("/v1/organizations/{org}/members/{}/role", viewer.user_id), Some(&op.access), json!({"role": "operator"}))
            .await
            .expect_error(403, "FORBIDDEN");
        // An admin manages non-owners, but cannot touch or create owners.
        app.put(&format!("/v1/organizations/{org}/members/{}/role", viewer.user_id), Some(&admin.access), json!({"role": "operator"}))
            .await
            .expect(200);
        app.put(&format!("/v1/organizations/{org}/members/{}/role", admin.user_id), Some(&admin.access), json!({"role": "owner"}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.put(&format!("/v1/organizations/{org}/members/{}/role", owner.user_id), Some(&admin.access), json!({"role": "viewer"}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.delete(&format!("/v1/organizations/{org}/members/{}", owner.user_id), Some(&admin.access))
            .await
            .expect_error(403, "FORBIDDEN");
        app.put(&format!("/v1/organizations/{org}/members/{}/role", viewer.user_id), Some(&admin.access), json!({"role": "god"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        // Admins cannot delete the organization; owners can't leave it ownerless.
        app.delete(&format!("/v1/organizations/{org}"), Some(&admin.access)).await.expect_error(403, "FORBIDDEN");
        app.delete(&format!("/v1/organizations/{org}/members/{}", owner.user_id), Some(&owner.access))
            .await
            .expect_error(409, "CONFLICT");
        app.put(&format!("/v1/organizations/{org}/members/{}/role", owner.user_id), Some(&owner.access), json!({"role": "admin"}))
            .await
            .expect_error(409, "CONFLICT");
        // After promoting a second owner, the first may step down.
        app.put(&format!("/v1/organizations/{org}/members/{}/role", admin.user_id), Some(&owner.access), json!({"role": "owner"}))
            .await
            .expect(200);
        app.put(&format!("/v1/organizations/{org}/members/{}/role", owner.user_id), Some(&owner.access), json!({"role": "admin"}))
            .await
            .expect(200);
        // Anyone may leave; an admin removes a member.
        app.delete(&format!("/v1/organizations/{org}/members/{}", viewer.user_id), Some(&viewer.access)).await.expect(204);
        app.get(&format!("/v1/organizations/{org}"), Some(&viewer.access)).await.expect_error(404, "NOT_FOUND");
        app.delete(&format!("/v1/organizations/{org}/members/{}", op.user_id), Some(&owner.access)).await.expect(204);
        app.delete(&format!("/v1/organizations/{org}/members/{}", op.user_id), Some(&owner.access)).await.expect_error(404, "NOT_FOUND");
    }

    async fn permission_overrides_change_the_answer(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("o2@example.com").await;
        let op = app.register("op2@example.com").await;
        let org = app.create_org(&owner.access, "Perms").await;
        app.add_member(&org, &op.user_id, "operator").await;
        let before = app.get(&format!("/v1/organizations/{org}/members/{}/permissions", op.user_id), Some(&op.access)).await.expect(200);
        let has = |v: &serde_json::Value, k: &str| v["permissions"].as_array().is_some_and(|a| a.iter().any(|p| p == k));
        assert!(has(&before.body, "instances.power"));
        assert!(!has(&before.body, "members.remove"));
        app.put(&format!("/v1/organizations/{org}/members/{}/role", owner.user_id), Some(&op.access), json!({"role": "owner"}))
            .await
            .expect_error(403, "FORBIDDEN");
        // Grant members.role and deny instances.power through the stored overrides.
        shardlyn_panel::orgs::store::set_override(&app.state.db.pool, &org, &op.user_id, "members.remove", true).await.expect("grant");
        shardlyn_panel::orgs::store::set_override(&app.state.db.pool, &org, &op.user_id, "instances.power", false).await.expect("deny");
        let after = app.get(&format!("/v1/organizations/{org}/members/{}/permissions", op.user_id), Some(&op.access)).await.expect(200);
        assert!(has(&after.body, "members.remove"));
        assert!(!has(&after.body, "instances.power"));
        assert_eq!(after.body["overrides"].as_array().map(Vec::len), Some(2));
        let keys = app.get("/v1/permissions", Some(&op.access)).await.expect(200);
        let all = keys.body["permissions"].as_array().expect("list");
        assert!(all.len() >= 40);
        assert!(all.iter().any(|p| p["key"] == "instances.console" && p["roles"] == json!(["owner", "admin", "operator"])));
    }

    async fn other_organizations_answer_404_on_every_org_route(engine) {
        let app = spawn_app(engine).await;
        let a = app.register("tenant-a@example.com").await;
        let b = app.register("tenant-b@example.com").await;
        let org = app.create_org(&a.access, "A's org").await;
        let b_token = app.api_token(&b.access, "b", None).await;
        let routes = shardlyn_panel::app::routes();
        let scoped: Vec<_> = routes.endpoints().iter().filter(|e| e.path.contains("{orgId}")).collect();
        assert!(scoped.len() >= 7, "org-scoped routes found: {}", scoped.len());
        for e in scoped {
            assert_ne!(e.access, Access::Public);
            let path = e
                .path
                .replace("{orgId}", &org)
                .replace("{userId}", &a.user_id)
                .replace("{inviteId}", "0190a0c4-0000-7000-8000-000000000000")
                .replace("{key}", "org.read");
            for token in [&b.access, &b_token] {
                let body = (e.method == Method::POST || e.method == Method::PUT)
                    .then(|| json!({"name": "hijack", "role": "owner"}));
                let r = app.call(e.method.clone(), &path, Some(token), body.as_ref()).await;
                assert_eq!(r.status, 404, "{} {} answered {}: {}", e.method, e.path, r.status, r.text);
                assert_eq!(r.body["code"], "NOT_FOUND");
            }
        }
        // And nothing changed.
        let got = app.get(&format!("/v1/organizations/{org}"), Some(&a.access)).await.expect(200);
        assert_eq!(got.body["name"], "A's org");
        assert_eq!(app.get(&format!("/v1/organizations/{org}/members"), Some(&a.access)).await.body.as_array().map(Vec::len), Some(1));
    }
}

both_engines! {
    async fn members_cannot_lift_their_own_restrictions(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("restrict-owner@example.com").await;
        let admin = app.register("restricted-admin@example.com").await;
        let org = app.create_org(&owner.access, "Restrictions").await;
        app.add_member(&org, &admin.user_id, "admin").await;
        let perms = format!("/v1/organizations/{org}/members/{}/permissions", admin.user_id);
        app.post(&perms, Some(&owner.access), json!({"key": "members.remove", "allowed": false}))
            .await
            .expect(200);
        // The restricted admin holds members.permissions, but not over themself.
        app.delete(&format!("{perms}/members.remove"), Some(&admin.access))
            .await
            .expect_error(403, "FORBIDDEN");
        app.post(&perms, Some(&admin.access), json!({"key": "members.remove", "allowed": true}))
            .await
            .expect_error(403, "FORBIDDEN");
        let view = app.get(&perms, Some(&admin.access)).await.expect(200);
        assert!(!view.body["permissions"].as_array().expect("keys").iter().any(|k| k == "members.remove"));
    }
}
