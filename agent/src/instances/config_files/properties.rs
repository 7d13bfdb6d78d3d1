//! The `properties` parser (Java `.properties`, also used by eggs for `.env` and other
//! `key=value` files).
//!
//! Written by hand so the file keeps its comments, blank lines, order and separators:
//! only the value part of a matching line changes (Wings rewrites the whole file and
//! keeps only the leading comment block). Keys follow `java.util.Properties`: the key
//! ends at the first unescaped `=`, `:` or whitespace, `#`/`!` start comments, and a
//! trailing backslash continues a value on the next line. Keys not in the file are
//! appended as `key=value`; all occurrences of a duplicated key are replaced.
//!
//! New values are escaped the way Wings and `Properties.store` do, so Minecraft reads
//! `§` correctly: non-ASCII as `\uXXXX`, backslash, tab, CR and LF as escapes.
//! Conditions compare against the unescaped current value.

use std::collections::BTreeSet;

use super::replacement::Replacement;

pub(crate) fn edit(content: &str, replacements: &[Replacement]) -> String {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let mut out = String::with_capacity(content.len() + 64);
    let mut seen = BTreeSet::new();
    let mut i = 0;
    while let Some(&first) = lines.get(i) {
        // Gather the physical lines of this logical line.
        let mut end = i;
        let parsed = parse_key(strip_eol(first).0);
        if parsed.is_some() {
            while lines
                .get(end)
                .is_some_and(|l| ends_with_continuation(strip_eol(l).0))
                && end + 1 < lines.len()
            {
                end += 1;
            }
        }
        let Some(parsed) = parsed else {
            out.push_str(first);
            i += 1;
            continue;
        };
        let key = unescape(parsed.raw_key(first));
        let mut value = logical_value(&lines[i..=end], parsed.value_start);
        let mut changed = false;
        for rep in replacements.iter().filter(|r| r.key == key) {
            if let Some(new) = rep.new_text(Some(&value)) {
                value = new;
                changed = true;
            }
        }
        seen.insert(key);
        if changed {
            let (line, _) = strip_eol(first);
            let prefix = &line[..parsed.value_start];
            out.push_str(prefix);
            if !parsed.has_separator {
                out.push('=');
            }
            out.push_str(&escape_value(&value));
            out.push_str(strip_eol(lines[end]).1);
        } else {
            for line in &lines[i..=end] {
                out.push_str(line);
            }
        }
        i = end + 1;
    }

    let eol = if content.contains("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    for rep in replacements {
        if seen.contains(&rep.key) || !rep.creates() {
            continue;
        }
        let Some(value) = rep.new_text(None) else {
            continue;
        };
        if !out.is_empty() && !out.ends_with('\n') {
            out.push_str(eol);
        }
        out.push_str(&escape_key(&rep.key));
        out.push('=');
        out.push_str(&escape_value(&value));
        out.push_str(eol);
        seen.insert(rep.key.clone());
    }
    out
}

/// Where the key and value of a key line are.
struct KeyLine {
    key_start: usize,
    key_end: usize,
    value_start: usize,
    has_separator: bool,
}

impl KeyLine {
    fn raw_key<'a>(&self, line: &'a str) -> &'a str {
        &line[self.key_start..self.key_end]
    }
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Parses a key line; `None` for blank lines and comments.
fn parse_key(line: &str) -> Option<KeyLine> {
    let key_start = line.len() - line.trim_start_matches(is_blank).len();
    let rest = &line[key_start..];
    if rest.is_empty() || rest.starts_with('#') || rest.starts_with('!') {
        return None;
    }
    let mut key_end = line.len();
    let mut escaped = false;
    for (at, c) in rest.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = key_start + at;
            break;
        }
    }
    let after_key = &line[key_end..];
    let mut value_start =
        key_end + (after_key.len() - after_key.trim_start_matches(is_blank).len());
    let mut has_separator = value_start > key_end;
    if line[value_start..].starts_with(['=', ':']) {
        value_start += 1;
        has_separator = true;
        let rest = &line[value_start..];
        value_start += rest.len() - rest.trim_start_matches(is_blank).len();
    }
    Some(KeyLine {
        key_start,
        key_end,
        value_start,
        has_separator,
    })
}

