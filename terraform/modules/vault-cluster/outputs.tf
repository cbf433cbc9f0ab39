# "vaultops" is the one output `vaultops config from-terraform` reads; the
# others are for people and for other Terraform code.

output "vaultops" {
  description = "Everything vaultops needs, as one object (schema 1). Re-export it from the root module as output \"vaultops\", then run: terraform output -json > tf.json && vaultops config from-terraform tf.json"
  value = {
    schema        = 1
    cluster_name  = var.name
    product       = var.product
    storage       = "raft"
    api_port      = var.api_port
    load_balancer = local.lb_fqdn
    region        = local.region
    ssh_user      = var.ssh_user
    auto_unseal   = var.auto_unseal
    nodes = [
      for name in local.node_names : {
        name              = name
        fqdn              = local.nodes[name].fqdn
        private_ip        = aws_instance.node[name].private_ip
        instance_id       = aws_instance.node[name].id
        availability_zone = local.nodes[name].az
      }
    ]
    backup = {
      bucket         = aws_s3_bucket.backup.id
      prefix         = var.backup_prefix
      region         = local.region
      kms_key_id     = local.kms_key_arn
      retention_days = var.backup_retention_days
      object_lock    = var.backup_object_lock.enabled
    }
    dns = {
      provider       = "route53"
      hosted_zone_id = var.route53_zone_id
      zone_name      = local.zone_name
    }
    tls = {
      cert_file      = "${local.product.tls_dir}/tls.crt"
      key_file       = "${local.product.tls_dir}/tls.key"
      owner          = local.product.user # the server reads its key as this user
      group          = local.product.user
      extra_names    = var.extra_tls_names
      acme_directory = var.acme_directory
    }
    vaultops_role_arn = try(aws_iam_role.vaultops[0].arn, null)
    # What the upgrade preflight checks on each node: the server's HCL file (read through the ssh
    # driver) and the seal form written into it.
    server_config_file = "${local.product.config_dir}/${local.product.unit}.hcl"
    seal = {
      type             = var.auto_unseal ? "awskms" : "shamir"
      form             = !var.auto_unseal ? "shamir" : (local.kms_plugin_form ? "plugin" : "builtin")
      server_version   = var.server_version
      plugin_command   = local.kms_plugin_form ? local.kms_plugin.command : null
      plugin_directory = local.kms_plugin_form ? local.product.plugin_dir : null
    }
  }
}

output "api_address" {
  description = "Client address of the cluster: the load balancer's DNS name with https and the API port."
  value       = "https://${local.lb_fqdn}:${var.api_port}"
}

output "node_addresses" {
  description = "Map of node name to its own API address (https://NODE.<zone>:PORT), as vaultops addresses each node."
  value       = { for name, node in local.nodes : name => "https://${node.fqdn}:${var.api_port}" }
}

output "node_instance_ids" {
  description = "Map of node name to EC2 instance id, for terraform apply -replace during an AMI roll."
  value       = { for name, inst in aws_instance.node : name => inst.id }
}

output "lb_dns_name" {
  description = "AWS DNS name of the Network Load Balancer (the Route53 alias points at it)."
  value       = aws_lb.api.dns_name
}

output "backup_bucket" {
  description = "Name of the S3 bucket that holds Raft snapshots."
  value       = aws_s3_bucket.backup.id
}

output "backup_prefix" {
  description = "Key prefix of the snapshots inside the backup bucket."
  value       = var.backup_prefix
}

output "kms_key_arn" {
  description = "ARN of the KMS key used for auto-unseal, volumes and snapshots, or null when AWS-managed keys are used."
  value       = local.kms_key_arn
}

output "vaultops_policy_arn" {
  description = "ARN of the least-privilege IAM policy for vaultops (attach it to your own role if vaultops_principal_arns is empty)."
  value       = aws_iam_policy.vaultops.arn
}

output "vaultops_role_arn" {
  description = "ARN of the role operators assume to run vaultops, or null when vaultops_principal_arns is empty."
  value       = try(aws_iam_role.vaultops[0].arn, null)
}

output "node_role_arn" {
  description = "ARN of the nodes' IAM role (instance profile)."
  value       = aws_iam_role.node.arn
}
