variable "name" {
  description = "Name of the node: the server, its firewall and its keys are named after it."
  type        = string
}

variable "region" {
  description = "Where the node runs (a Hetzner location such as fsn1, an AWS region, a GCP zone, an OCI availability domain)."
  type        = string
}

variable "instance_type" {
  description = "The provider's machine size (Hetzner server type, EC2 instance type, GCE machine type, OCI shape)."
  type        = string
}

variable "image" {
  description = "The operating system image (Hetzner image name, AMI id, GCE image, OCI image OCID)."
  type        = string
}

variable "ssh_keys" {
  description = "OpenSSH public keys allowed to log in."
  type        = list(string)
  default     = []
}

variable "user_data" {
  description = "cloud-init user data run on first boot (installs and registers the Shardlyn agent)."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels (tags) put on every resource."
  type        = map(string)
  default     = {}
}

variable "firewall_rules" {
  description = "Inbound rules of the node's base firewall; everything else inbound is refused."
  type = list(object({
    protocol   = string
    port       = string
    source_ips = list(string)
  }))
  default = []
}
