# --- Cluster ---------------------------------------------------------------

variable "name" {
  description = "Cluster name. Nodes are named NAME-1..NAME-N, the load balancer answers as NAME.<zone>, and vaultops.yaml gets cluster.name = NAME."
  type        = string
  default     = "vault"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.name))
    error_message = "name must be 1-24 characters of lowercase letters, digits and dashes, starting with a letter (it becomes DNS labels and AWS resource names)."
  }
}

variable "product" {
  description = "Which server the AMI carries: \"openbao\" (binary bao, unit openbao.service) or \"vault\" (binary vault, unit vault.service). Chooses config paths and the systemd unit."
  type        = string
  default     = "openbao"

  validation {
    condition     = contains(["openbao", "vault"], var.product)
    error_message = "product must be \"openbao\" or \"vault\"."
  }
}

variable "node_count" {
  description = "Number of Raft nodes. Must be odd (3 or 5 in practice) so that a quorum survives the loss of (N-1)/2 nodes."
  type        = number
  default     = 3

  validation {
    condition     = var.node_count >= 1 && var.node_count <= 7 && var.node_count % 2 == 1
    error_message = "node_count must be an odd number between 1 and 7."
  }
}

variable "ami_id" {
  description = "AMI baked separately (Packer or similar) with the OpenBao/Vault binary, its systemd unit and its service user. Changes are ignored on existing nodes: replace one node at a time (see README)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  description = "EC2 instance type of every node."
  type        = string
  default     = "m6i.large"
}

variable "key_name" {
  description = "Optional EC2 key pair for SSH, which vaultops' ssh driver uses to reach the nodes. Null when keys come from the AMI or from an SSH CA."
  type        = string
  default     = null
}

variable "ssh_user" {
  description = "Login user on the nodes that vaultops' ssh driver connects as (written into vaultops.yaml)."
  type        = string
  default     = "ec2-user"
}

variable "api_port" {
  description = "Port of the HTTPS API listener on every node and on the load balancer."
  type        = number
  default     = 8200
}

variable "cluster_port" {
  description = "Port of the Raft/cluster listener (node-to-node mTLS), reachable only between nodes."
  type        = number
  default     = 8201
}

# --- Network ---------------------------------------------------------------

variable "vpc_id" {
  description = "VPC that holds the nodes and the load balancer."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per availability zone. Node i goes into subnet i modulo the count, so 3 subnets spread 3 nodes over 3 AZs. The load balancer gets one address in each."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Give at least two subnets in different availability zones."
  }
}

variable "api_allowed_cidrs" {
  description = "CIDR ranges of clients allowed to reach the API through the load balancer (TCP api_port)."
  type        = list(string)
}

variable "operator_cidrs" {
  description = "CIDR ranges where vaultops runs. They reach every node directly on api_port (health, unseal, snapshots) and on SSH port 22 (ssh driver)."
  type        = list(string)
}

variable "lb_internal" {
  description = "Whether the Network Load Balancer is internal (true, the default) or internet-facing."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the load balancer and the instances against deletion and termination. Set false only to tear a test cluster down."
  type        = bool
  default     = true
}

# --- Storage ---------------------------------------------------------------

variable "raft_volume_size_gb" {
  description = "Size in GiB of each node's encrypted gp3 volume that holds Raft data. It is a separate volume so that replacing an instance (new AMI) keeps the data."
  type        = number
  default     = 50
}

variable "raft_volume_iops" {
  description = "Provisioned IOPS of each Raft gp3 volume (3000 is the gp3 baseline)."
  type        = number
  default     = 3000
}

variable "root_volume_size_gb" {
  description = "Size in GiB of each node's encrypted root volume."
  type        = number
  default     = 20
}

# --- DNS and TLS -----------------------------------------------------------

variable "route53_zone_id" {
  description = "Route53 hosted zone for the node records, the load balancer record and the ACME DNS-01 challenges vaultops answers."
  type        = string
}

variable "extra_tls_names" {
  description = "Further DNS names (inside the zone) that certificates may carry; vaultops may answer DNS-01 challenges for them too."
  type        = list(string)
  default     = []
}

variable "acme_directory" {
  description = "ACME directory vaultops gets the nodes' certificates from: \"production\" or \"staging\" (Let's Encrypt) or an https:// directory URL. Written into vaultops.yaml as tls.acme.directory."
  type        = string
  default     = "production"

  validation {
    condition     = contains(["production", "staging"], var.acme_directory) || startswith(var.acme_directory, "https://")
    error_message = "acme_directory must be production, staging or an https:// URL."
  }
}

variable "tls_ca_bundle" {
  description = "Path on the nodes of the CA bundle that verifies the other nodes' certificates during retry_join. The default is the system bundle, which trusts publicly issued ACME certificates."
  type        = string
  default     = "/etc/pki/tls/certs/ca-bundle.crt"
}

# --- Keys and backups ------------------------------------------------------

variable "create_kms_key" {
  description = "Create a customer-managed KMS key (with rotation) for auto-unseal, EBS, and backup encryption. When false, kms_key_arn is used if set, else AWS-managed keys and Shamir seal."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Existing KMS key ARN to use when create_kms_key is false. Null for AWS-managed keys."
  type        = string
  default     = null
}

