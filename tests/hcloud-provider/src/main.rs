//! `terraform-provider-hcloud`: the test double of the hetznercloud/hcloud provider,
//! served over Terraform's plugin protocol (see the library's documentation).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shardlyn_test_hcloud_provider::serve().await
}
