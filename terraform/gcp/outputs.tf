output "server_id" {
  description = "The provider's id of the server (the instance id)."
  value       = google_compute_instance.node.instance_id
}

output "ipv4" {
  description = "The server's public IPv4 address."
  value       = google_compute_instance.node.network_interface[0].access_config[0].nat_ip
}

output "ipv6" {
  description = "The server's public IPv6 address (null on the IPv4-only default network)."
  value       = try(google_compute_instance.node.network_interface[0].ipv6_access_config[0].external_ipv6, null)
}
