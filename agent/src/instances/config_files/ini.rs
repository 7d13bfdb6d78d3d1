//! The `ini` parser.
//!
//! Written by hand so comments, order, blank lines and each line's own `key = value`
//! spacing survive (Wings re-serialises through go-ini). A `find` key is
//! `section.key`; the section may be bracketed so it can hold dots, as the corpus does
//! with `[/Script/Astro.AstroServerSettings].ServerName`, and dots after the first one
//! belong to the key (`[SystemSettings].net.AllowEncryption`), both as in Wings. A key
//! without a section lives before the first `[section]` header. Names are
//! case-sensitive. Every occurrence of a key in every same-named section is replaced;
//! a missing key is added as `key=value` (no spaces, which Unreal-engine games need) at
//! the end of the first such section, and a missing section is appended.
//! Values are written verbatim (the corpus puts quotes in the value when it wants them);
//! conditions compare against the trimmed current value.

use super::replacement::Replacement;

/// `section.key` split the way Wings does it.
fn split_key(key: &str) -> (Option<String>, String) {
    let mut section = None;
    let mut current = String::new();
    let mut depth = 0usize;
    for c in key.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 && section.is_none() => {
                section = Some(std::mem::take(&mut current));
            }
            c => current.push(c),
        }
    }
    (section, current)
}

enum Line {
    Header(String),
    Pair { key: String, value_start: usize },
    Other,
}

fn classify(body: &str) -> Line {
    let trimmed = body.trim();
    if trimmed.starts_with(';') || trimmed.starts_with('#') || trimmed.is_empty() {
        return Line::Other;
    }
    if let Some(inner) = trimmed.strip_prefix('[')
        && let Some(close) = inner.rfind(']')
    {
        return Line::Header(inner[..close].trim().to_owned());
    }
    let Some(delim) = body.find(['=', ':']) else {
        return Line::Other;
    };
    let after = &body[delim + 1..];
    Line::Pair {
        key: body[..delim].trim().to_owned(),
        value_start: delim + 1 + (after.len() - after.trim_start().len()),
    }
}

fn split_eol(line: &str) -> (&str, &str) {
    if let Some(body) = line.strip_suffix("\r\n") {
        (body, "\r\n")
    } else if let Some(body) = line.strip_suffix('\n') {
        (body, "\n")
    } else {
        (line, "")
    }
}

pub(crate) fn edit(content: &str, replacements: &[Replacement]) -> String {
    let eol = if content.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let targets: Vec<(Option<String>, String)> =
        replacements.iter().map(|r| split_key(&r.key)).collect();
    let mut found = vec![false; replacements.len()];

    let mut lines: Vec<String> = Vec::new();
    // Per line: the section it is in (None before the first header).
    let mut sections: Vec<Option<String>> = Vec::new();
    let mut section: Option<String> = None;
    for raw in content.split_inclusive('\n') {
        let (body, line_eol) = split_eol(raw);
        let mut line = raw.to_owned();
        match classify(body) {
            Line::Header(name) => section = Some(name),
            Line::Pair { key, value_start } => {
                let mut value = body[value_start..].trim_end().to_owned();
                let mut changed = false;
                for (n, rep) in replacements.iter().enumerate() {
                    if targets[n].0 != section || targets[n].1 != key {
                        continue;
                    }
                    found[n] = true;
                    if let Some(new) = rep.new_text(Some(&value)) {
                        value = new;
                        changed = true;
                    }
                }
                if changed {
                    line = format!("{}{value}{line_eol}", &body[..value_start]);
                }
            }
            Line::Other => {}
        }
        lines.push(line);
        sections.push(section.clone());
    }

    // Keys to add, grouped by section in first-seen order.
    let mut additions: Vec<(Option<String>, Vec<String>)> = Vec::new();
    for (n, rep) in replacements.iter().enumerate() {
        if found[n] || !rep.creates() {
            continue;
        }
        let Some(value) = rep.new_text(None) else {
            continue;
        };
        let (sec, key) = &targets[n];
        let entry = format!("{key}={value}{eol}");
        match additions.iter_mut().find(|(s, _)| s == sec) {
            Some((_, entries)) => entries.push(entry),
            None => additions.push((sec.clone(), vec![entry])),
        }
    }

    let mut appended = String::new();
    // Insert from the bottom up so earlier indexes stay valid.
    let mut inserts: Vec<(usize, Vec<String>)> = Vec::new();
    for (sec, entries) in additions {
        match insertion_point(&lines, &sections, sec.as_ref()) {
            Some(at) => inserts.push((at, entries)),
            None => {
                if !(lines.is_empty() && appended.is_empty()) {
                    appended.push_str(eol);
                }
                if let Some(name) = &sec {
                    appended.push_str(&format!("[{name}]{eol}"));
                }
                for entry in entries {
                    appended.push_str(&entry);
                }
            }
        }
    }
    inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    for (at, entries) in inserts {
        if at > 0 && !lines[at - 1].ends_with('\n') {
            lines[at - 1].push_str(eol);
        }
        for (k, entry) in entries.into_iter().enumerate() {
            lines.insert(at + k, entry);
        }
    }
    let mut out: String = lines.concat();
    if !appended.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        out.push_str(&appended);
    }
    out
}

