//! A test double of the real hetznercloud/hcloud Terraform provider.
//!
//! Terraform cannot reach Hetzner Cloud from the tests, and the real provider cannot be
//! downloaded here, so the tests install this binary as
//! `registry.terraform.io/hetznercloud/hcloud` 1.49.0 through a filesystem mirror
//! (`shardlyn_tests::terraform::test_cli_config`) and point it at the fake Hetzner Cloud
//! API (`shardlyn_tests::hetzner`). It implements the resources the `terraform/hetzner`
//! module uses — `hcloud_ssh_key`, `hcloud_firewall`, `hcloud_server` — with exactly the
//! attributes the module sets, doing real HTTP against the Hetzner Cloud API the way the
//! real provider does (a server type change powers the server off, changes the type and
//! powers it on again; `location`, `image`, `user_data` force a new server). Like the
//! real provider it reads `HCLOUD_TOKEN` and `HCLOUD_ENDPOINT`; API errors become
//! diagnostics carrying Hetzner's `error.message`.

pub mod api;
pub mod firewall;
pub mod provider;
pub mod server;
pub mod ssh_key;

/// Serves the provider to Terraform (called by the binary).
///
/// # Errors
/// When the plugin server cannot start.
pub async fn serve() -> anyhow::Result<()> {
    tf_provider::serve("hcloud", provider::HcloudProvider::default()).await
}
