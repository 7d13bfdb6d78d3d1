# A Shardlyn node on AWS: one EC2 instance in the default VPC, booted with the agent's
# cloud-init, behind a security group built from var.firewall_rules.
#
# How the shared variables map here:
# - region: not used by any resource; the AWS provider takes the region from its own
#   configuration (AWS_REGION). It is kept so every module has the same interface.
# - image: an AMI id.
# - ssh_keys: EC2 gives an instance one key pair, so the first key is the instance's
#   key pair; every key is still imported (one aws_key_pair each) and all of them
#   reach the machine through cloud-init (var.user_data) when the panel writes them.
# - labels: tags.

locals {
  ssh_keys = { for index, key in var.ssh_keys : tostring(index) => key }
  tags     = merge(var.labels, { Name = var.name })
}

resource "aws_key_pair" "node" {
  for_each = local.ssh_keys

  key_name   = "${var.name}-${each.key}"
  public_key = each.value
  tags       = local.tags
}

resource "aws_security_group" "node" {
  name        = var.name
  description = "Shardlyn node ${var.name}: base firewall"
  tags        = local.tags

  dynamic "ingress" {
    for_each = var.firewall_rules

    content {
      protocol         = ingress.value.protocol
      from_port        = ingress.value.protocol == "icmp" ? -1 : tonumber(split("-", ingress.value.port)[0])
      to_port          = ingress.value.protocol == "icmp" ? -1 : tonumber(reverse(split("-", ingress.value.port))[0])
      cidr_blocks      = [for ip in ingress.value.source_ips : ip if !strcontains(ip, ":")]
      ipv6_cidr_blocks = [for ip in ingress.value.source_ips : ip if strcontains(ip, ":")]
    }
  }

  egress {
    protocol         = "-1"
    from_port        = 0
    to_port          = 0
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }
}

resource "aws_instance" "node" {
  ami                         = var.image
  instance_type               = var.instance_type
  key_name                    = length(var.ssh_keys) > 0 ? aws_key_pair.node["0"].key_name : null
  user_data                   = var.user_data
  user_data_replace_on_change = true
  vpc_security_group_ids      = [aws_security_group.node.id]
  associate_public_ip_address = true
  tags                        = local.tags
}
