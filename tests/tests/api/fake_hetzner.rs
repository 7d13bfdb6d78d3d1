//! The fake Hetzner Cloud API (`shardlyn_tests::hetzner`) is a fake of a service the
//! tests cannot reach (api.hetzner.cloud). This test proves it speaks the documented
//! wire format: Hetzner's official Python client, `hcloud` (installed into the test
//! venv by `scripts/dev-services`), drives it through a node's whole life and checks
//! every typed answer (`tests/support/hcloud_check.py`).

use shardlyn_tests::hetzner::FakeHetzner;

const TOKEN: &str = "fake-hcloud-token-0123456789abcdefghijklmnopqrstuvwxyz0123456789ab";

fn venv_python() -> std::path::PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    std::path::Path::new(&home).join(".cache/shardlyn/venv/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_hcloud_client_drives_the_fake_through_a_node_lifecycle() {
    let fake = FakeHetzner::start(TOKEN).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    fake.on_server_created(move |server| sink.lock().expect("lock").push(server.clone()));
    let user_data = "#cloud-config\nruncmd:\n  - echo shardlyn\n";

    let script = shardlyn_tests::crate_path("support/hcloud_check.py");
    let (url, data) = (fake.url.clone(), user_data.to_string());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(venv_python())
            .arg(script)
            .args([url.as_str(), TOKEN, data.as_str()])
            .output()
            .expect("the venv's python runs (scripts/dev-services installs hcloud)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "hcloud_check.py failed:\n{stdout}\n{stderr}"
    );

    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "one server was created");
    assert_eq!(seen[0]["name"], "check-node");
    assert_eq!(
        seen[0]["user_data"], user_data,
        "the hook sees the user data sent"
    );
    assert!(fake.servers().is_empty() && fake.firewalls().is_empty() && fake.ssh_keys().is_empty());
    let requests = fake.requests();
    let resize = requests
        .iter()
        .rposition(|(m, p)| m == "POST" && p.ends_with("/actions/change_type"))
        .expect("change_type was called");
    assert!(
        requests[..resize]
            .iter()
            .any(|(m, p)| m == "POST" && p.ends_with("/actions/poweroff")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn the_fake_answers_errors_in_hetzners_envelope_with_rate_limit_headers() {
    let fake = FakeHetzner::start(TOKEN).await;
    let client = reqwest::Client::new();

    let r = client
        .get(format!("{}/servers", fake.url))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");

    fake.fail_next("POST", "/servers", 422, "invalid_input", "injected failure");
    let r = client
        .post(format!("{}/servers", fake.url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"name": "n", "server_type": "cx22", "image": "ubuntu-24.04"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 422);
    for header in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(r.headers().contains_key(header), "{header}");
    }
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_input");
    assert_eq!(body["error"]["message"], "injected failure");
    assert!(
        fake.servers().is_empty(),
        "the injected failure created nothing"
    );

    let r = client
        .get(format!("{}/servers/424242", fake.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found");
}
