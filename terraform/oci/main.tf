# A Shardlyn node on Oracle Cloud Infrastructure: one compute instance with a public
# VNIC, booted with the agent's cloud-init, in a network security group built from
# var.firewall_rules.
#
# How the shared variables map here:
# - region: an availability domain (for example "Uocm:EU-FRANKFURT-1-AD-1"); the OCI
#   region itself comes from the provider configuration.
# - instance_type: a shape (for example VM.Standard.E4.Flex); image: an image OCID.
# - labels: freeform tags. OCI needs three ids the shared interface has no variable
#   for; they are read from labels: oci_compartment_id, oci_vcn_id and oci_subnet_id.
# - ssh_keys: the ssh_authorized_keys metadata.

locals {
  compartment_id = var.labels["oci_compartment_id"]
  rules = merge([
    for index, rule in var.firewall_rules : {
      for source in rule.source_ips : "${index}-${source}" => merge(rule, { source = source })
    }
  ]...)
}

resource "oci_core_network_security_group" "node" {
  compartment_id = local.compartment_id
  vcn_id         = var.labels["oci_vcn_id"]
  display_name   = var.name
  freeform_tags  = var.labels
}

resource "oci_core_network_security_group_security_rule" "node" {
  for_each = local.rules

  network_security_group_id = oci_core_network_security_group.node.id
  direction                 = "INGRESS"
  protocol                  = lookup({ tcp = "6", udp = "17", icmp = "1" }, each.value.protocol, "all")
  source                    = each.value.source
  source_type               = "CIDR_BLOCK"

  dynamic "tcp_options" {
    for_each = each.value.protocol == "tcp" ? [each.value.port] : []

    content {
      destination_port_range {
        min = tonumber(split("-", tcp_options.value)[0])
        max = tonumber(reverse(split("-", tcp_options.value))[0])
      }
    }
  }

  dynamic "udp_options" {
    for_each = each.value.protocol == "udp" ? [each.value.port] : []

    content {
      destination_port_range {
        min = tonumber(split("-", udp_options.value)[0])
        max = tonumber(reverse(split("-", udp_options.value))[0])
      }
    }
  }
}

resource "oci_core_instance" "node" {
  compartment_id      = local.compartment_id
  availability_domain = var.region
  display_name        = var.name
  shape               = var.instance_type
  freeform_tags       = var.labels

  source_details {
    source_type = "image"
    source_id   = var.image
  }

  create_vnic_details {
    subnet_id        = var.labels["oci_subnet_id"]
    assign_public_ip = true
    nsg_ids          = [oci_core_network_security_group.node.id]
  }

  metadata = {
    ssh_authorized_keys = join("\n", var.ssh_keys)
    user_data           = base64encode(var.user_data)
  }
}
