data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

data "aws_route53_zone" "this" {
  zone_id = var.route53_zone_id
}

data "aws_subnet" "node" {
  for_each = toset(var.subnet_ids)
  id       = each.value
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  zone_name  = trimsuffix(data.aws_route53_zone.this.name, ".")

  # Stable node names: NAME-1..NAME-N. Keys of every per-node resource, so one
  # node can be replaced (-replace=...["vault-2"]) without touching the others.
  node_names = [for i in range(var.node_count) : "${var.name}-${i + 1}"]
  nodes = {
    for i, node in local.node_names : node => {
      index     = i
      fqdn      = "${node}.${local.zone_name}"
      subnet_id = var.subnet_ids[i % length(var.subnet_ids)]
      az        = data.aws_subnet.node[var.subnet_ids[i % length(var.subnet_ids)]].availability_zone
    }
  }

  lb_fqdn   = "${var.name}.${local.zone_name}"
  tls_names = distinct(concat([local.lb_fqdn], [for n in local.nodes : n.fqdn], var.extra_tls_names))

  kms_key_arn = var.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn

  # OpenBao 2.7.0 removed the built-in awskms seal: from then on auto-unseal is a KMS plugin
  # (binary in the plugin directory + plugin "kms" "awskms" stanza, read since 2.6.0). vaultops'
  # upgrade preflight reads the same stanzas on each node (services/upgrade/releases_known.py).
  server_semver   = [for part in split(".", regex("^v?([0-9]+\\.[0-9]+\\.[0-9]+)", var.server_version)[0]) : tonumber(part)]
  kms_plugin_form = var.auto_unseal && var.product == "openbao" && (local.server_semver[0] > 2 || (local.server_semver[0] == 2 && local.server_semver[1] >= 7))
  kms_plugin = {
    name    = "awskms"
    command = "openbao-plugin-kms-aws"
  }

  # Paths and unit names differ between the two products; the config is the same.
  product = {
    openbao = { config_dir = "/etc/openbao", data_dir = "/opt/openbao/data", tls_dir = "/opt/openbao/tls", plugin_dir = "/opt/openbao/plugins", user = "openbao", unit = "openbao" }
    vault   = { config_dir = "/etc/vault.d", data_dir = "/opt/vault/data", tls_dir = "/opt/vault/tls", plugin_dir = "/opt/vault/plugins", user = "vault", unit = "vault" }
  }[var.product]

  tags = merge(var.tags, {
    "vaultops:cluster" = var.name
    "managed-by"       = "terraform"
  })
}
