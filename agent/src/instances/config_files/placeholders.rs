//! Resolves `{{...}}` placeholders in `find` values.
//!
//! Pterodactyl splits this between the panel (`server.*`, `env.*`) and Wings
//! (`config.*`); the agent does both. Names understood:
//! `server.build.default.port|ip`, `server.build.memory`, `server.build.env.X`, `env.X`,
//! `config.X`, plus the panel's legacy aliases (`server.allocations.default.*`,
//! `env.SERVER_MEMORY|SERVER_IP|SERVER_PORT`, `config.docker.network.interface`).
//! An unknown name, or a variable the instance does not have, becomes the empty string,
//! as in Wings. Text between braces that is not a placeholder name is left as is.

use super::Placeholders;

/// Replaces every `{{ name }}` in `text`.
pub(crate) fn resolve(text: &str, placeholders: &Placeholders) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let (before, from_open) = rest.split_at(start);
        out.push_str(before);
        let inner_and_after = &from_open[2..];
        let Some(end) = inner_and_after.find("}}") else {
            out.push_str(from_open);
            return out;
        };
        let name = inner_and_after[..end].trim();
        if is_name(name) {
            out.push_str(&lookup(name, placeholders));
        } else {
            out.push_str(&from_open[..end + 4]);
        }
        rest = &inner_and_after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn lookup(name: &str, placeholders: &Placeholders) -> String {
    match name {
        "server.build.default.port"
        | "server.allocations.default.port"
        | "server.build.env.SERVER_PORT"
        | "env.SERVER_PORT" => placeholders.default_port.to_string(),
        "server.build.default.ip"
        | "server.allocations.default.ip"
        | "server.build.env.SERVER_IP"
        | "env.SERVER_IP" => placeholders.default_ip.clone(),
        "server.build.memory" | "server.build.env.SERVER_MEMORY" | "env.SERVER_MEMORY" => {
            placeholders.memory_mb.to_string()
        }
        _ => {
            if let Some(var) = name
                .strip_prefix("server.build.env.")
                .or_else(|| name.strip_prefix("env."))
            {
                return placeholders.env.get(var).cloned().unwrap_or_default();
            }
            if let Some(key) = name.strip_prefix("config.") {
                return config_value(key, placeholders).unwrap_or_default();
            }
            tracing::debug!(placeholder = name, "unknown config file placeholder");
            String::new()
        }
    }
}

/// `config.X`: exact key first, then Wings' snake_case spelling, then the old name of
/// the Docker interface setting.
fn config_value(key: &str, placeholders: &Placeholders) -> Option<String> {
    let config = &placeholders.config;
    config
        .get(key)
        .or_else(|| config.get(&snake_case(key)))
        .or_else(|| match key {
            "docker.network.interface" => config.get("docker.interface"),
            "docker.interface" => config.get("docker.network.interface"),
            _ => None,
        })
        .cloned()
}

fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    let mut prev_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(if c == '-' { '_' } else { c });
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders() -> Placeholders {
        Placeholders {
            env: [("MOTD", "Hi {{there}}"), ("MAX", "20")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            default_ip: "10.0.0.5".into(),
            default_port: 25565,
            memory_mb: 2048,
            config: [("docker.interface", "172.18.0.1")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn resolves_known_names() {
        let p = placeholders();
        assert_eq!(resolve("{{server.build.default.port}}", &p), "25565");
        assert_eq!(resolve("{{ server.build.default.ip }}:x", &p), "10.0.0.5:x");
        assert_eq!(resolve("{{server.build.memory}}M", &p), "2048M");
        assert_eq!(resolve("{{server.build.env.MAX}}/{{env.MAX}}", &p), "20/20");
        assert_eq!(resolve("{{config.docker.interface}}$2", &p), "172.18.0.1$2");
        assert_eq!(
            resolve("{{config.docker.network.interface}}", &p),
            "172.18.0.1"
        );
        assert_eq!(resolve("{{server.allocations.default.port}}", &p), "25565");
        assert_eq!(resolve("{{env.SERVER_MEMORY}}", &p), "2048");
    }

    #[test]
    fn unknown_names_become_empty_and_values_are_not_re_expanded() {
        let p = placeholders();
        assert_eq!(resolve("a{{server.nope}}b", &p), "ab");
        assert_eq!(resolve("{{env.MISSING}}", &p), "");
        assert_eq!(resolve("{{config.nope}}", &p), "");
        // A variable's own braces are data, not another placeholder.
        assert_eq!(resolve("{{env.MOTD}}", &p), "Hi {{there}}");
    }

    #[test]
    fn leaves_non_placeholders_alone() {
        let p = placeholders();
        assert_eq!(resolve("{{ not a name }}", &p), "{{ not a name }}");
        assert_eq!(resolve("open {{ only", &p), "open {{ only");
        assert_eq!(resolve("}} {{", &p), "}} {{");
        assert_eq!(resolve("§ünï {{env.MAX}} ✓", &p), "§ünï 20 ✓");
        assert_eq!(snake_case("dockerInterface"), "docker_interface");
    }
}
