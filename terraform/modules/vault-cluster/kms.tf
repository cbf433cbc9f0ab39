# Optional customer-managed key: auto-unseal (seal "awskms"), EBS volumes,
# and SSE-KMS of the backup bucket. The key policy delegates to IAM, so the
# node role and the vaultops policy below decide who may use it.

resource "aws_kms_key" "this" {
  count                   = var.create_kms_key ? 1 : 0
  description             = "${var.name}: auto-unseal, Raft volumes and snapshot encryption"
  key_usage               = "ENCRYPT_DECRYPT"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = merge(local.tags, { Name = "${var.name}-kms" })
}

resource "aws_kms_alias" "this" {
  count         = var.create_kms_key ? 1 : 0
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

data "aws_iam_policy_document" "kms" {
  # This document is a KEY policy, not an IAM policy: there "Resource" = "*"
  # means this key only, and the account statement is AWS's default key policy.
  #checkov:skip=CKV_AWS_109:Key policy: the account-root statement only delegates to IAM (AWS default key policy); the IAM policies in iam.tf grant least privilege. Without it the key becomes unmanageable.
  #checkov:skip=CKV_AWS_111:Key policy: "*" resources mean this key only; write access is granted per principal by the IAM policies in iam.tf.
  #checkov:skip=CKV_AWS_356:Key policy: "*" is the only valid Resource in a KMS key policy and denotes this key.
  statement {
    sid       = "AccountDelegatesToIAM"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  dynamic "statement" {
    for_each = length(var.kms_admin_arns) > 0 ? [1] : []
    content {
      sid = "KeyAdministrators"
      actions = [
        "kms:Describe*", "kms:Get*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Enable*",
        "kms:Disable*", "kms:Revoke*", "kms:TagResource", "kms:UntagResource",
        "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
      ]
      resources = ["*"]

      principals {
        type        = "AWS"
        identifiers = var.kms_admin_arns
      }
    }
  }
}
