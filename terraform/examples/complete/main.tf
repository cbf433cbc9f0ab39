# A production-shaped cluster in an existing VPC: 3 OpenBao nodes over 3 AZs,
# an internal NLB, Shamir seal (vaultops runs the unseal ceremony), a KMS key
# for volumes and snapshots, and a vaultops role for the operators.

module "vault" {
  source = "../../modules/vault-cluster"

  name       = "vault"
  product    = "openbao"
  node_count = 3
  ami_id     = var.ami_id

  vpc_id            = var.vpc_id
  subnet_ids        = var.private_subnet_ids
  api_allowed_cidrs = var.api_allowed_cidrs
  operator_cidrs    = var.operator_cidrs
  key_name          = var.key_name
  ssh_user          = "ec2-user"

  route53_zone_id = var.route53_zone_id

  create_kms_key = true
  auto_unseal    = false
  kms_admin_arns = var.kms_admin_arns

  backup_prefix            = "snapshots/"
  backup_retention_days    = 30
  backup_noncurrent_days   = 14
  backup_access_log_bucket = var.access_log_bucket
  backup_object_lock = {
    enabled = true
    mode    = "GOVERNANCE"
    days    = 7
  }

  vaultops_principal_arns = var.operator_role_arns

  tags = {
    owner = "platform-security"
  }
}
