//! Security properties of issue 5's test list that the per-area suites leave open:
//! forged access tokens (`alg: none`, algorithm confusion, a wrong key, a revoked
//! session, a refresh token used as a bearer), brute force spread over many addresses
//! or over the MFA routes other than the challenge, a refresh token of a suspended user
//! whose sessions were not revoked, and an invite raced by concurrent accepts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shardlyn_tests::{PASSWORD, Session, TestApp, both_engines, spawn_app, spawn_app_with};

/// The claims of an access token (its payload, unverified).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// A JWT with `header` and `claims`, signed with HMAC-SHA-`bits` under `key`, or
/// unsigned (empty signature) when `key` is `None`.
fn jwt(header: &Value, claims: &Value, key: Option<(&[u8], u16)>) -> String {
    use hmac::{Hmac, Mac};
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match key {
        None => Vec::new(),
        Some((key, 256)) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
            mac.update(signing_input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Some((key, 384)) => {
            let mut mac = Hmac::<sha2::Sha384>::new_from_slice(key).expect("key");
            mac.update(signing_input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Some((_, bits)) => panic!("HS{bits} not used here"),
    };
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The panel's JWT secret (generated into the data dir on first start).
fn jwt_secret(app: &TestApp) -> Vec<u8> {
    std::fs::read_to_string(app.dir.path().join("jwt.key"))
        .expect("jwt.key in the data dir")
        .trim()
        .as_bytes()
        .to_vec()
}

/// The current TOTP code of a base32 secret, from oathtool (independent of the panel).
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

async fn enable_mfa(app: &TestApp, s: &Session) {
    let enroll = app
        .post("/v1/auth/mfa/enroll", Some(&s.access), json!({}))
        .await
        .expect(200);
    let secret = enroll.body["secret"].as_str().expect("secret").to_string();
    app.post(
        "/v1/auth/mfa/verify",
        Some(&s.access),
        json!({"code": oathtool(&secret)}),
    )
    .await
    .expect(200);
}

/// The 64-hex-digit invite token mailed to `email`.
fn mailed_invite(app: &TestApp, email: &str) -> String {
    let mail = app
        .mailer
        .sent()
        .into_iter()
        .rev()
        .find(|m| m.to == email && m.text.contains("/invites/"))
        .unwrap_or_else(|| panic!("no invite mail to {email}"));
    let (_, rest) = mail.text.split_once("/invites/").expect("link");
    rest.chars().take_while(char::is_ascii_hexdigit).collect()
}

both_engines! {
    async fn forged_access_tokens_are_refused(engine) {
        let app = spawn_app(engine).await;
        let s = app.register("jwt@example.com").await;
        app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        let claims = claims_of(&s.access);
        assert_eq!(claims["sub"], s.user_id.as_str());
        let secret = jwt_secret(&app);

        // Sanity: a token made here with the panel's key and HS256 is accepted, so the
        // refusals below are about what was changed, not about how tokens are built.
        let good = jwt(&json!({"alg": "HS256", "typ": "JWT"}), &claims, Some((&secret, 256)));
        app.get("/v1/users/me", Some(&good)).await.expect(200);

        // `alg: none`, with and without the trailing dot, and with a stolen signature.
        let none = jwt(&json!({"alg": "none", "typ": "JWT"}), &claims, None);
        let none_no_dot = none.trim_end_matches('.').to_string();
        let real_sig = s.access.rsplit('.').next().expect("signature");
        let none_with_sig = format!("{}{real_sig}", none);
        for forged in [&none, &none_no_dot, &none_with_sig] {
            app.get("/v1/users/me", Some(forged)).await.expect_error(401, "UNAUTHORIZED");
        }
        for alg in ["None", "NONE", "nOnE"] {
            let t = jwt(&json!({"alg": alg, "typ": "JWT"}), &claims, None);
            app.get("/v1/users/me", Some(&t)).await.expect_error(401, "UNAUTHORIZED");
        }
        // Algorithm confusion: the right key but another HMAC is still refused.
        let hs384 = jwt(&json!({"alg": "HS384", "typ": "JWT"}), &claims, Some((&secret, 384)));
        app.get("/v1/users/me", Some(&hs384)).await.expect_error(401, "UNAUTHORIZED");
        // Wrong key; a claim changed under the old signature; a different user's `sub`.
        let wrong_key = jwt(&json!({"alg": "HS256", "typ": "JWT"}), &claims, Some((b"0123456789abcdef0123456789abcdef", 256)));
        app.get("/v1/users/me", Some(&wrong_key)).await.expect_error(401, "UNAUTHORIZED");
        let mut longer = claims.clone();
        longer["exp"] = json!(claims["exp"].as_i64().expect("exp") + 86_400);
        let (head, _) = s.access.split_once('.').expect("header");
        let tampered = format!("{head}.{}.{real_sig}", URL_SAFE_NO_PAD.encode(longer.to_string()));
        app.get("/v1/users/me", Some(&tampered)).await.expect_error(401, "UNAUTHORIZED");
        // Expired, with the right key (no leeway).
        let mut expired = claims.clone();
        expired["iat"] = json!(chrono::Utc::now().timestamp() - 1000);
        expired["exp"] = json!(chrono::Utc::now().timestamp() - 1);
        let expired = jwt(&json!({"alg": "HS256", "typ": "JWT"}), &expired, Some((&secret, 256)));
        app.get("/v1/users/me", Some(&expired)).await.expect_error(401, "UNAUTHORIZED");
        // No expiry at all.
        let mut eternal = claims.clone();
        eternal.as_object_mut().expect("object").remove("exp");
        let eternal = jwt(&json!({"alg": "HS256", "typ": "JWT"}), &eternal, Some((&secret, 256)));
        app.get("/v1/users/me", Some(&eternal)).await.expect_error(401, "UNAUTHORIZED");
        // Garbage and the refresh token used as a bearer.
        for junk in ["a.b.c", "not-a-token", "", &s.refresh] {
            let r = app.get("/v1/users/me", Some(junk)).await;
            assert_eq!(r.status, 401, "{junk}: {}", r.text);
        }

        // A validly signed token of a session that was logged out is refused.
        app.post("/v1/auth/logout", Some(&s.access), json!({})).await.expect(204);
        app.get("/v1/users/me", Some(&good)).await.expect_error(401, "UNAUTHORIZED");
    }

    async fn a_suspended_users_refresh_token_is_refused_even_unrevoked(engine) {
        let app = spawn_app(engine).await;
        let admin = app.bootstrap_admin().await;
        let s = app.register("dormant@example.com").await;
        // Suspension through the API revokes sessions; here the flag alone is set, so
        // the refresh path itself must check it.
        sqlx::query("UPDATE users SET suspended_at = $1 WHERE id = $2")
            .bind(shardlyn_panel::db::now_ms())
            .bind(&s.user_id)
            .execute(&app.state.db.pool)
            .await
            .expect("suspend");
        app.state.auth_cache.invalidate_all();
        let r = app.post("/v1/auth/refresh", None, json!({"refresh_token": s.refresh})).await;
        assert_eq!(r.status, 401, "{}", r.text);
        app.get("/v1/users/me", Some(&s.access)).await.expect_error(401, "UNAUTHORIZED");

        // Through the API: after unsuspending, the old refresh token stays dead.
        let t = app.register("paused@example.com").await;
        app.post(&format!("/v1/admin/users/{}/suspend", t.user_id), Some(&admin.access), json!({})).await.expect(200);
        let r = app.post("/v1/auth/refresh", None, json!({"refresh_token": t.refresh})).await;
        assert_eq!(r.status, 401, "{}", r.text);
        app.post(&format!("/v1/admin/users/{}/unsuspend", t.user_id), Some(&admin.access), json!({})).await.expect(200);
        let r = app.post("/v1/auth/refresh", None, json!({"refresh_token": t.refresh})).await;
        assert_eq!(r.status, 401, "{}", r.text);
        app.login("paused@example.com", PASSWORD).await;
    }

    async fn login_brute_force_from_many_addresses_still_locks(engine) {
        let app = spawn_app_with(engine, |c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
        app.register("target@example.com").await;
        for i in 0..5 {
            let r = app
                .client
                .post(format!("{}/v1/auth/login", app.base))
                .header("x-forwarded-for", format!("203.0.113.{}", 10 + i))
                .json(&json!({"email": "target@example.com", "password": format!("guess-{i}-guess")}))
                .send()
                .await
                .expect("login");
            assert_eq!(r.status(), 401);
        }
        // A sixth address with the right password: the account is locked, not the IP.
        let r = app
            .client
            .post(format!("{}/v1/auth/login", app.base))
            .header("x-forwarded-for", "198.51.100.99")
            .json(&json!({"email": "target@example.com", "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 429);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["code"], "ACCOUNT_LOCKED");
    }

    async fn credential_stuffing_from_one_address_hits_the_login_limit(engine) {
        let app = spawn_app_with(engine, |c| c.rate_limit.login_per_minute = 4).await;
        for i in 0..4 {
            app.post("/v1/auth/login", None, json!({"email": format!("victim{i}@example.com"), "password": "password-guess"}))
                .await
                .expect_error(401, "INVALID_CREDENTIALS");
        }
        let r = app
            .post("/v1/auth/login", None, json!({"email": "victim9@example.com", "password": "password-guess"}))
            .await
            .expect_error(429, "RATE_LIMITED");
        assert_eq!(r.header("x-ratelimit-remaining").as_deref(), Some("0"));
        assert!(r.header("retry-after").is_some());
    }

    async fn mfa_disable_guessing_hits_the_limit(engine) {
        let app = spawn_app_with(engine, |c| c.rate_limit.mfa_per_minute = 5).await;
        let s = app.register("guess@example.com").await;
        enable_mfa(&app, &s).await; // enroll + verify: two MFA requests of the five
        for code in ["000000", "111111", "222222"] {
            let r = app.post("/v1/auth/mfa/disable", Some(&s.access), json!({"code": code})).await;
            assert!(r.status == 400 || r.status == 401, "{}", r.text);
            assert_eq!(r.body["code"], "INVALID_MFA_CODE", "{}", r.text);
        }
        app.post("/v1/auth/mfa/disable", Some(&s.access), json!({"code": "333333"}))
            .await
            .expect_error(429, "RATE_LIMITED");
        let status = app.get("/v1/users/me", Some(&s.access)).await.expect(200);
        assert_eq!(status.body["mfa_enabled"], true, "guessing did not disable MFA");
    }

    async fn an_invite_is_spent_once_even_when_raced(engine) {
        let app = spawn_app(engine).await;
        let owner = app.register("host@example.com").await;
        let org = app.create_org(&owner.access, "Raced").await;
        app.post(&format!("/v1/organizations/{org}/members/invite"), Some(&owner.access), json!({"email": "racer@example.com", "role": "viewer"}))
            .await
            .expect(201);
        let token = mailed_invite(&app, "racer@example.com");
        let racer = app.register("racer@example.com").await;
        let other = app.register("someone@example.com").await;
        app.post(&format!("/v1/invites/{token}/accept"), Some(&other.access), json!({}))
            .await
            .expect_error(403, "FORBIDDEN");
        let path = format!("/v1/invites/{token}/accept");
        let attempts = (0..6).map(|_| app.post(&path, Some(&racer.access), json!({})));
        let results = futures::future::join_all(attempts).await;
        let ok = results.iter().filter(|r| r.status == 200).count();
        assert_eq!(ok, 1, "{:?}", results.iter().map(|r| (r.status, r.text.clone())).collect::<Vec<_>>());
        // The losers see the invite spent (404) or themselves already in (409).
        assert!(
            results.iter().all(|r| matches!(r.status, 200 | 404 | 409)),
            "{results:?}"
        );
        let accepted: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM org_members WHERE org_id = $1 AND user_id = $2")
            .bind(&org)
            .bind(&racer.user_id)
            .fetch_one(&app.state.db.pool)
            .await
            .expect("count");
        assert_eq!(accepted, 1);
        // The other account still cannot use the spent token.
        app.post(&path, Some(&other.access), json!({})).await.expect_error(404, "NOT_FOUND");
    }
}
