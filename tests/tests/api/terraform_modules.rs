//! The Terraform modules in `terraform/`: one interface for every cloud, formatted, and
//! the `hetzner` module run for real — `terraform init/plan/apply/destroy` through the
//! test double of the hetznercloud/hcloud provider against the fake Hetzner Cloud API
//! (`shardlyn_tests::hetzner`, a fake of a service the tests cannot reach).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use shardlyn_tests::hetzner::FakeHetzner;
use shardlyn_tests::terraform::{terraform_available, test_cli_config};

const MODULES: &[&str] = &["hetzner", "aws", "gcp", "oci"];
const FILES: &[&str] = &["main.tf", "outputs.tf", "variables.tf", "versions.tf"];
const TOKEN: &str = "terraform-test-token-0123456789abcdefghijklmnopqrstuvwxyz012345678";

fn modules_dir() -> PathBuf {
    shardlyn_tests::crate_path("../terraform")
}

/// The text of each top-level `kind "name" { ... }` block of an HCL file, by name.
fn blocks(text: &str, kind: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let opener = format!("{kind} \"");
    let mut rest = text;
    while let Some(start) = rest.find(&opener) {
        let after = &rest[start + opener.len()..];
        let name_end = after.find('"').expect("closing quote");
        let name = after[..name_end].to_string();
        let body_start = after.find('{').expect("block opens");
        let mut depth = 0_i32;
        let mut end = body_start;
        for (i, c) in after[body_start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = body_start + i;
                break;
            }
        }
        found.insert(name, after[body_start + 1..end].to_string());
        rest = &after[end..];
    }
    found
}

/// A variable's `type` expression, whitespace removed (it may span lines).
fn type_of(body: &str) -> String {
    let start = body
        .lines()
        .position(|l| l.trim_start().starts_with("type "))
        .expect("every variable declares its type");
    let mut expr = String::new();
    let mut depth = 0_i32;
    for line in body.lines().skip(start) {
        let part = if expr.is_empty() {
            line.split_once('=').expect("type =").1
        } else {
            line
        };
        depth += part.matches(['(', '{', '[']).count() as i32;
        depth -= part.matches([')', '}', ']']).count() as i32;
        expr.push_str(part);
        expr.push(',');
        if depth <= 0 {
            break;
        }
    }
    // Attributes of a multi-line object are separated by newlines, not commas.
    let compact: String = expr.split_whitespace().collect();
    compact
        .replace(",,", ",")
        .replace("{,", "{")
        .replace(",}", "}")
        .trim_matches(',')
        .to_string()
}

#[test]
fn every_module_has_the_same_variables_types_and_outputs_in_four_files() {
    let mut interfaces = Vec::new();
    for module in MODULES {
        let dir = modules_dir().join(module);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files, FILES,
            "terraform/{module} holds exactly the embedded files"
        );
        let mut variables = BTreeMap::new();
        let mut outputs = Vec::new();
        for file in FILES {
            let text = std::fs::read_to_string(dir.join(file)).expect("read module file");
            for (name, body) in blocks(&text, "variable") {
                variables.insert(name, type_of(&body));
            }
            outputs.extend(blocks(&text, "output").into_keys());
            assert!(
                !text.contains("backend \""),
                "terraform/{module}/{file} has a backend"
            );
            assert!(
                !text.contains("provider \""),
                "terraform/{module}/{file} configures a provider"
            );
        }
        outputs.sort();
        interfaces.push((module, variables, outputs));
    }
    let (_, variables, outputs) = &interfaces[0];
    let names: Vec<&str> = variables.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "firewall_rules",
            "image",
            "instance_type",
            "labels",
            "name",
            "region",
            "ssh_keys",
            "user_data"
        ]
    );
    assert_eq!(variables["ssh_keys"], "list(string)");
    assert_eq!(variables["labels"], "map(string)");
    assert_eq!(
        variables["firewall_rules"],
        "list(object({protocol=string,port=string,source_ips=list(string)}))"
    );
    assert_eq!(outputs, &["ipv4", "ipv6", "server_id"]);
    for (module, v, o) in &interfaces[1..] {
        assert_eq!(
            v, variables,
            "terraform/{module} variables differ from hetzner's"
        );
        assert_eq!(
            o, outputs,
            "terraform/{module} outputs differ from hetzner's"
        );
    }
}

#[test]
fn the_modules_are_terraform_fmt_clean() {
    if !terraform_available() {
        return;
    }
    let out = std::process::Command::new("terraform")
        .args(["fmt", "-check", "-recursive", "-diff"])
        .arg(modules_dir())
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("terraform runs");
    assert!(
        out.status.success(),
        "terraform fmt -check -recursive terraform/ failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A root module as the panel writes one (here with a local backend).
const ROOT: &str = r##"terraform {
  backend "local" {}
}

variable "instance_type" {
  type = string
}

module "node" {
  source        = "./module"
  name          = "node-1"
  region        = "fsn1"
  instance_type = var.instance_type
  image         = "ubuntu-24.04"
  ssh_keys      = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm1 one@shardlyn", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm2 two@shardlyn"]
  user_data     = "#cloud-config\nruncmd:\n  - echo node-1\n"
  labels        = { shardlyn = "node-1" }
  firewall_rules = [
    { protocol = "tcp", port = "22", source_ips = ["0.0.0.0/0", "::/0"] },
  ]
}

output "server_id" {
  value = module.node.server_id
}

output "ipv4" {
  value = module.node.ipv4
}

output "ipv6" {
  value = module.node.ipv6
}
"##;

struct Run {
    dir: PathBuf,
    cli_config: PathBuf,
    endpoint: String,
}

