//! Rows read back through the panel's derived mappers (`panel/src/db/row.rs`), on both
//! engines: a flag stored as any non-zero value reads as true, a nullable timestamp
//! reads as set or not, and a stored value that does not decode (a workload's egg that
//! is no longer JSON) answers the 500 envelope, never a panic or a wrong answer.

use shardlyn_tests::{both_engines, spawn_app};

both_engines! {
    async fn stored_values_decode_or_fail_cleanly(engine) {
        let app = spawn_app(engine).await;
        let pool = &app.state.db.pool;
        let s = app.register("rows@example.com").await;
        let org = app.create_org(&s.access, "Rows").await;

        // Flags: 0/1 as written, any other non-zero value is true too.
        let path = format!("/v1/organizations/{org}");
        assert_eq!(app.get(&path, Some(&s.access)).await.expect(200).body["personal"], false);
        sqlx::query("UPDATE organizations SET personal = 2 WHERE id = $1")
            .bind(&org)
            .execute(pool)
            .await
            .expect("update");
        assert_eq!(app.get(&path, Some(&s.access)).await.expect(200).body["personal"], true);

        // A nullable timestamp read as a flag (`suspended_at` -> `suspended`).
        let me = app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        assert_eq!(me.body["suspended"], false);

        // JSON TEXT that no longer parses: a decode error, answered as the envelope.
        let egg = std::fs::read_to_string(shardlyn_tests::crate_path(
            "../../shared/egg-corpus/pterodactyl-panel/ptero-panel_egg-paper.json",
        ))
        .expect("corpus egg");
        let egg: serde_json::Value = serde_json::from_str(&egg).expect("json");
        let workload = app
            .post("/v1/workloads/import-egg", Some(&s.access), serde_json::json!({"egg": egg, "organization_id": org}))
            .await
            .expect(201);
        let id = workload.body["id"].as_str().expect("id").to_string();
        let path = format!("/v1/workloads/{id}");
        app.get(&path, Some(&s.access)).await.expect(200);
        sqlx::query("UPDATE workloads SET egg = '{not json' WHERE id = $1")
            .bind(&id)
            .execute(pool)
            .await
            .expect("update");
        app.get(&path, Some(&s.access)).await.expect_error(500, "INTERNAL_ERROR");

        // The failure was one answer: the panel still serves the user.
        app.get("/v1/users/me", Some(&s.access)).await.expect(200);
    }
}
