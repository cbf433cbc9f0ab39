# Two identities:
#  - the nodes: only the KMS key (auto-unseal) when auto_unseal is on;
#  - vaultops: snapshots under the backup prefix, ACME DNS-01 TXT records
#    under _acme-challenge in the zone, and the key for SSE-KMS.

# --- Nodes -------------------------------------------------------------------

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name_prefix        = "${var.name}-node-"
  description        = "${var.name} nodes (EC2 instance profile)"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
  tags               = local.tags
}

resource "aws_iam_instance_profile" "node" {
  name_prefix = "${var.name}-node-"
  role        = aws_iam_role.node.name
  tags        = local.tags
}

data "aws_iam_policy_document" "node_unseal" {
  count = var.auto_unseal ? 1 : 0

  statement {
    sid       = "AutoUnseal"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
    resources = [local.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "node_unseal" {
  count  = var.auto_unseal ? 1 : 0
  name   = "auto-unseal"
  role   = aws_iam_role.node.id
  policy = data.aws_iam_policy_document.node_unseal[0].json
}

# --- vaultops ----------------------------------------------------------------

locals {
  backup_objects_arn = "${aws_s3_bucket.backup.arn}/${var.backup_prefix}*"
  zone_arn           = "arn:${local.partition}:route53:::hostedzone/${var.route53_zone_id}"
  # Route53 normalises names: lower case, no trailing dot.
  acme_challenge_names = [for n in local.tls_names : lower("_acme-challenge.${trimsuffix(n, ".")}")]
}

data "aws_iam_policy_document" "vaultops" {
  statement {
    sid       = "ListSnapshotsUnderPrefix"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
    resources = [aws_s3_bucket.backup.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.backup_prefix, "${var.backup_prefix}*"]
    }
  }

  statement {
    sid = "ReadWriteSnapshots"
    actions = [
      "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectAttributes", "s3:PutObject",
      "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = [local.backup_objects_arn]
  }

  statement {
    sid       = "AcmeChallengeRecordsOnly"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = [local.zone_arn]

    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values   = local.acme_challenge_names
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsRecordTypes"
      values   = ["TXT"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsActions"
      values   = ["CREATE", "UPSERT", "DELETE"]
    }
  }

  statement {
    sid       = "ReadZone"
    actions   = ["route53:GetHostedZone", "route53:ListResourceRecordSets"]
    resources = [local.zone_arn]
  }

  statement {
    sid       = "WaitForChange"
    actions   = ["route53:GetChange"]
    resources = ["arn:${local.partition}:route53:::change/*"]
  }

  dynamic "statement" {
    for_each = local.kms_key_arn == null ? [] : [local.kms_key_arn]
    content {
      sid       = "SnapshotEncryptionViaS3"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_policy" "vaultops" {
  name_prefix = "${var.name}-vaultops-"
  description = "vaultops for ${var.name}: snapshots under s3://${aws_s3_bucket.backup.id}/${var.backup_prefix}, _acme-challenge TXT records in ${local.zone_name}"
  policy      = data.aws_iam_policy_document.vaultops.json
  tags        = local.tags
}

data "aws_iam_policy_document" "vaultops_assume" {
  count = length(var.vaultops_principal_arns) > 0 ? 1 : 0

  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "AWS"
      identifiers = var.vaultops_principal_arns
    }
  }
}

resource "aws_iam_role" "vaultops" {
  count                = length(var.vaultops_principal_arns) > 0 ? 1 : 0
  name_prefix          = "${var.name}-vaultops-"
  description          = "Assumed by operators running vaultops against ${var.name}"
  assume_role_policy   = data.aws_iam_policy_document.vaultops_assume[0].json
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy_attachment" "vaultops" {
  count      = length(var.vaultops_principal_arns) > 0 ? 1 : 0
  role       = aws_iam_role.vaultops[0].name
  policy_arn = aws_iam_policy.vaultops.arn
}
