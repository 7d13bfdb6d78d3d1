terraform {
  required_version = ">= 1.5"

  required_providers {
    hcloud = {
      source  = "hetznercloud/hcloud"
      version = "~> 1.49"
    }
  }
}

# No provider block: the provider reads its token from HCLOUD_TOKEN and its API
# endpoint from HCLOUD_ENDPOINT, which the panel sets for each run.
