//! The overhead of a provisioning run: the panel applying a planned request (a fresh
//! working directory, `terraform init`, `apply` of the stored plan file with the state
//! in the panel's http backend, `output -json`, the log and the request recorded)
//! against the same `terraform/hetzner` module applied by hand in the same run (a fresh
//! directory, `init`, `apply` of a plan file, `output -json`, local state), both against
//! the FAKE Hetzner Cloud API and the test double of its Terraform provider. Goal: at most
//! 1 s of overhead. `BENCH_ROUNDS` (default 3) rounds of each; medians printed.
//!
//! `cargo bench -p shardlyn-tests --bench provision`

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use shardlyn_panel::provision::modules;
use shardlyn_tests::bench::{env_or, percentile};
use shardlyn_tests::hetzner::FakeHetzner;
use shardlyn_tests::{Engine, TestApp, spawn_app_with};

const TOKEN: &str = "hcloud-token-bench-0123456789abcdef";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Polls the request until its status is none of `running`.
async fn settle(app: &TestApp, token: &str, id: &str, running: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let r = app
            .get(&format!("/v1/provision/{id}"), Some(token))
            .await
            .expect(200);
        let status = r.body["status"].as_str().unwrap_or_default().to_owned();
        if !running.contains(&status.as_str()) {
            return status;
        }
        assert!(Instant::now() < deadline, "stuck {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `terraform args` in `dir` with the fake's environment; panics on failure.
fn terraform(dir: &Path, cli: &Path, url: &str, args: &[&str]) {
    let out = Command::new("terraform")
        .args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", cli)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env("HCLOUD_TOKEN", TOKEN)
        .env("HCLOUD_ENDPOINT", url)
        .output()
        .expect("terraform runs");
    assert!(
        out.status.success(),
        "terraform {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A root module around the hetzner module with local state, and its variables.
fn hand_dir(dir: &Path, name: &str) {
    let module = dir.join("module");
    std::fs::create_dir_all(&module).expect("dir");
    for (file, text) in modules::module("hetzner").expect("module") {
        std::fs::write(module.join(file), text).expect("write");
    }
    let mut root = String::new();
    for v in modules::VARIABLES {
        root.push_str(&format!("variable \"{v}\" {{}}\n"));
    }
    root.push_str("module \"node\" {\n  source = \"./module\"\n");
    for v in modules::VARIABLES {
        root.push_str(&format!("  {v} = var.{v}\n"));
    }
    root.push_str("}\n");
    for o in modules::OUTPUTS {
        root.push_str(&format!(
            "output \"{o}\" {{\n  value = module.node.{o}\n}}\n"
        ));
    }
    std::fs::write(dir.join("main.tf"), root).expect("write");
    let vars = json!({"name": name, "region": "fsn1", "instance_type": "cx23", "image": "debian-12",
        "ssh_keys": [], "user_data": "#cloud-config\n", "labels": {"bench": "1"},
        "firewall_rules": [{"protocol": "tcp", "port": "22", "source_ips": ["0.0.0.0/0"]}]});
    std::fs::write(dir.join("terraform.tfvars.json"), vars.to_string()).expect("write");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("module")).expect("dir");
    for entry in [
        "main.tf",
        "terraform.tfvars.json",
        "plan.tfplan",
        "terraform.tfstate",
    ] {
        if from.join(entry).exists() {
            std::fs::copy(from.join(entry), to.join(entry)).expect("copy");
        }
    }
    for (file, _) in modules::module("hetzner").expect("module") {
        std::fs::copy(from.join("module").join(file), to.join("module").join(file)).expect("copy");
    }
}

#[tokio::main]
async fn main() {
    if !shardlyn_tests::terraform::terraform_available() {
        println!("provision bench: SHARDLYN_TEST_SKIP_TERRAFORM=1, skipped");
        return;
    }
    let rounds = env_or("BENCH_ROUNDS", 3);
    let fake = FakeHetzner::start(TOKEN).await;
    let tf = tempfile::tempdir().expect("tempdir");
    let cli = shardlyn_tests::terraform::test_cli_config(tf.path());
    let url = fake.url.clone();
    let cli_for_panel = cli.clone();
    let app = spawn_app_with(Engine::Sqlite, move |c| {
        c.cloud.hetzner_api_url = url;
        c.provision.terraform_cli_config = Some(cli_for_panel);
    })
    .await;
    let s = app.register("bench@example.com").await;
    app.post(
        "/v1/credentials",
        Some(&s.access),
        json!({"name": "h", "provider": "hetzner", "config": {"token": TOKEN}}),
    )
    .await
    .expect(201);

    let mut panel = Vec::new();
    let mut by_hand = Vec::new();
    for round in 0..rounds {
        // The panel: plan (not timed), then apply, timed to the request's `applied`.
        let r = app
            .post(
                "/v1/provision",
                Some(&s.access),
                json!({"provider": "hetzner", "region": "fsn1", "instance_type": "cx23",
                    "name": format!("bench-panel-{round}")}),
            )
            .await
            .expect(201);
        let id = r.body["id"].as_str().expect("id").to_owned();
        app.post(
            &format!("/v1/provision/{id}/plan"),
            Some(&s.access),
            json!({}),
        )
        .await
        .expect(202);
        assert_eq!(settle(&app, &s.access, &id, &["planning"]).await, "planned");
        let start = Instant::now();
        app.post(
            &format!("/v1/provision/{id}/apply"),
            Some(&s.access),
            json!({}),
        )
        .await
        .expect(202);
        assert_eq!(settle(&app, &s.access, &id, &["applying"]).await, "applied");
        panel.push(start.elapsed().as_secs_f64());
        app.delete(&format!("/v1/provision/{id}"), Some(&s.access))
            .await
            .expect(202);
        assert_eq!(
            settle(&app, &s.access, &id, &["destroying"]).await,
            "destroyed"
        );

        // By hand: plan in one directory (not timed), then a fresh one applies the file.
        let planned = tempfile::tempdir().expect("tempdir");
        hand_dir(planned.path(), &format!("bench-hand-{round}"));
        terraform(
            planned.path(),
            &cli,
            &fake.url,
            &["init", "-input=false", "-no-color"],
        );
        terraform(
            planned.path(),
            &cli,
            &fake.url,
            &["plan", "-input=false", "-no-color", "-out=plan.tfplan"],
        );
        let fresh = tempfile::tempdir().expect("tempdir");
        copy_dir(planned.path(), fresh.path());
        let start = Instant::now();
        terraform(
            fresh.path(),
            &cli,
            &fake.url,
            &["init", "-input=false", "-no-color"],
        );
        terraform(
            fresh.path(),
            &cli,
            &fake.url,
            &["apply", "-input=false", "-no-color", "-json", "plan.tfplan"],
        );
        terraform(
            fresh.path(),
            &cli,
            &fake.url,
            &["output", "-json", "-no-color"],
        );
        by_hand.push(start.elapsed().as_secs_f64());
        terraform(
            fresh.path(),
            &cli,
            &fake.url,
            &["destroy", "-auto-approve", "-input=false", "-no-color"],
        );
    }
    let (p, h) = (median(panel.clone()), median(by_hand.clone()));
    println!("provision apply, median of {rounds} rounds (20 ms status polling included):");
    println!(
        "  terraform by hand (fresh dir: init, apply plan file, output): {h:.2} s  {by_hand:.2?}"
    );
    println!("  panel run (fresh dir, http backend, log, records):          {p:.2} s  {panel:.2?}");
    println!(
        "  overhead: {:.2} s (ratio {:.2}; goal <= 1 s)",
        p - h,
        p / h
    );
}
