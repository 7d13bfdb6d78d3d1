# A Shardlyn node on Google Cloud: one Compute Engine instance on the default network,
# booted with the agent's cloud-init (metadata user-data), behind firewall rules built
# from var.firewall_rules that target the instance's network tag.
#
# How the shared variables map here:
# - region: a zone (for example europe-west3-a); Compute Engine instances live in zones.
# - instance_type: a machine type; image: a boot image (family or self link).
# - ssh_keys: the ssh-keys metadata, for the user "shardlyn".
# - labels: instance labels (GCP label rules apply: lower case keys and values).

locals {
  tag = "shardlyn-${var.name}"
  rules = {
    for index, rule in var.firewall_rules : tostring(index) => rule
  }
}

resource "google_compute_firewall" "node" {
  for_each = local.rules

  name          = "${var.name}-in-${each.key}"
  network       = "default"
  direction     = "INGRESS"
  source_ranges = each.value.source_ips
  target_tags   = [local.tag]

  allow {
    protocol = each.value.protocol
    ports    = each.value.protocol == "icmp" ? null : [each.value.port]
  }
}

resource "google_compute_instance" "node" {
  name         = var.name
  machine_type = var.instance_type
  zone         = var.region
  labels       = var.labels
  tags         = [local.tag]

  boot_disk {
    initialize_params {
      image = var.image
    }
  }

  network_interface {
    network    = "default"
    stack_type = "IPV4_ONLY"

    access_config {}
  }

  metadata = {
    user-data = var.user_data
    ssh-keys  = join("\n", [for key in var.ssh_keys : "shardlyn:${key}"])
  }
}
