//! The one-liner that installs the agent (shown in the Add node dialog and run by
//! cloud-init) and the `#cloud-config` user data of a provisioned node. The only secret
//! either holds is the single-use registration token.
//!
//! Against a panel with a self-signed CA, `curl https://PANEL/install-agent.sh` cannot
//! verify the panel, and a script fetched unverified could be anyone's: the one-liner
//! first fetches the CA, checks its SHA-256 against the fingerprint it carries, and
//! fetches the script through that CA only.

use std::fmt::Write as _;

/// The shell command that installs `shardlyn-agent` from `panel_url` and registers it
/// with `token`, pinning the self-signed CA of `ca_fingerprint` (`ab:cd:...`) when the
/// panel speaks https. Options appended to it reach the install script (`--root DIR`,
/// `--foreground`).
#[must_use]
pub fn install_command(panel_url: &str, token: &str, ca_fingerprint: Option<&str>) -> String {
    let panel = panel_url.trim_end_matches('/');
    let script = sh_quote(&format!("{panel}/install-agent.sh"));
    let token = sh_quote(token);
    match ca_fingerprint.filter(|_| panel.starts_with("https://")) {
        None => format!("curl -fsSL {script} | sh -s -- --token {token}"),
        Some(fp) => {
            let hex: String = fp
                .chars()
                .filter(char::is_ascii_hexdigit)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            let ca = sh_quote(&format!("{panel}/ca.pem"));
            let fp = sh_quote(fp);
            format!(
                "ca=$(mktemp) && curl -fsSLk -o \"$ca\" {ca} && \
                 {{ [ \"$(sed '/-----/d' \"$ca\" | base64 -d | sha256sum | cut -c1-64)\" = {hex} ] \
                 || {{ echo 'install-agent: the panel CA does not match the fingerprint: refusing' >&2; false; }}; }} && \
                 curl -fsSL --cacert \"$ca\" {script} | sh -s -- --token {token} --ca-fingerprint {fp}"
            )
        }
    }
}

/// The cloud-init user data of a node named `node_name` that joins the panel at
/// `panel_url` with the single-use `token`: installs curl and CA certificates, sets the
/// hostname (from the name, when it makes one) and runs [`install_command`].
#[must_use]
pub fn user_data(
    panel_url: &str,
    token: &str,
    ca_fingerprint: Option<&str>,
    node_name: &str,
) -> String {
    let mut doc = String::from("#cloud-config\n");
    let _ = writeln!(
        doc,
        "# Shardlyn: joins this machine to the panel at {} as node {}.",
        one_line(panel_url),
        one_line(node_name)
    );
    doc.push_str("# The registration token below works once and expires.\n");
    if let Some(host) = hostname(node_name) {
        let _ = writeln!(doc, "hostname: {}", yaml_str(&host));
        doc.push_str("preserve_hostname: false\n");
    }
    doc.push_str("package_update: true\npackages:\n  - curl\n  - ca-certificates\n");
    let _ = writeln!(
        doc,
        "runcmd:\n  - {}",
        yaml_str(&install_command(panel_url, token, ca_fingerprint))
    );
    doc
}

/// A YAML double-quoted scalar: JSON's string syntax is valid YAML and escapes all.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Text for a YAML comment: one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An RFC 1123 host label made from `name` (lowercase letters, digits and inner
/// hyphens, at most 63), or `None` when nothing is left.
#[must_use]
pub fn hostname(name: &str) -> Option<String> {
    let mut label = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            label.push(c);
        } else if !label.ends_with('-') && !label.is_empty() {
            label.push('-');
        }
    }
    label.truncate(63);
    let label = label.trim_end_matches('-').to_string();
    (!label.is_empty()).then_some(label)
}

/// `s` as one shell word: as is when it holds only safe characters, else single-quoted.
fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_a_bare_pipe() {
        assert_eq!(
            install_command("http://127.0.0.1:8080/", "shardlyn_reg_ab", None),
            "curl -fsSL http://127.0.0.1:8080/install-agent.sh | sh -s -- --token shardlyn_reg_ab"
        );
    }

    #[test]
    fn a_self_signed_ca_is_pinned_before_the_script_runs() {
        let cmd = install_command("https://p.example:8443", "shardlyn_reg_ab", Some("AB:cd"));
        assert!(cmd.contains("curl -fsSLk -o \"$ca\" https://p.example:8443/ca.pem"));
        assert!(cmd.contains("= abcd ]"));
        assert!(cmd.ends_with("--token shardlyn_reg_ab --ca-fingerprint AB:cd"));
    }

    #[test]
    fn odd_words_are_quoted() {
        assert_eq!(sh_quote("a b'c"), "'a b'\\''c'");
        assert_eq!(sh_quote("https://x/y"), "https://x/y");
    }

    #[test]
    fn hostnames_are_labels() {
        assert_eq!(hostname("Game Node #1").as_deref(), Some("game-node-1"));
        assert_eq!(hostname("--").as_deref(), None);
        assert_eq!(hostname(&"a".repeat(80)).map(|h| h.len()), Some(63));
    }

    #[test]
    fn user_data_is_a_cloud_config() {
        let doc = user_data("http://p", "shardlyn_reg_ab", None, "eu 1");
        assert!(doc.starts_with("#cloud-config\n"));
        assert!(doc.contains("hostname: \"eu-1\"\n"));
        assert!(doc.contains(
            "runcmd:\n  - \"curl -fsSL http://p/install-agent.sh | sh -s -- --token shardlyn_reg_ab\"\n"
        ));
    }
}
