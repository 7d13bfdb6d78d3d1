//! Cloud credentials: CRUD, validation naming the field, secrets sealed and never
//! answered (a masked hint instead), one default per provider, other organizations'
//! ids answering 404, and verify against each provider's cheapest authenticated call.
//!
//! AWS is verified against a real `moto_server` (STS `GetCallerIdentity`, SigV4). Hetzner
//! Cloud, Cloudflare, Steam, Google's OAuth token endpoint and OCI's Identity API cannot
//! be reached from here: a local fake of each (in this file) answers in their documented
//! wire format, and checks what it is sent: the bearer token or key, Google's RS256
//! service-account JWT and OCI's RSA-SHA256 request signature, both verified with the
//! public half of a key `openssl` made for the test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Value, json};
use shardlyn_tests::moto::Moto;
use shardlyn_tests::{TestApp, both_engines, spawn_app_with};

const HETZNER: &str = "hcloud-token-0123456789abcdef";
const CLOUDFLARE: &str = "cf-token-0123456789abcdef";
const STEAM: &str = "STEAMKEY0123456789ABCDEF";

/// An RSA key pair made by `openssl` (private PKCS#8 PEM, public SPKI PEM).
fn rsa_pair() -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
        out.stdout
    };
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        key.to_str().expect("path"),
    ]);
    let public = run(&["pkey", "-in", key.to_str().expect("path"), "-pubout"]);
    (
        std::fs::read_to_string(&key).expect("key"),
        String::from_utf8(public).expect("pem"),
    )
}

/// What the fakes were sent, for the assertions.
#[derive(Clone, Default)]
struct Seen {
    public_pem: String,
    gcp_claims: Arc<Mutex<Vec<Value>>>,
    oci_key_ids: Arc<Mutex<Vec<String>>>,
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

/// Hetzner Cloud API v1 (a fake): `GET /servers`.
async fn hetzner(headers: HeaderMap) -> impl IntoResponse {
    if bearer(&headers) == HETZNER {
        (
            StatusCode::OK,
            Json(
                json!({"servers": [], "meta": {"pagination": {"page": 1, "per_page": 1,
                "previous_page": null, "next_page": null, "last_page": 1, "total_entries": 0}}}),
            ),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"error": {"code": "unauthorized", "message": "unable to authenticate", "details": {}}}),
            ),
        )
    }
}

/// Cloudflare API v4 (a fake): `GET /user/tokens/verify`.
async fn cloudflare(headers: HeaderMap) -> impl IntoResponse {
    if bearer(&headers) == CLOUDFLARE {
        (
            StatusCode::OK,
            Json(
                json!({"success": true, "errors": [], "messages": [{"code": 10000,
                "message": "This API Token is valid and active"}],
                "result": {"id": "ed17574386854bf78a67040be0a770b0", "status": "active"}}),
            ),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"success": false, "errors": [{"code": 1000, "message": "Invalid API Token"}],
                "messages": [], "result": null}),
            ),
        )
    }
}

/// Steam Web API (a fake): `GET /ISteamWebAPIUtil/GetSupportedAPIList/v1/?key=`.
async fn steam(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    if q.get("key").map(String::as_str) == Some(STEAM) {
        (
            StatusCode::OK,
            json!({"apilist": {"interfaces": [{"name": "ISteamUser", "methods": []}]}}).to_string(),
        )
    } else {
        (
            StatusCode::FORBIDDEN,
            "<html><head><title>Forbidden</title></head><body><h1>Forbidden</h1>Access is denied.</body></html>"
                .to_owned(),
        )
    }
}

/// Google's OAuth token endpoint (a fake): the RS256 JWT bearer grant, its signature
/// checked with the service account's public key.
async fn gcp_token(
    State(seen): State<Seen>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let grant = form.get("grant_type").map(String::as_str);
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let key =
        jsonwebtoken::DecodingKey::from_rsa_pem(seen.public_pem.as_bytes()).expect("public key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Value>(&assertion, &key, &validation) {
        Ok(token) if grant == Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            seen.gcp_claims.lock().expect("lock").push(token.claims);
            (
                StatusCode::OK,
                Json(
                    json!({"access_token": "ya29.fake", "expires_in": 3599, "token_type": "Bearer"}),
                ),
            )
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})),
        ),
    }
}

