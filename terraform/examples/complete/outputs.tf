output "vaultops" {
  description = "Input of `vaultops config from-terraform`: terraform output -json > tf.json && vaultops config from-terraform tf.json"
  value       = module.vault.vaultops
}

output "api_address" {
  description = "Client address of the cluster (through the load balancer)."
  value       = module.vault.api_address
}

output "node_instance_ids" {
  description = "Node name to instance id, for replacing one node at a time."
  value       = module.vault.node_instance_ids
}

output "vaultops_role_arn" {
  description = "Role the operators assume before running vaultops."
  value       = module.vault.vaultops_role_arn
}