fn strip_eol(line: &str) -> (&str, &str) {
    if let Some(body) = line.strip_suffix("\r\n") {
        (body, "\r\n")
    } else if let Some(body) = line.strip_suffix('\n') {
        (body, "\n")
    } else {
        (line, "")
    }
}

fn ends_with_continuation(line: &str) -> bool {
    let backslashes = line.len() - line.trim_end_matches('\\').len();
    backslashes % 2 == 1
}

/// The unescaped value of a logical line made of `lines`.
fn logical_value(lines: &[&str], value_start: usize) -> String {
    let mut raw = String::new();
    for (n, line) in lines.iter().enumerate() {
        let (body, _) = strip_eol(line);
        let body = if n == 0 {
            &body[value_start..]
        } else {
            body.trim_start_matches(is_blank)
        };
        let body = if n + 1 < lines.len() {
            body.strip_suffix('\\').unwrap_or(body)
        } else {
            body
        };
        raw.push_str(body);
    }
    unescape(&raw)
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut pending_high: Option<u16> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match u16::from_str_radix(&hex, 16) {
                    Ok(unit) if hex.len() == 4 => {
                        for _ in 0..4 {
                            chars.next();
                        }
                        if let Some(high) = pending_high.take() {
                            let pair = [high, unit];
                            out.extend(char::decode_utf16(pair).map(|r| r.unwrap_or('\u{fffd}')));
                        } else if (0xD800..0xDC00).contains(&unit) {
                            pending_high = Some(unit);
                        } else {
                            out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{fffd}'));
                        }
                    }
                    _ => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            ' ' if i == 0 => out.push_str("\\ "),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

fn escape_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        if matches!(c, '=' | ':' | ' ' | '#' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
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
    fn replaces_values_in_place_keeping_comments_and_order() {
        let input = "#Minecraft server properties\n#Mon Jan 01\nserver-ip=\nserver-port=25565\n\n! bang comment\nmotd = A Minecraft Server\nquery.port:25565\n";
        let out = edit(
            input,
            &[
                rep("server-port", "25600"),
                rep("query.port", "25600"),
                rep("motd", "§aHello\\World"),
                rep("server-ip", "0.0.0.0"),
            ],
        );
        assert_eq!(
            out,
            "#Minecraft server properties\n#Mon Jan 01\nserver-ip=0.0.0.0\nserver-port=25600\n\n! bang comment\nmotd = \\u00A7aHello\\\\World\nquery.port:25600\n"
        );
    }

    #[test]
    fn appends_missing_keys_and_handles_crlf_and_no_final_newline() {
        let out = edit("a=1\r\nb=2", &[rep("c", "3"), rep("b", "4")]);
        assert_eq!(out, "a=1\r\nb=4\r\nc=3\r\n");
        assert_eq!(edit("", &[rep("port", "1")]), "port=1\n");
    }

    #[test]
    fn continuation_lines_are_one_value() {
        let input = "long = one \\\n    two\nnext=x\n";
        let out = edit(input, &[rep("long", "short")]);
        assert_eq!(out, "long = short\nnext=x\n");
        let untouched = edit(input, &[rep("next", "x")]);
        assert_eq!(untouched, input);
    }

    #[test]
    fn key_without_value_and_space_separator() {
        assert_eq!(
            edit("flag\nname value\n", &[rep("flag", "1"), rep("name", "v2")]),
            "flag=1\nname v2\n"
        );
    }

    #[test]
    fn conditions_see_the_unescaped_value() {
        let only_if = Replacement {
            key: "motd".into(),
            when: Some(Condition::Equals("§a".into())),
            value: NewValue::Text("new".into()),
        };
        assert_eq!(edit("motd=\\u00a7a\n", &[only_if]), "motd=new\n");
        let only_if = Replacement {
            key: "motd".into(),
            when: Some(Condition::Equals("other".into())),
            value: NewValue::Text("new".into()),
        };
        assert_eq!(edit("motd=\\u00a7a\n", &[only_if]), "motd=\\u00a7a\n");
    }

    #[test]
    fn unescape_round_trips() {
        for text in ["plain", "§ 😀 \\ tab\t", " lead"] {
            assert_eq!(unescape(&escape_value(text)), text);
        }
    }
}
