terraform {
  required_version = ">= 1.5"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = "~> 6.0"
    }
  }
}

# No provider block: the tenancy, user, key and region come from the provider's own
# configuration (the environment or an OCI config file), which the panel provides.