impl Run {
    /// Runs `terraform args...` in the root module; answers (success, stdout + stderr).
    async fn terraform(&self, args: &[&str]) -> (bool, String) {
        let out = tokio::process::Command::new("terraform")
            .args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("HCLOUD_TOKEN", TOKEN)
            .env("HCLOUD_ENDPOINT", &self.endpoint)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env_remove("TF_DATA_DIR")
            .output()
            .await
            .expect("terraform runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.terraform(args).await;
        assert!(ok, "terraform {args:?} failed:\n{text}");
        text
    }

    async fn plan_apply(&self, instance_type: &str) -> (bool, String) {
        let var = format!("instance_type={instance_type}");
        self.ok(&[
            "plan",
            "-no-color",
            "-input=false",
            "-out=plan.tfplan",
            "-var",
            &var,
        ])
        .await;
        self.terraform(&["apply", "-no-color", "-input=false", "plan.tfplan"])
            .await
    }

    async fn outputs(&self) -> Value {
        let text = self.ok(&["output", "-no-color", "-json"]).await;
        let start = text.find('{').expect("json outputs");
        serde_json::from_str(&text[start..text.rfind('}').expect("end") + 1]).expect("outputs")
    }
}

fn copy_module(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("module dir");
    for file in FILES {
        std::fs::copy(from.join(file), to.join(file)).expect("copy module file");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hetzner_module_creates_resizes_in_place_and_destroys_a_node() {
    if !terraform_available() {
        return;
    }
    let fake = FakeHetzner::start(TOKEN).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("root");
    copy_module(&modules_dir().join("hetzner"), &dir.join("module"));
    std::fs::write(dir.join("main.tf"), ROOT).expect("root module");
    let _ = std::fs::remove_file(dir.join(".terraform.lock.hcl"));
    let run = Run {
        cli_config: test_cli_config(tmp.path()),
        dir,
        endpoint: fake.url.clone(),
    };
    run.ok(&["init", "-no-color", "-input=false"]).await;

    // A failure in the middle of an apply shows the API's message and keeps what was
    // made; the next apply finishes the job.
    fake.fail_next(
        "POST",
        "/servers",
        422,
        "invalid_input",
        "server type cx22 is sold out in fsn1 (injected)",
    );
    let (ok, text) = run.plan_apply("cx22").await;
    assert!(!ok, "the apply had to fail:\n{text}");
    assert!(
        text.contains("server type cx22 is sold out in fsn1 (injected)"),
        "{text}"
    );
    assert!(fake.servers().is_empty());
    assert_eq!(
        fake.ssh_keys().len(),
        2,
        "the keys were made before the failure"
    );
    let (ok, text) = run.plan_apply("cx22").await;
    assert!(ok, "the retry applies:\n{text}");

    let servers = fake.servers();
    assert_eq!(servers.len(), 1, "{servers:?}");
    let server = &servers[0];
    assert_eq!(server["name"], "node-1");
    assert_eq!(server["status"], "running");
    assert_eq!(server["server_type"]["name"], "cx22");
    assert_eq!(server["datacenter"]["location"]["name"], "fsn1");
    assert_eq!(server["image"]["name"], "ubuntu-24.04");
    assert_eq!(server["labels"]["shardlyn"], "node-1");
    assert_eq!(
        server["user_data"],
        "#cloud-config\nruncmd:\n  - echo node-1\n"
    );
    let keys = fake.ssh_keys();
    assert_eq!(keys.len(), 2);
    let firewalls = fake.firewalls();
    assert_eq!(firewalls.len(), 1);
    assert_eq!(firewalls[0]["name"], "node-1");
    assert_eq!(firewalls[0]["rules"][0]["protocol"], "tcp");
    assert_eq!(firewalls[0]["rules"][0]["port"], "22");
    assert_eq!(
        firewalls[0]["applied_to"][0]["server"]["id"], server["id"],
        "the firewall is on the server"
    );
    let id = server["id"].clone();
    let outputs = run.outputs().await;
    assert_eq!(outputs["server_id"]["value"], id.to_string());
    assert_eq!(outputs["ipv4"]["value"], server["public_net"]["ipv4"]["ip"]);
    assert!(
        outputs["ipv6"]["value"]
            .as_str()
            .is_some_and(|ip| ip.ends_with("::1")),
        "{outputs}"
    );

    // Nothing changed: the plan is empty.
    let text = run
        .ok(&[
            "plan",
            "-no-color",
            "-input=false",
            "-detailed-exitcode",
            "-var",
            "instance_type=cx22",
        ])
        .await;
    assert!(text.contains("No changes"), "{text}");

    // A bigger server type is applied in place, the way the real provider does it.
    let before = fake.requests().len();
    let (ok, text) = run.plan_apply("cx32").await;
    assert!(ok, "resize:\n{text}");
    let servers = fake.servers();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["id"], id, "resized in place, not replaced");
    assert_eq!(servers[0]["server_type"]["name"], "cx32");
    assert_eq!(servers[0]["status"], "running");
    let calls: Vec<String> = fake.requests()[before..]
        .iter()
        .filter(|(m, _)| m == "POST")
        .map(|(_, p)| p.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(calls, ["poweroff", "change_type", "poweron"], "{calls:?}");

    run.ok(&[
        "destroy",
        "-no-color",
        "-input=false",
        "-auto-approve",
        "-var",
        "instance_type=cx32",
    ])
    .await;
    assert!(fake.servers().is_empty());
    assert!(fake.firewalls().is_empty());
    assert!(fake.ssh_keys().is_empty());
}
