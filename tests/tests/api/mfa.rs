//! MFA (TOTP): enrollment, verification, the login challenge, replay refusal, recovery
//! codes, disabling, and the MFA rate limit. Codes come from `oathtool`, an
//! implementation independent of the panel's.

use serde_json::json;
use shardlyn_tests::{PASSWORD, Session, TestApp, both_engines, spawn_app, spawn_app_with};

/// The current TOTP code of a base32 secret, from oathtool.
fn oathtool(secret: &str) -> String {
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", secret])
        .output()
        .expect("oathtool runs (scripts/dev-services installs it)");
    assert!(out.status.success(), "oathtool failed: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// A six-digit code that is not `code`.
fn other_code(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 500_000) % 1_000_000)
}

/// Forgets the last accepted step, so the current code can be accepted again (each
/// TOTP code is accepted once; tests need several within one 30 s step).
async fn allow_reuse(app: &TestApp, user_id: &str) {
    sqlx::query("UPDATE mfa_secrets SET last_step = NULL WHERE user_id = $1")
        .bind(user_id)
        .execute(&app.state.db.pool)
        .await
        .expect("reset last step");
}

/// Enrolls and verifies MFA; returns the secret and the recovery codes.
async fn enable_mfa(app: &TestApp, s: &Session) -> (String, Vec<String>) {
    let enroll = app
        .post("/v1/auth/mfa/enroll", Some(&s.access), json!({}))
        .await
        .expect(200);
    let secret = enroll.body["secret"].as_str().expect("secret").to_string();
    let verify = app
        .post(
            "/v1/auth/mfa/verify",
            Some(&s.access),
            json!({"code": oathtool(&secret)}),
        )
        .await
        .expect(200);
    let codes = verify.body["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    (secret, codes)
}

/// Logs in with the password of an MFA user; returns the challenge token.
async fn challenge_token(app: &TestApp, email: &str) -> String {
    let r = app
        .post(
            "/v1/auth/login",
            None,
            json!({"email": email, "password": PASSWORD}),
        )
        .await
        .expect(200);
    assert_eq!(r.body["mfa_required"], true, "{}", r.text);
    assert!(r.body.get("access_token").is_none(), "{}", r.text);
    r.body["challenge_token"]
        .as_str()
        .expect("challenge")
        .to_string()
}

both_engines! {
    async fn enroll_verify_then_login_needs_the_code(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("mfa@example.com").await;
        let status = app.get("/v1/auth/mfa/status", Some(&s.access)).await.expect(200);
        assert_eq!(status.body, json!({"enabled": false}));
        // Verifying before enrolling is refused.
        app.post("/v1/auth/mfa/verify", Some(&s.access), json!({"code": "123456"}))
            .await
            .expect_error(400, "VALIDATION_ERROR");

        let enroll = app.post("/v1/auth/mfa/enroll", Some(&s.access), json!({})).await.expect(200);
        let secret = enroll.body["secret"].as_str().expect("secret").to_string();
        assert_eq!(secret.len(), 32);
        assert!(secret.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
        assert_eq!(
            enroll.body["otpauth_uri"],
            format!("otpauth://totp/Shardlyn:mfa@example.com?secret={secret}&issuer=Shardlyn&algorithm=SHA1&digits=6&period=30")
        );
        assert!(enroll.body["qr_svg"].as_str().is_some_and(|s| s.contains("<svg")));

        // The database holds the seed sealed, not the secret.
        let sealed: String = sqlx::query_scalar("SELECT sealed_seed FROM mfa_secrets WHERE user_id = $1")
            .bind(&s.user_id)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("row");
        assert!(!sealed.contains(&secret) && !sealed.to_uppercase().contains(&secret));
        let seed = shardlyn_panel::sealed::open(&app.state.master_key, &sealed).expect("opens");
        assert_eq!(seed.len(), 20);

        // Enrolling again replaces the pending seed: the first secret's codes stop working.
        let again = app.post("/v1/auth/mfa/enroll", Some(&s.access), json!({})).await.expect(200);
        let secret2 = again.body["secret"].as_str().expect("secret").to_string();
        assert_ne!(secret, secret2);
        let old_code = oathtool(&secret);
        if old_code != oathtool(&secret2) {
            app.post("/v1/auth/mfa/verify", Some(&s.access), json!({"code": old_code}))
                .await
                .expect_error(400, "INVALID_MFA_CODE");
        }
        let code = oathtool(&secret2);
        app.post("/v1/auth/mfa/verify", Some(&s.access), json!({"code": other_code(&code)}))
            .await
            .expect_error(400, "INVALID_MFA_CODE");
        let verify = app
            .post("/v1/auth/mfa/verify", Some(&s.access), json!({"code": code}))
            .await
            .expect(200);
        let codes = verify.body["recovery_codes"].as_array().expect("codes");
        assert_eq!(codes.len(), 10);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 10);
        for c in codes {
            let c = c.as_str().expect("str");
            assert_eq!(c.len(), 9, "{c}");
            assert_eq!(&c[4..5], "-");
        }
        let status = app.get("/v1/auth/mfa/status", Some(&s.access)).await.expect(200);
        assert_eq!(status.body, json!({"enabled": true, "recovery_codes_remaining": 10}));
        let me = app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        assert_eq!(me.body["mfa_enabled"], true);

        // The password alone no longer yields tokens.
        let r = app
            .post("/v1/auth/login", None, json!({"email": "mfa@example.com", "password": PASSWORD}))
            .await
            .expect(200);
        assert_eq!(r.body["mfa_required"], true);
        assert_eq!(r.body["expires_in"], 300);
        assert!(r.body.get("access_token").is_none() && r.body.get("refresh_token").is_none());
        let challenge = r.body["challenge_token"].as_str().expect("challenge").to_string();

        // A wrong code is refused without consuming the challenge.
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": other_code(&code)}))
            .await
            .expect_error(401, "INVALID_MFA_CODE");
        // The verify code was this step's: it is accepted once only.
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": code}))
            .await
            .expect_error(401, "INVALID_MFA_CODE");
        allow_reuse(&app, &s.user_id).await;
        let code = oathtool(&secret2);
        let tokens = app
            .post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": code}))
            .await
            .expect(200);
        assert_eq!(tokens.body["token_type"], "Bearer");
        let access = tokens.body["access_token"].as_str().expect("access");
        let me = app.get("/v1/users/me", Some(access)).await.expect(200);
        assert_eq!(me.body["email"], "mfa@example.com");
        let refresh = tokens.body["refresh_token"].as_str().expect("refresh");
        app.post("/v1/auth/refresh", None, json!({"refresh_token": refresh})).await.expect(200);

        // Replay: the same code on a fresh challenge is refused.
        let challenge = challenge_token(&app, "mfa@example.com").await;
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": code}))
            .await
            .expect_error(401, "INVALID_MFA_CODE");
    }

    async fn recovery_codes_work_once(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("rec@example.com").await;
        let (_, codes) = enable_mfa(&app, &s).await;
        let challenge = challenge_token(&app, "rec@example.com").await;
        let tokens = app
            .post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": codes[0]}))
            .await
            .expect(200);
        app.get("/v1/users/me", tokens.body["access_token"].as_str()).await.expect(200);
        let challenge = challenge_token(&app, "rec@example.com").await;
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": codes[0]}))
            .await
            .expect_error(401, "INVALID_MFA_CODE");
        // Codes are case- and hyphen-insensitive.
        let typed = codes[1].replace('-', "").to_uppercase();
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": typed}))
            .await
            .expect(200);
        let status = app.get("/v1/auth/mfa/status", Some(&s.access)).await.expect(200);
        assert_eq!(status.body["recovery_codes_remaining"], 8);
    }

    async fn challenges_are_single_use_and_expire(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("chal@example.com").await;
        let (_, codes) = enable_mfa(&app, &s).await;
        let challenge = challenge_token(&app, "chal@example.com").await;
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": codes[0]}))
            .await
            .expect(200);
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": codes[1]}))
            .await
            .expect_error(401, "UNAUTHORIZED");

        let challenge = challenge_token(&app, "chal@example.com").await;
        sqlx::query("UPDATE mfa_challenges SET expires_at = $1 WHERE used_at IS NULL")
            .bind(chrono::Utc::now().timestamp_millis() - 1)
            .execute(&app.state.db.pool)
            .await
            .expect("expire");
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": codes[1]}))
            .await
            .expect_error(401, "UNAUTHORIZED");
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": "shardlyn_mfa_bogus", "code": codes[1]}))
            .await
            .expect_error(401, "UNAUTHORIZED");
        // Refused challenges did not spend the recovery code.
        let challenge = challenge_token(&app, "chal@example.com").await;
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": codes[1]}))
            .await
            .expect(200);
    }

    async fn five_wrong_codes_kill_the_challenge(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("five@example.com").await;
        let (_, codes) = enable_mfa(&app, &s).await;
        let challenge = challenge_token(&app, "five@example.com").await;
        for wrong in ["000000", "zzzz-zzzz", "111111", "nope", "aaaa-aaaa"] {
            app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": wrong}))
                .await
                .expect_error(401, "INVALID_MFA_CODE");
        }
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": codes[0]}))
            .await
            .expect_error(401, "UNAUTHORIZED");
        let challenge = challenge_token(&app, "five@example.com").await;
        app.post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": codes[0]}))
            .await
            .expect(200);
    }

    async fn disable_returns_login_to_normal(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("off@example.com").await;
        let (secret, _) = enable_mfa(&app, &s).await;
        allow_reuse(&app, &s.user_id).await;
        let code = oathtool(&secret);
        app.post("/v1/auth/mfa/disable", Some(&s.access), json!({"code": other_code(&code)}))
            .await
            .expect_error(400, "INVALID_MFA_CODE");
        app.post("/v1/auth/mfa/disable", Some(&s.access), json!({"code": code}))
            .await
            .expect(204);
        let status = app.get("/v1/auth/mfa/status", Some(&s.access)).await.expect(200);
        assert_eq!(status.body, json!({"enabled": false}));
        let again = app.login("off@example.com", PASSWORD).await;
        let me = app.get("/v1/users/me", Some(&again.access)).await.expect(200);
        assert_eq!(me.body["mfa_enabled"], false);
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mfa_secrets WHERE user_id = $1")
            .bind(&s.user_id)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(left, 0);
        app.post("/v1/auth/mfa/disable", Some(&s.access), json!({"code": code}))
            .await
            .expect_error(400, "VALIDATION_ERROR");

        // Enabled again, a recovery code disables it too.
        let (_, codes) = enable_mfa(&app, &s).await;
        app.post("/v1/auth/mfa/disable", Some(&s.access), json!({"code": codes[3]}))
            .await
            .expect(204);
        app.login("off@example.com", PASSWORD).await;
    }

    async fn enroll_needs_a_session_and_no_mfa_yet(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("tok@example.com").await;
        let token = app.api_token(&s.access, "ci", None).await;
        app.post("/v1/auth/mfa/enroll", Some(&token), json!({}))
            .await
            .expect_error(403, "FORBIDDEN");
        app.get("/v1/auth/mfa/status", Some(&token)).await.expect_error(403, "FORBIDDEN");
        app.post("/v1/auth/mfa/enroll", None, json!({})).await.expect_error(401, "UNAUTHORIZED");
        enable_mfa(&app, &s).await;
        app.post("/v1/auth/mfa/enroll", Some(&s.access), json!({}))
            .await
            .expect_error(409, "CONFLICT");
        app.post("/v1/auth/mfa/verify", Some(&s.access), json!({"code": "123456"}))
            .await
            .expect_error(409, "CONFLICT");
        app.post("/v1/auth/mfa/disable", Some(&token), json!({"code": "123456"}))
            .await
            .expect_error(403, "FORBIDDEN");
    }

    async fn challenge_attempts_are_rate_limited(engine) {
        let app = spawn_app_with(engine, |c| c.rate_limit.mfa_per_minute = 5).await;
        let s = app.register("rate@example.com").await;
        let (_, codes) = enable_mfa(&app, &s).await;
        // Two challenges, so the per-challenge failure cap is not what stops us.
        let first = challenge_token(&app, "rate@example.com").await;
        let second = challenge_token(&app, "rate@example.com").await;
        for (i, challenge) in [&first, &first, &first, &second, &second].into_iter().enumerate() {
            let r = app
                .post("/v1/auth/mfa/challenge", None, json!({"challenge_token": challenge, "code": "000000"}))
                .await
                .expect_error(401, "INVALID_MFA_CODE");
            assert_eq!(r.header("x-ratelimit-limit").as_deref(), Some("5"), "attempt {i}");
        }
        let r = app
            .post("/v1/auth/mfa/challenge", None, json!({"challenge_token": second, "code": codes[0]}))
            .await
            .expect_error(429, "RATE_LIMITED");
        assert!(r.header("retry-after").is_some());
    }
}

both_engines! {
    async fn an_organization_can_require_mfa_of_its_members(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("mfa-owner@example.com").await;
        let member = app.register("mfa-member@example.com").await;
        let org = app.create_org(&owner.access, "Strict").await;
        app.add_member(&org, &member.user_id, "operator").await;
        // Requiring MFA needs MFA on the requester's own account first.
        app.put(&format!("/v1/organizations/{org}"), Some(&owner.access), json!({"require_mfa": true}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
        enable_mfa(&app, &owner).await;
        let r = app
            .put(&format!("/v1/organizations/{org}"), Some(&owner.access), json!({"require_mfa": true}))
            .await
            .expect(200);
        assert_eq!(r.body["require_mfa"], true);
        assert_eq!(r.body["name"], "Strict");
        // A member without MFA sees the organization and nothing more.
        app.get(&format!("/v1/organizations/{org}"), Some(&member.access)).await.expect(200);
        let refused = app
            .get(&format!("/v1/organizations/{org}/members"), Some(&member.access))
            .await
            .expect_error(403, "FORBIDDEN");
        assert!(refused.body["error"].as_str().is_some_and(|e| e.contains("multi-factor")));
        app.get(&format!("/v1/organizations/{org}/members"), Some(&owner.access)).await.expect(200);
        // Once the member turns MFA on, the organization opens up.
        enable_mfa(&app, &member).await;
        app.get(&format!("/v1/organizations/{org}/members"), Some(&member.access)).await.expect(200);
        app.put(&format!("/v1/organizations/{org}"), Some(&owner.access), json!({}))
            .await
            .expect_error(400, "VALIDATION_ERROR");
    }
}
