//! The fake Cloudflare API v4 (`shardlyn_tests::cloudflare`) is a fake of a service the
//! tests cannot reach (api.cloudflare.com; a real account and zone cannot be had
//! offline). This test proves it speaks the documented wire format: Cloudflare's
//! official Python SDK, `cloudflare` 5.9 (installed into the test venv by
//! `scripts/dev-services`), drives it through token verification, zone and record
//! lists, A, TXT and SRV records, updates, deletes, a batch and error answers, checking
//! every typed answer (`tests/support/cloudflare_check.py`).

use shardlyn_tests::cloudflare::FakeCloudflare;

const TOKEN: &str = "fake-cloudflare-token-0123456789abcdefghij";

fn venv_python() -> std::path::PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    std::path::Path::new(&home).join(".cache/shardlyn/venv/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_cloudflare_sdk_drives_the_fake_through_records_and_a_batch() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let zone = fake.add_zone("play.example.com");
    fake.add_zone("other.example.net");

    let script = shardlyn_tests::crate_path("support/cloudflare_check.py");
    let url = fake.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(venv_python())
            .arg(script)
            .args([url.as_str(), TOKEN, "play.example.com"])
            .output()
            .expect("the venv's python runs (scripts/dev-services installs cloudflare)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "cloudflare_check.py failed:\n{stdout}\n{stderr}"
    );

    // What the SDK left behind, seen from the fake's side.
    let records = fake.records(&zone);
    let find = |name: &str, kind: &str| {
        records
            .iter()
            .find(|r| r["name"] == name && r["type"] == kind)
            .unwrap_or_else(|| panic!("{kind} {name} in {records:#?}"))
    };
    assert_eq!(find("mc.play.example.com", "A")["content"], "203.0.113.20");
    let srv = find("_minecraft._tcp.mc.play.example.com", "SRV");
    assert_eq!(srv["data"]["port"], 25566);
    assert_eq!(srv["content"], "1 5 25566 mc.play.example.com");
    assert_eq!(
        find("n2.play.example.com", "AAAA")["content"],
        "2001:db8::2"
    );
    assert_eq!(find("n1.play.example.com", "A")["ttl"], 3600);
    assert!(
        !records.iter().any(|r| r["type"] == "TXT"),
        "the TXT record was deleted: {records:#?}"
    );
    // The SDK sent the filters as the docs spell them.
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|(m, p)| m == "GET" && p.contains("name.exact=mc.play.example.com")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|(m, p)| m == "POST" && p.ends_with("/dns_records/batch")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn the_fake_refuses_denied_zones_and_goes_down_on_demand() {
    let fake = FakeCloudflare::start(TOKEN).await;
    let zone = fake.add_zone("example.com");
    let client = reqwest::Client::new();
    let create = || {
        client
            .post(format!("{}/zones/{zone}/dns_records", fake.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"type": "A", "name": "a", "content": "192.0.2.1", "ttl": 60}))
            .send()
    };

    fake.deny_zone(&zone);
    let r = create().await.expect("send");
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["code"], 10000);
    assert!(fake.records(&zone).is_empty(), "nothing was written");
    // Reading is still allowed.
    let r = client
        .get(format!("{}/zones/{zone}/dns_records", fake.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);

    fake.set_down(true);
    let before = fake.request_count();
    let fresh = reqwest::Client::new();
    let r = fresh
        .get(format!("{}/zones", fake.url))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(r.is_err(), "a new connection is closed unanswered: {r:?}");
    assert_eq!(fake.request_count(), before, "nothing was answered");
    fake.set_down(false);
    let r = fresh
        .get(format!("{}/zones", fake.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("up again");
    assert_eq!(r.status(), 200);
}
