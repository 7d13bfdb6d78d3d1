//! Rendering of an egg's startup command template with the server's variables.
//!
//! Pterodactyl substitutes `{{VAR}}` placeholders in the startup command (the panel for its
//! own variables, the yolks entrypoint by turning them into `${VAR}` for the shell). We
//! replace `{{VAR}}`, `{{env.VAR}}`, `{{server.build.env.VAR}}` and `${VAR}` in one pass
//! (values are never re-scanned), and leave placeholders with no value untouched so the
//! container's shell can still expand them.

use std::collections::BTreeMap;

/// Replaces known placeholders in `startup` with values from `env`.
pub fn render_startup(startup: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(startup.len());
    let mut rest = startup;
    while let Some(start) = rest.find(['{', '$']) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        match placeholder(tail).and_then(|(len, name)| Some((len, env.get(name)?))) {
            Some((len, value)) => {
                out.push_str(value);
                rest = &tail[len..];
            }
            None => {
                // Not a known placeholder: emit one character and keep scanning.
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// If `s` starts with a placeholder, returns its byte length and the variable name.
fn placeholder(s: &str) -> Option<(usize, &str)> {
    let (inner, open, close) = if let Some(body) = s.strip_prefix("{{") {
        (body, 2, "}}")
    } else if let Some(body) = s.strip_prefix("${") {
        (body, 2, "}")
    } else {
        return None;
    };
    let end = inner.find(close)?;
    let raw = &inner[..end];
    let name = if open == 2 && close == "}}" {
        raw.strip_prefix("server.build.env.")
            .or_else(|| raw.strip_prefix("env."))
            .unwrap_or(raw)
    } else {
        raw
    };
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((open + end + close.len(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn replaces_known_placeholders() {
        let env = env(&[("SERVER_MEMORY", "1024"), ("SERVER_JARFILE", "server.jar")]);
        assert_eq!(
            render_startup("java -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}", &env),
            "java -Xmx1024M -jar server.jar"
        );
        assert_eq!(
            render_startup(
                "a {{env.SERVER_MEMORY}} ${SERVER_JARFILE} {{server.build.env.SERVER_MEMORY}}",
                &env
            ),
            "a 1024 server.jar 1024"
        );
    }

    #[test]
    fn leaves_unknown_and_malformed_placeholders() {
        let env = env(&[("A", "{{B}}")]);
        assert_eq!(
            render_startup("{{A}} {{B}} ${C} {{A ${ {{", &env),
            "{{B}} {{B}} ${C} {{A ${ {{"
        );
        assert_eq!(
            render_startup("{{ A }} $A ä{{A}}", &env),
            "{{ A }} $A ä{{B}}"
        );
    }
}
