output "server_id" {
  description = "The provider's id of the server."
  value       = hcloud_server.node.id
}

output "ipv4" {
  description = "The server's public IPv4 address."
  value       = hcloud_server.node.ipv4_address
}

output "ipv6" {
  description = "The server's public IPv6 address (null when it has none)."
  value       = hcloud_server.node.ipv6_address
}
