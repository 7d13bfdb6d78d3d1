# A Shardlyn node on Hetzner Cloud: one server with the SSH keys given, booted with the
# agent's cloud-init, behind a base firewall built from var.firewall_rules.

locals {
  ssh_keys = { for index, key in var.ssh_keys : tostring(index) => key }
}

resource "hcloud_ssh_key" "node" {
  for_each = local.ssh_keys

  name       = "${var.name}-${each.key}"
  public_key = each.value
  labels     = var.labels
}

resource "hcloud_firewall" "node" {
  name   = var.name
  labels = var.labels

  dynamic "rule" {
    for_each = var.firewall_rules

    content {
      direction  = "in"
      protocol   = rule.value.protocol
      port       = rule.value.protocol == "icmp" ? null : rule.value.port
      source_ips = rule.value.source_ips
    }
  }
}

resource "hcloud_server" "node" {
  name         = var.name
  server_type  = var.instance_type
  image        = var.image
  location     = var.region
  ssh_keys     = [for key in hcloud_ssh_key.node : key.id]
  user_data    = var.user_data
  labels       = var.labels
  firewall_ids = [hcloud_firewall.node.id]

  public_net {
    ipv4_enabled = true
    ipv6_enabled = true
  }
}
