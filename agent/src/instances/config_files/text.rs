//! The `file` parser: any line that starts with a `find` key is replaced, whole, by the
//! value (Wings' `parseTextFile`).
//!
//! Differences from Wings, all in the direction of least surprise: when several keys
//! match one line the longest (most specific) key wins instead of the last one in map
//! order; a line's `\r` (CRLF files) is kept; nothing is appended for keys no line
//! starts with, and a missing file is not created (an empty file would stop many games
//! from writing their default config). For a conditional value the "current value" is
//! the whole line: `{"port=1": "port=2"}` or `{"regex:^port=(\\d+)$": "port=${1}0"}`.

use super::replacement::Replacement;

pub(crate) fn edit(content: &str, replacements: &[Replacement]) -> String {
    let mut out = String::with_capacity(content.len());
    for (i, raw) in content.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let (line, cr) = match raw.strip_suffix('\r') {
            Some(line) => (line, "\r"),
            None => (raw, ""),
        };
        let best = replacements
            .iter()
            .filter(|r| !r.key.is_empty() && line.starts_with(r.key.as_str()))
            .filter_map(|r| r.new_text(Some(line)).map(|new| (r.key.len(), new)))
            .max_by_key(|(len, _)| *len);
        match best {
            Some((_, new)) => {
                out.push_str(&new);
                out.push_str(cr);
            }
            None => out.push_str(raw),
        }
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
    fn replaces_lines_by_prefix_and_keeps_the_rest() {
        let input = "# comment\n#port = 5432\nlisten = x\r\nother\n";
        let out = edit(
            input,
            &[rep("#port =", "port = 6000"), rep("listen", "listen = y")],
        );
        assert_eq!(out, "# comment\nport = 6000\nlisten = y\r\nother\n");
    }

    #[test]
    fn longest_prefix_wins_and_missing_keys_are_not_added() {
        let out = edit(
            "set a 1\nset ab 2",
            &[rep("set a", "A"), rep("set ab", "AB"), rep("zzz", "Z")],
        );
        assert_eq!(out, "A\nAB");
    }

    #[test]
    fn conditional_matches_the_whole_line() {
        let re = Replacement {
            key: "port".into(),
            when: Some(Condition::Regex(
                regex::Regex::new(r"^port=(\d+)$").expect("re"),
            )),
            value: NewValue::Text("port=${1}0".into()),
        };
        assert_eq!(edit("port=1\nport=x", &[re]), "port=10\nport=x");
    }
}