/// OCI Identity API (a fake): `GET /20160918/users/{id}`, its HTTP signature checked.
async fn oci_user(
    State(seen): State<Seen>,
    axum::extract::Path(user): axum::extract::Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let auth = header("authorization");
    let param = |name: &str| {
        let start = auth.find(&format!("{name}=\""))? + name.len() + 2;
        let end = auth[start..].find('"')? + start;
        Some(auth[start..end].to_owned())
    };
    let signing = format!(
        "(request-target): get {}\ndate: {}\nhost: {}",
        uri.path(),
        header("date"),
        header("host")
    );
    let valid = param("headers").as_deref() == Some("(request-target) date host")
        && param("algorithm").as_deref() == Some("rsa-sha256")
        && param("signature").is_some_and(|sig| {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(sig) else {
                return false;
            };
            let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
            let key =
                jsonwebtoken::DecodingKey::from_rsa_pem(seen.public_pem.as_bytes()).expect("key");
            jsonwebtoken::crypto::verify(
                &url_safe,
                signing.as_bytes(),
                &key,
                jsonwebtoken::Algorithm::RS256,
            )
            .unwrap_or(false)
        });
    if valid {
        seen.oci_key_ids
            .lock()
            .expect("lock")
            .push(param("keyId").unwrap_or_default());
        (
            StatusCode::OK,
            Json(json!({"id": user, "name": "ops", "lifecycleState": "ACTIVE"})),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"code": "NotAuthenticated", "message": "The required information to complete authentication was not provided or was incorrect."}),
            ),
        )
    }
}

