# The snapshot bucket. vaultops decides which snapshots to keep (its
# retention); the bucket makes that reversible and bounded:
#  - versioning turns a prune or overwrite into a noncurrent version,
#  - lifecycle deletes noncurrent versions after backup_noncurrent_days,
#  - current snapshots never expire by default (a long outage must not eat
#    the last good backups); backup_max_age_days adds a hard cap if wanted,
#  - optional Object Lock keeps every version for a minimum time.

locals {
  backup_bucket_name = coalesce(var.backup_bucket_name, "${var.name}-snapshots-${local.account_id}-${local.region}")
}

resource "aws_s3_bucket" "backup" {
  #checkov:skip=CKV_AWS_144:Cross-region replication needs a second bucket and key in another region, an organisation-level choice; vaultops can write a second S3 sink in another region instead, and verifies each copy.
  bucket              = local.backup_bucket_name
  force_destroy       = var.force_destroy_backups
  object_lock_enabled = var.backup_object_lock.enabled
  tags                = merge(local.tags, { Name = local.backup_bucket_name })
}

resource "aws_s3_bucket_public_access_block" "backup" {
  bucket                  = aws_s3_bucket.backup.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "backup" {
  bucket = aws_s3_bucket.backup.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_key_arn # null: the AWS-managed aws/s3 key
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "backup" {
  bucket        = aws_s3_bucket.backup.id
  target_bucket = var.backup_access_log_bucket
  target_prefix = "s3/${local.backup_bucket_name}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    id     = "vaultops-snapshots"
    status = "Enabled"

    filter {
      prefix = var.backup_prefix
    }

    noncurrent_version_expiration {
      noncurrent_days = var.backup_noncurrent_days
    }

    dynamic "expiration" {
      for_each = var.backup_max_age_days == null ? [] : [var.backup_max_age_days]
      content {
        days = expiration.value
      }
    }
  }

  rule {
    id     = "expired-delete-markers"
    status = "Enabled"

    filter {
      prefix = var.backup_prefix
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  # Whole bucket: a killed upload (vaultops interrupted) leaves parts that cost
  # money and are never readable.
  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  lifecycle {
    precondition {
      condition     = var.backup_max_age_days == null ? true : var.backup_max_age_days > var.backup_retention_days
      error_message = "backup_max_age_days must be greater than backup_retention_days, or lifecycle would cut vaultops' retention short."
    }
  }

  depends_on = [aws_s3_bucket_versioning.backup]
}

resource "aws_s3_bucket_object_lock_configuration" "backup" {
  count  = var.backup_object_lock.enabled ? 1 : 0
  bucket = aws_s3_bucket.backup.id

  rule {
    default_retention {
      mode = var.backup_object_lock.mode
      days = var.backup_object_lock.days
    }
  }

  depends_on = [aws_s3_bucket_versioning.backup]
}

# EventBridge receives every object event, so monitoring can alert when no
# new snapshot arrived in time (a silent backup failure).
resource "aws_s3_bucket_notification" "backup" {
  bucket      = aws_s3_bucket.backup.id
  eventbridge = true
}

data "aws_iam_policy_document" "backup_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.backup.arn, "${aws_s3_bucket.backup.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyUnencryptedUploads"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.backup.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
    condition {
      test     = "Null"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "backup" {
  bucket = aws_s3_bucket.backup.id
  policy = data.aws_iam_policy_document.backup_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.backup]
}
