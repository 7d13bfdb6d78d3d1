//! Signing SSH certificates through the API (`POST /v1/ssh/certificate`, an Ed25519 CA,
//! one node) against `GET /v1/users/me` in the same run: requests per second and p99
//! latency of each, `BENCH_CONCURRENCY` (default 8) clients for `BENCH_SECONDS` (default
//! 5) seconds each, printed as ratios.
//!
//! `cargo bench -p shardlyn-tests --bench ssh`

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shardlyn_tests::agent::register_node;
use shardlyn_tests::bench::{env_or, percentile};
use shardlyn_tests::{Engine, spawn_app_with};

/// Requests per second and p99 (ms) of `concurrency` clients sending what `request`
/// builds for `seconds`.
async fn measure(
    concurrency: u64,
    seconds: u64,
    request: impl Fn() -> reqwest::RequestBuilder + Clone + Send + 'static,
) -> (f64, f64) {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let request = request.clone();
        tasks.spawn(async move {
            let mut took = Vec::new();
            while Instant::now() < until {
                let start = Instant::now();
                let r = request().send().await.expect("send");
                assert!(r.status().is_success(), "{}", r.status());
                r.bytes().await.expect("body");
                took.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            took
        });
    }
    let mut all = Vec::new();
    while let Some(t) = tasks.join_next().await {
        all.extend(t.expect("task"));
    }
    all.sort_by(f64::total_cmp);
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let rate = all.len() as f64 / seconds as f64;
    (rate, percentile(&all, 0.99))
}

#[tokio::main]
async fn main() {
    let concurrency = env_or("BENCH_CONCURRENCY", 8);
    let seconds = env_or("BENCH_SECONDS", 5);
    // The API's rate limit would cap both sides alike: off, to measure the work.
    let app = spawn_app_with(Engine::Sqlite, |c| c.rate_limit.enabled = false).await;
    let admin = app.bootstrap_admin().await;
    let (node, _dir) = register_node(&app, &admin.access).await;
    let keys = tempfile::tempdir().expect("tmp");
    let key = keys.path().join("id");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(made.success());
    let public = std::fs::read_to_string(keys.path().join("id.pub")).expect("pub");
    let body: Value = json!({"public_key": public.trim(), "node_id": node.node_id});
    // The CA key is made by the first signature.
    app.post("/v1/ssh/certificate", Some(&admin.access), body.clone())
        .await
        .expect(200);

    let (client, base, token) = (app.client.clone(), app.base.clone(), admin.access.clone());
    let me = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        move || {
            client
                .get(format!("{base}/v1/users/me"))
                .bearer_auth(&token)
        }
    };
    let sign = move || {
        client
            .post(format!("{base}/v1/ssh/certificate"))
            .bearer_auth(&token)
            .json(&body)
    };
    let (me_rate, me_p99) = measure(concurrency, seconds, me).await;
    let (sign_rate, sign_p99) = measure(concurrency, seconds, sign).await;
    println!(
        "ssh: GET /v1/users/me {me_rate:.0} req/s, p99 {me_p99:.2} ms (baseline, {concurrency} clients)"
    );
    println!("ssh: POST /v1/ssh/certificate {sign_rate:.0} req/s, p99 {sign_p99:.2} ms");
    println!(
        "ssh: signing rate ratio {:.2}, p99 ratio {:.2} (signing over users/me)",
        sign_rate / me_rate,
        sign_p99 / me_p99
    );
}