/// The line index to insert a new key of `section` at: after the last non-blank line
/// of its first block. `None` when the section does not exist.
fn insertion_point(
    lines: &[String],
    sections: &[Option<String>],
    section: Option<&String>,
) -> Option<usize> {
    let start = match section {
        None => 0,
        Some(name) => {
            let header = sections.iter().enumerate().position(|(i, s)| {
                s.as_ref() == Some(name) && (i == 0 || sections[i - 1].as_ref() != Some(name))
            })?;
            header + 1
        }
    };
    let mut last = start;
    let mut i = start;
    while i < lines.len() && sections[i].as_ref() == section {
        if !lines[i].trim().is_empty() {
            last = i + 1;
        }
        i += 1;
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::super::replacement::{Condition, NewValue};
    use super::*;

    fn rep(key: &str, value: &str) -> Replacement {
        Replacement {
            key: key.into(),
            when: None,
            value: NewValue::Text(value.into()),
        }
    }

    #[test]
    fn splits_keys_like_wings() {
        assert_eq!(
            split_key("network.server_port"),
            (Some("network".into()), "server_port".into())
        );
        assert_eq!(
            split_key("[Host Settings].ServerName"),
            (Some("Host Settings".into()), "ServerName".into())
        );
        assert_eq!(
            split_key("[/Script/Astro.AstroServerSettings].PublicIP"),
            (
                Some("/Script/Astro.AstroServerSettings".into()),
                "PublicIP".into()
            )
        );
        assert_eq!(
            split_key("[SystemSettings].net.AllowEncryption"),
            (Some("SystemSettings".into()), "net.AllowEncryption".into())
        );
        assert_eq!(split_key("a.b.c"), (Some("a".into()), "b.c".into()));
        assert_eq!(split_key("plain"), (None, "plain".into()));
    }

    #[test]
    fn replaces_in_place_and_keeps_layout() {
        let input = "; top comment\n[network]\nserver_port = 3979\n# c\nserver_name=Old\n\n[gui]\nserver_port = 1\n";
        let out = edit(
            input,
            &[
                rep("network.server_port", "4000"),
                rep("network.server_name", "New"),
            ],
        );
        assert_eq!(
            out,
            "; top comment\n[network]\nserver_port = 4000\n# c\nserver_name=New\n\n[gui]\nserver_port = 1\n"
        );
    }

    #[test]
    fn adds_missing_keys_and_sections() {
        let input = "global=1\n\n[A]\nx=1\n\n[B]\ny=2";
        let out = edit(
            input,
            &[
                rep("A.z", "3"),
                rep("C.w", "4"),
                rep("top", "5"),
                rep("B.q", "6"),
            ],
        );
        assert_eq!(
            out,
            "global=1\ntop=5\n\n[A]\nx=1\nz=3\n\n[B]\ny=2\nq=6\n\n[C]\nw=4\n"
        );
        assert_eq!(edit("", &[rep("S.k", "v")]), "[S]\nk=v\n");
        assert_eq!(edit("[S]\n", &[rep("top", "v")]), "top=v\n[S]\n");
    }

    #[test]
    fn conditional_only_on_match_and_never_creates() {
        let when = |c: Condition| Replacement {
            key: "S.k".into(),
            when: Some(c),
            value: NewValue::Text("new".into()),
        };
        let input = "[S]\r\nk = old\r\n";
        assert_eq!(
            edit(input, &[when(Condition::Equals("old".into()))]),
            "[S]\r\nk = new\r\n"
        );
        assert_eq!(
            edit(input, &[when(Condition::Equals("other".into()))]),
            input
        );
        assert_eq!(
            edit("[S]\n", &[when(Condition::Equals("old".into()))]),
            "[S]\n"
        );
    }
}
