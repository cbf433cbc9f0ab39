variable "region" {
  description = "AWS region of the cluster."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Environment name, used only as a tag."
  type        = string
  default     = "prod"
}

variable "ami_id" {
  description = "AMI with OpenBao baked in (built by the separate image pipeline)."
  type        = string
}

variable "vpc_id" {
  description = "Existing VPC for the cluster."
  type        = string
}

variable "private_subnet_ids" {
  description = "Three private subnets in three availability zones."
  type        = list(string)
}

variable "api_allowed_cidrs" {
  description = "Client networks allowed to reach the API through the load balancer."
  type        = list(string)
}

variable "operator_cidrs" {
  description = "Networks where operators run vaultops (direct node access: API and SSH)."
  type        = list(string)
}

variable "key_name" {
  description = "EC2 key pair for the ssh driver, or null when the AMI trusts an SSH CA."
  type        = string
  default     = null
}

variable "route53_zone_id" {
  description = "Hosted zone for node names, the API name and ACME DNS-01 challenges."
  type        = string
}

variable "kms_admin_arns" {
  description = "Principals that administer the cluster's KMS key."
  type        = list(string)
  default     = []
}

variable "access_log_bucket" {
  description = "Central bucket for S3 server access logs."
  type        = string
}

variable "operator_role_arns" {
  description = "Operators' IAM roles allowed to assume the vaultops role."
  type        = list(string)
  default     = []
}
