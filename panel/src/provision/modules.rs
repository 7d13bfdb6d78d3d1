//! The Terraform modules of `terraform/` (one per provider), built into the panel so a
//! run needs nothing but this binary and `terraform`; and the root module a run wraps
//! around one: the panel's http state backend and the module's variables and outputs.

/// A module's files, by name.
pub type Files = &'static [(&'static str, &'static str)];

macro_rules! module {
    ($dir:literal) => {
        &[
            (
                "main.tf",
                include_str!(concat!("../../../terraform/", $dir, "/main.tf")),
            ),
            (
                "variables.tf",
                include_str!(concat!("../../../terraform/", $dir, "/variables.tf")),
            ),
            (
                "outputs.tf",
                include_str!(concat!("../../../terraform/", $dir, "/outputs.tf")),
            ),
            (
                "versions.tf",
                include_str!(concat!("../../../terraform/", $dir, "/versions.tf")),
            ),
        ]
    };
}

/// The module of `provider`, if there is one.
#[must_use]
pub fn module(provider: &str) -> Option<Files> {
    match provider {
        "hetzner" => Some(module!("hetzner")),
        "aws" => Some(module!("aws")),
        "gcp" => Some(module!("gcp")),
        "oci" => Some(module!("oci")),
        _ => None,
    }
}

/// The variables every module takes (see `terraform/README.md`).
pub const VARIABLES: &[&str] = &[
    "name",
    "region",
    "instance_type",
    "image",
    "ssh_keys",
    "user_data",
    "labels",
    "firewall_rules",
];

/// The outputs every module gives.
pub const OUTPUTS: &[&str] = &["server_id", "ipv4", "ipv6"];

/// Quotes `s` as an HCL string.
fn hcl_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' => out.push_str("$$"),
            '%' => out.push_str("%%"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The root module of a run: state in the panel (`state_url`, locked on the same URL's
/// `/lock`; the credential comes from the environment), the variables passed to the
/// provider's module (the user data marked sensitive: it holds a registration token),
/// and its outputs. `ca_pem`: the panel's own CA, when it signs its certificate.
#[must_use]
pub fn root(state_url: &str, ca_pem: Option<&str>) -> String {
    let mut tf = String::from("terraform {\n  backend \"http\" {\n");
    tf.push_str(&format!("    address        = {}\n", hcl_string(state_url)));
    let lock = format!("{state_url}/lock");
    tf.push_str(&format!("    lock_address   = {}\n", hcl_string(&lock)));
    tf.push_str(&format!("    unlock_address = {}\n", hcl_string(&lock)));
    tf.push_str("    lock_method    = \"POST\"\n    unlock_method  = \"DELETE\"\n");
    if let Some(pem) = ca_pem {
        tf.push_str(&format!(
            "    client_ca_certificate_pem = {}\n",
            hcl_string(pem)
        ));
    }
    tf.push_str("  }\n}\n\n");
    for v in VARIABLES {
        if *v == "user_data" {
            tf.push_str(&format!("variable \"{v}\" {{\n  sensitive = true\n}}\n"));
        } else {
            tf.push_str(&format!("variable \"{v}\" {{}}\n"));
        }
    }
    tf.push_str("\nmodule \"node\" {\n  source = \"./module\"\n");
    for v in VARIABLES {
        tf.push_str(&format!("  {v} = var.{v}\n"));
    }
    tf.push_str("}\n\n");
    for o in OUTPUTS {
        tf.push_str(&format!(
            "output \"{o}\" {{\n  value = module.node.{o}\n}}\n"
        ));
    }
    tf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_for_hcl() {
        assert_eq!(
            hcl_string("a\"b\\c\n${x}%{y}"),
            "\"a\\\"b\\\\c\\n$${x}%%{y}\""
        );
    }

    #[test]
    fn every_provider_with_a_module_has_its_files() {
        for p in ["hetzner", "aws", "gcp", "oci"] {
            let files = module(p).expect("module");
            assert_eq!(files.len(), 4, "{p}");
            for (name, text) in files {
                assert!(!text.trim().is_empty(), "{p}/{name} is empty");
            }
        }
        assert!(module("cloudflare").is_none());
    }

    #[test]
    fn the_root_passes_every_variable_and_output() {
        let tf = root("http://127.0.0.1:1/v1/provision/x/state", None);
        for v in VARIABLES {
            assert!(tf.contains(&format!("{v} = var.{v}")), "{v}");
        }
        for o in OUTPUTS {
            assert!(tf.contains(&format!("module.node.{o}")), "{o}");
        }
        assert!(tf.contains("lock_address   = \"http://127.0.0.1:1/v1/provision/x/state/lock\""));
    }
}
