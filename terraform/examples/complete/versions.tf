terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # Keep state remote and locked; the state holds node addresses and ARNs.
  # backend "s3" {
  #   bucket       = "example-terraform-state"
  #   key          = "vault/prod.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project     = "vault"
      environment = var.environment
    }
  }
}
