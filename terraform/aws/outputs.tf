output "server_id" {
  description = "The provider's id of the server (the EC2 instance id)."
  value       = aws_instance.node.id
}

output "ipv4" {
  description = "The server's public IPv4 address."
  value       = aws_instance.node.public_ip
}

output "ipv6" {
  description = "The server's public IPv6 address (null when its subnet has none)."
  value       = try(aws_instance.node.ipv6_addresses[0], null)
}
