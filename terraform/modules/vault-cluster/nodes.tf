# One instance per node plus a separate encrypted volume for Raft data, so an
# instance can be replaced with a new AMI while its Raft state stays.

resource "aws_ebs_volume" "raft" {
  for_each          = local.nodes
  availability_zone = each.value.az
  type              = "gp3"
  size              = var.raft_volume_size_gb
  iops              = var.raft_volume_iops
  encrypted         = true
  kms_key_id        = local.kms_key_arn
  tags              = merge(local.tags, { Name = "${each.key}-raft", "vaultops:node" = each.key })
}

resource "aws_instance" "node" {
  for_each               = local.nodes
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = each.value.subnet_id
  key_name               = var.key_name
  iam_instance_profile   = aws_iam_instance_profile.node.name
  vpc_security_group_ids = [aws_security_group.node.id]

  associate_public_ip_address = false
  ebs_optimized               = true
  monitoring                  = true
  disable_api_termination     = var.deletion_protection

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size_gb
    encrypted             = true
    kms_key_id            = local.kms_key_arn
    delete_on_termination = true
    tags                  = merge(local.tags, { Name = "${each.key}-root", "vaultops:node" = each.key })
  }

  user_data_replace_on_change = false
  user_data = templatefile("${path.module}/templates/user_data.sh.tftpl", {
    node_name      = each.key
    raft_volume_id = aws_ebs_volume.raft[each.key].id
    data_dir       = local.product.data_dir
    config_dir     = local.product.config_dir
    tls_dir        = local.product.tls_dir
    service_user   = local.product.user
    service_unit   = local.product.unit
    plugin_dir     = local.product.plugin_dir
    kms_plugin_form    = local.kms_plugin_form
    kms_plugin_command = local.kms_plugin.command
    kms_plugin_sha256  = var.kms_plugin_sha256 == null ? "" : var.kms_plugin_sha256
    kms_plugin_url     = var.kms_plugin_url == null ? "" : var.kms_plugin_url
    fqdn           = each.value.fqdn
    lb_fqdn        = local.lb_fqdn
    server_config = templatefile("${path.module}/templates/server.hcl.tftpl", {
      cluster_name  = var.name
      node_name     = each.key
      fqdn          = each.value.fqdn
      api_port      = var.api_port
      cluster_port  = var.cluster_port
      data_dir      = local.product.data_dir
      tls_dir       = local.product.tls_dir
      tls_ca_bundle = var.tls_ca_bundle
      peers         = [for name, node in local.nodes : node.fqdn if name != each.key]
      auto_unseal   = var.auto_unseal
      kms_key_arn   = local.kms_key_arn == null ? "" : local.kms_key_arn # templates cannot print null
      region        = local.region
      # OpenBao >= 2.7 with auto_unseal: the KMS plugin form (see main.tf)
      kms_plugin_form    = local.kms_plugin_form
      plugin_dir         = local.product.plugin_dir
      kms_plugin_name    = local.kms_plugin.name
      kms_plugin_command = local.kms_plugin.command
      kms_plugin_sha256  = var.kms_plugin_sha256 == null ? "" : var.kms_plugin_sha256
    })
  })

  lifecycle {
    # New AMIs roll out one node at a time (terraform apply -replace=...),
    # coordinated with vaultops' rolling upgrade, never all at once.
    ignore_changes = [ami, user_data]

    precondition {
      condition     = !var.auto_unseal || local.kms_key_arn != null
      error_message = "auto_unseal needs a KMS key: set create_kms_key = true or pass kms_key_arn."
    }

    precondition {
      condition     = !local.kms_plugin_form || var.kms_plugin_sha256 != null
      error_message = "OpenBao >= 2.7 has no built-in awskms seal: auto_unseal needs the KMS plugin. Set kms_plugin_sha256 (and kms_plugin_url unless the AMI carries the binary in the plugin directory)."
    }
  }

  # No volume_tags: the Raft volume is tagged by its own resource.
  tags = merge(local.tags, { Name = each.key, "vaultops:node" = each.key })
}

resource "aws_volume_attachment" "raft" {
  for_each    = local.nodes
  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.raft[each.key].id
  instance_id = aws_instance.node[each.key].id

  # Stop the server cleanly before the volume goes, so Raft is not cut mid-write.
  stop_instance_before_detaching = true
}

resource "aws_route53_record" "node" {
  for_each = local.nodes
  zone_id  = var.route53_zone_id
  name     = each.value.fqdn
  type     = "A"
  ttl      = 60
  records  = [aws_instance.node[each.key].private_ip]
}