/// The fakes on one loopback port; the base URL.
async fn fakes(seen: Seen) -> String {
    let app = Router::new()
        .route("/hetzner/servers", get(hetzner))
        .route("/cloudflare/user/tokens/verify", get(cloudflare))
        .route(
            "/steam/ISteamWebAPIUtil/GetSupportedAPIList/v1/",
            get(steam),
        )
        .route("/gcp/token", post(gcp_token))
        .route("/oci/20160918/users/{user}", get(oci_user))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

async fn personal_org(app: &TestApp, token: &str) -> String {
    let r = app.get("/v1/organizations", Some(token)).await.expect(200);
    r.body[0]["id"].as_str().expect("personal org").to_string()
}

both_engines! {
    async fn credentials_are_sealed_defaulted_scoped_and_verified(engine) {
        let (private_pem, public_pem) = rsa_pair();
        let seen = Seen { public_pem, ..Seen::default() };
        let fake = fakes(seen.clone()).await;
        let moto = Moto::start().await;
        let app = spawn_app_with(engine, |c| {
            c.cloud.hetzner_api_url = format!("{fake}/hetzner");
            c.cloud.cloudflare_api_url = format!("{fake}/cloudflare");
            c.cloud.steam_api_url = format!("{fake}/steam");
            c.cloud.gcp_token_url = format!("{fake}/gcp/token");
            c.cloud.oci_identity_url = format!("{fake}/oci");
            c.cloud.aws_sts_url.clone_from(&moto.url);
        })
        .await;
        let owner = app.register("cloud@example.com").await;
        let t = Some(owner.access.as_str());
        let org = personal_org(&app, &owner.access).await;
        let other = app.register("cloud-other@example.com").await;

        // The providers and their fields.
        let providers = app.get("/v1/credentials/providers", t).await.expect(200).body;
        let ids: Vec<&str> = providers["data"].as_array().expect("list").iter()
            .filter_map(|p| p["id"].as_str()).collect();
        assert_eq!(ids, ["hetzner", "aws", "gcp", "oci", "cloudflare", "powerdns", "rfc2136", "steam"]);

        // Validation names the field.
        for (body, field) in [
            (json!({"name": "", "provider": "hetzner", "config": {"token": HETZNER}}), "name"),
            (json!({"name": "h", "provider": "linode", "config": {}}), "provider"),
            (json!({"name": "h", "provider": "hetzner", "config": {}}), "config.token"),
            (json!({"name": "h", "provider": "hetzner", "config": {"token": 5}}), "config.token"),
            (json!({"name": "h", "provider": "hetzner", "config": {"token": "x", "zone": "y"}}), "config.zone"),
            (json!({"name": "g", "provider": "gcp", "config": {"service_account_json": "{}"}}), "config.service_account_json"),
            (json!({"name": "o", "provider": "oci", "config": {"tenancy_ocid": "t", "user_ocid": "u",
                "fingerprint": "f", "region": "r", "private_key": "not a key"}}), "config.private_key"),
        ] {
            let mut sent = body.clone();
            sent["organization_id"] = json!(org);
            let r = app.post("/v1/credentials", t, sent).await.expect_error(400, "VALIDATION_ERROR");
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }

        // Create: the secret is never answered, a hint is; the first of a provider is
        // its default.
        let create = |body: Value| {
            let (app, org) = (&app, org.clone());
            async move {
                let mut body = body;
                body["organization_id"] = json!(org);
                app.post("/v1/credentials", t, body).await.expect(201).body
            }
        };
        let h1 = create(json!({"name": "Hetzner main", "provider": "hetzner", "config": {"token": HETZNER}})).await;
        let h1_id = h1["id"].as_str().expect("id").to_string();
        assert_eq!(h1["is_default"], true, "{h1}");
        assert_eq!(h1["hints"]["token"], "••••cdef", "{h1}");
        assert!(!h1.to_string().contains(HETZNER), "{h1}");
        let h2 = create(json!({"name": "Hetzner wrong", "provider": "hetzner", "config": {"token": "wrong-token-0000000"}})).await;
        let h2_id = h2["id"].as_str().expect("id").to_string();
        assert_eq!(h2["is_default"], false, "{h2}");
        // Sealed at rest.
        let stored: String = sqlx::query_scalar("SELECT sealed_secrets FROM credentials WHERE id = $1")
            .bind(&h1_id).fetch_one(&app.state.db.pool).await.expect("row");
        assert!(!stored.contains(HETZNER), "sealed: {stored}");

        // Default moves; one per provider.
        app.post(&format!("/v1/credentials/{h2_id}/default"), t, json!({})).await.expect(200);
        let listed = app.get(&format!("/v1/credentials?organization_id={org}&provider=hetzner"), t).await.expect(200).body;
        let defaults: Vec<&str> = listed["data"].as_array().expect("list").iter()
            .filter(|c| c["is_default"] == true).filter_map(|c| c["id"].as_str()).collect();
        assert_eq!(defaults, [h2_id.as_str()]);
        assert!(!listed.to_string().contains(HETZNER));

        // Another organization sees none of it.
        let o = Some(other.access.as_str());
        for (method, path) in [("GET", format!("/v1/credentials/{h1_id}")),
                               ("POST", format!("/v1/credentials/{h1_id}/verify")),
                               ("POST", format!("/v1/credentials/{h1_id}/default")),
                               ("DELETE", format!("/v1/credentials/{h1_id}"))] {
            let r = match method {
                "GET" => app.get(&path, o).await,
                "DELETE" => app.delete(&path, o).await,
                _ => app.post(&path, o, json!({})).await,
            };
            r.expect_error(404, "NOT_FOUND");
        }
        let theirs = app.get("/v1/credentials", o).await.expect(200).body;
        assert_eq!(theirs["data"].as_array().map(Vec::len), Some(0));

        // Verify: the provider's answer, recorded.
        let v = app.post(&format!("/v1/credentials/{h1_id}/verify"), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["status"], 200);
        assert_eq!(v["credential"]["verified_ok"], true, "{v}");
        let v = app.post(&format!("/v1/credentials/{h2_id}/verify"), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(v["status"], 401);
        assert!(v["message"].as_str().expect("message").contains("unable to authenticate"), "{v}");
        let got = app.get(&format!("/v1/credentials/{h2_id}"), t).await.expect(200).body;
        assert_eq!(got["verified_ok"], false, "{got}");
        // Fixing the token forgets the failed verify; the hint follows.
        let fixed = app.put(&format!("/v1/credentials/{h2_id}"), t, json!({"config": {"token": HETZNER}})).await.expect(200).body;
        assert!(fixed["verified_ok"].is_null(), "{fixed}");
        assert_eq!(fixed["hints"]["token"], "••••cdef");
        // A rename alone keeps the secret.
        app.put(&format!("/v1/credentials/{h2_id}"), t, json!({"name": "Hetzner spare"})).await.expect(200);
        let v = app.post(&format!("/v1/credentials/{h2_id}/verify"), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");

        let cf = create(json!({"name": "CF", "provider": "cloudflare", "config": {"api_token": CLOUDFLARE}})).await;
        let v = app.post(&format!("/v1/credentials/{}/verify", cf["id"].as_str().expect("id")), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");
        let cf_bad = create(json!({"name": "CF old", "provider": "cloudflare", "config": {"api_token": "revoked-token-000000"}})).await;
        let v = app.post(&format!("/v1/credentials/{}/verify", cf_bad["id"].as_str().expect("id")), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], false, "{v}");
        assert!(v["message"].as_str().expect("message").contains("Invalid API Token"), "{v}");

        let st = create(json!({"name": "Steam", "provider": "steam", "config": {"api_key": STEAM}})).await;
        let v = app.post(&format!("/v1/credentials/{}/verify", st["id"].as_str().expect("id")), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");
        let st_bad = create(json!({"name": "Steam old", "provider": "steam", "config": {"api_key": "NOPE0123456789"}})).await;
        let v = app.post(&format!("/v1/credentials/{}/verify", st_bad["id"].as_str().expect("id")), t, json!({})).await.expect(200).body;
        assert_eq!((v["ok"].clone(), v["status"].clone()), (json!(false), json!(403)), "{v}");

        // AWS against moto's STS: the caller's ARN.
        let aws = create(json!({"name": "AWS", "provider": "aws", "config": {"access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "region": "eu-west-1"}})).await;
        assert_eq!(aws["config"]["access_key_id"], "AKIAIOSFODNN7EXAMPLE");
        assert!(aws["config"].get("secret_access_key").is_none(), "{aws}");
        let v = app.post(&format!("/v1/credentials/{}/verify", aws["id"].as_str().expect("id")), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");
        assert!(v["message"].as_str().expect("message").contains("arn:aws:"), "{v}");

        // Google: the service account's JWT, signed with its key.
        let sa = json!({"type": "service_account", "project_id": "p", "private_key_id": "k",
            "private_key": private_pem, "client_email": "panel@p.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.googleapis.com/token"}).to_string();
        let gcp = create(json!({"name": "GCP", "provider": "gcp", "config": {"service_account_json": sa}})).await;
        assert!(!gcp.to_string().contains("PRIVATE KEY"), "{gcp}");
        let v = app.post(&format!("/v1/credentials/{}/verify", gcp["id"].as_str().expect("id")), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");
        let claims = seen.gcp_claims.lock().expect("lock").clone();
        assert_eq!(claims.len(), 1, "{claims:?}");
        assert_eq!(claims[0]["iss"], "panel@p.iam.gserviceaccount.com");
        assert_eq!(claims[0]["aud"], format!("{fake}/gcp/token"));

        // OCI: the signed request of its Identity API.
        let oci = create(json!({"name": "OCI", "provider": "oci", "config": {
            "tenancy_ocid": "ocid1.tenancy.oc1..aaaa", "user_ocid": "ocid1.user.oc1..bbbb",
            "fingerprint": "20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34", "region": "eu-frankfurt-1",
            "private_key": private_pem}})).await;
        let v = app.post(&format!("/v1/credentials/{}/verify", oci["id"].as_str().expect("id")), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(
            seen.oci_key_ids.lock().expect("lock").clone(),
            ["ocid1.tenancy.oc1..aaaa/ocid1.user.oc1..bbbb/20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5:3a:34"]
        );

        // A provider that is down: its message, not a 500.
        drop(moto);
        let v = app.post(&format!("/v1/credentials/{}/verify", aws["id"].as_str().expect("id")), t, json!({})).await.expect(200).body;
        assert_eq!(v["ok"], false, "{v}");
        assert!(v["status"].is_null(), "{v}");
        assert!(v["message"].as_str().expect("message").contains("could not connect"), "{v}");

        // Delete.
        app.delete(&format!("/v1/credentials/{h1_id}"), t).await.expect(204);
        app.get(&format!("/v1/credentials/{h1_id}"), t).await.expect_error(404, "NOT_FOUND");
    }
}
