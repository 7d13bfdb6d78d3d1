terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

# No provider block: credentials come from the environment (AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY) and the region from AWS_REGION, which the root module or
# the panel sets from var.region.