variable "auto_unseal" {
  description = "Use the KMS key for auto-unseal (seal \"awskms\"; on OpenBao >= 2.7 through the KMS plugin, see server_version). When false the cluster uses Shamir shares, which vaultops' unseal ceremony handles."
  type        = bool
  default     = false
}

variable "server_version" {
  description = "Server version the AMI carries (X.Y.Z). It decides the auto-unseal form: OpenBao 2.7.0 and later no longer build in the awskms seal, so the module installs the KMS plugin (openbao-plugin-kms-aws) and writes a plugin \"kms\" stanza; older OpenBao and HashiCorp Vault get the built-in seal \"awskms\" stanza."
  type        = string
  default     = "2.7.2"

  validation {
    condition     = can(regex("^v?[0-9]+\\.[0-9]+\\.[0-9]+", var.server_version))
    error_message = "server_version must start with X.Y.Z, e.g. 2.7.2."
  }
}

variable "kms_plugin_sha256" {
  description = "SHA-256 (hex) of the openbao-plugin-kms-aws binary for OpenBao >= 2.7 with auto_unseal. OpenBao refuses a plugin whose binary does not match; cloud-init checks it before the server starts."
  type        = string
  default     = null

  validation {
    condition     = var.kms_plugin_sha256 == null || can(regex("^[0-9a-f]{64}$", var.kms_plugin_sha256))
    error_message = "kms_plugin_sha256 must be 64 lowercase hex digits."
  }
}

variable "kms_plugin_url" {
  description = "HTTPS URL cloud-init downloads the openbao-plugin-kms-aws binary from (a release asset of openbao/openbao-plugins, or your mirror). Null when the AMI already carries it in the plugin directory; either way its SHA-256 is checked against kms_plugin_sha256."
  type        = string
  default     = null

  validation {
    condition     = var.kms_plugin_url == null || can(regex("^https://", var.kms_plugin_url))
    error_message = "kms_plugin_url must be an https:// URL."
  }
}

variable "kms_admin_arns" {
  description = "IAM principals allowed to administer (not use) the created KMS key, in addition to the account root."
  type        = list(string)
  default     = []
}

variable "backup_bucket_name" {
  description = "Name of the S3 bucket for Raft snapshots. Null to derive NAME-snapshots-ACCOUNT-REGION."
  type        = string
  default     = null
}

variable "backup_prefix" {
  description = "Key prefix under which vaultops writes snapshots. vaultops' IAM policy only reaches this prefix."
  type        = string
  default     = "snapshots/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()/-]+/$", var.backup_prefix)) && !startswith(var.backup_prefix, "/")
    error_message = "backup_prefix must be a relative key prefix ending in \"/\", e.g. \"snapshots/\"."
  }
}

variable "backup_retention_days" {
  description = "Days vaultops keeps snapshots (its retention pruning): set vaultops' retention to match; the value is in the vaultops output and noted in the generated vaultops.yaml. The bucket keeps what vaultops deleted as noncurrent versions for backup_noncurrent_days more."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_days >= 1
    error_message = "backup_retention_days must be at least 1."
  }
}

variable "backup_noncurrent_days" {
  description = "Days the bucket keeps snapshot versions that vaultops pruned (or overwrote) before lifecycle deletes them: an undo window for a mistaken prune."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_noncurrent_days >= 1
    error_message = "backup_noncurrent_days must be at least 1."
  }
}

variable "backup_max_age_days" {
  description = "Optional hard cap: lifecycle expires snapshots older than this even if vaultops never pruned them. Null (default) leaves pruning to vaultops, so that old snapshots survive a long outage. Must exceed backup_retention_days."
  type        = number
  default     = null

  validation {
    condition     = var.backup_max_age_days == null ? true : var.backup_max_age_days >= 1
    error_message = "backup_max_age_days must be null or at least 1."
  }
}

variable "backup_object_lock" {
  description = "Object Lock for the backup bucket (can only be turned on when the bucket is created). mode is GOVERNANCE or COMPLIANCE; days is the default retention of each snapshot version."
  type = object({
    enabled = bool
    mode    = optional(string, "GOVERNANCE")
    days    = optional(number, 7)
  })
  default = {
    enabled = false
  }

  validation {
    condition     = contains(["GOVERNANCE", "COMPLIANCE"], var.backup_object_lock.mode)
    error_message = "backup_object_lock.mode must be GOVERNANCE or COMPLIANCE."
  }
}

variable "backup_access_log_bucket" {
  description = "Bucket that receives S3 server access logs of the backup bucket (who read or deleted snapshots)."
  type        = string
}

variable "force_destroy_backups" {
  description = "Allow terraform destroy to delete a backup bucket that still holds snapshots. Keep false outside test accounts."
  type        = bool
  default     = false
}

# --- IAM for vaultops ------------------------------------------------------

variable "vaultops_principal_arns" {
  description = "IAM principals (operators' roles, a CI role) allowed to assume the vaultops role. Empty: the role is not created and only the policy is (attach it yourself)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
