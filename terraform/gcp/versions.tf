terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

# No provider block: credentials come from GOOGLE_APPLICATION_CREDENTIALS (or
# GOOGLE_CREDENTIALS) and the project from GOOGLE_PROJECT, set by the panel.
