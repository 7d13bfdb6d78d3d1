//! Terraform for tests: whether to run it, and a CLI configuration that installs the
//! test double of the hetznercloud/hcloud provider (`tests/hcloud-provider`) from a
//! filesystem mirror, so `terraform init` works offline and the provider talks to the
//! fake Hetzner Cloud API (`crate::hetzner`) through `HCLOUD_ENDPOINT`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The provider version the mirror offers (the `terraform/hetzner` module asks `~> 1.49`).
pub const PROVIDER_VERSION: &str = "1.49.0";

/// Whether tests run Terraform: false only with `SHARDLYN_TEST_SKIP_TERRAFORM=1`.
///
/// # Panics
/// When `terraform` is not installed and the variable is not set: a missing tool must
/// fail the tests, not skip them.
#[must_use]
pub fn terraform_available() -> bool {
    if std::env::var("SHARDLYN_TEST_SKIP_TERRAFORM").as_deref() == Ok("1") {
        return false;
    }
    let found = Command::new("terraform")
        .arg("version")
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`terraform` is not on PATH: install Terraform >= 1.5 (scripts/dev-services reports \
         it), or set SHARDLYN_TEST_SKIP_TERRAFORM=1 to skip the Terraform tests"
    );
    true
}

/// The `terraform-provider-hcloud` test double next to the test executable, built when
/// missing or older than its sources (`cargo nextest run -p shardlyn-tests` does not
/// build other packages' binaries, and a stale one would test old code; building only
/// then spares waiting on cargo's lock while other builds run).
///
/// # Panics
/// When it cannot be built.
#[must_use]
pub fn provider_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current exe");
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target profile dir")
                .to_path_buf();
            let binary = profile_dir.join("terraform-provider-hcloud");
            let built = std::fs::metadata(&binary).and_then(|m| m.modified()).ok();
            let sources = newest_mtime(&crate::crate_path("hcloud-provider"));
            if built.is_some_and(|b| sources.is_none_or(|s| s <= b)) {
                return binary;
            }
            let target_dir = profile_dir.parent().expect("target dir");
            let mut build = Command::new(env!("CARGO"));
            build
                .args(["build", "-q", "-p", "shardlyn-test-hcloud-provider"])
                .args(["--bin", "terraform-provider-hcloud", "--target-dir"])
                .arg(target_dir)
                .current_dir(crate::crate_path(""));
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(
                status.success(),
                "building terraform-provider-hcloud failed"
            );
            assert!(binary.exists(), "{} was not built", binary.display());
            binary
        })
        .clone()
}

/// The newest modification time of the files under `path`.
fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest_mtime(&entry.path()))
        .max()
}

/// Builds, under `dir`, a filesystem mirror holding the test provider as
/// `registry.terraform.io/hetznercloud/hcloud` [`PROVIDER_VERSION`] and a CLI
/// configuration installing that provider from the mirror (every other one directly);
/// answers the configuration's path, for `TF_CLI_CONFIG_FILE` (or the panel's
/// `provision.terraform_cli_config`).
///
/// # Panics
/// When the files cannot be written.
#[must_use]
pub fn test_cli_config(dir: &Path) -> PathBuf {
    let mirror = dir.join("terraform-mirror");
    let platform = mirror.join(format!(
        "registry.terraform.io/hetznercloud/hcloud/{PROVIDER_VERSION}/linux_amd64"
    ));
    std::fs::create_dir_all(&platform).expect("mirror directory");
    let target = platform.join(format!("terraform-provider-hcloud_v{PROVIDER_VERSION}"));
    if !target.exists() {
        let binary = provider_binary();
        if std::fs::hard_link(&binary, &target).is_err() {
            std::fs::copy(&binary, &target).expect("copy the provider into the mirror");
        }
    }
    let config = dir.join("terraform.tfrc");
    let text = format!(
        r#"provider_installation {{
  filesystem_mirror {{
    path    = "{}"
    include = ["registry.terraform.io/hetznercloud/hcloud"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hetznercloud/hcloud"]
  }}
}}
"#,
        mirror.display()
    );
    std::fs::write(&config, text).expect("write the CLI configuration");
    config
}
