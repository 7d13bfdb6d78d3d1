output "server_id" {
  description = "The provider's id of the server (the instance OCID)."
  value       = oci_core_instance.node.id
}

output "ipv4" {
  description = "The server's public IPv4 address."
  value       = oci_core_instance.node.public_ip
}

output "ipv6" {
  description = "The server's public IPv6 address: null, the module gives the VNIC no IPv6."
  value       = null
}
