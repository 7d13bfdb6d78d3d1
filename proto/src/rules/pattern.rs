//! PCRE-style `/pattern/flags` regexes from `regex:` rules, compiled with the `regex` crate.
//!
//! Laravel hands the parameter straight to `preg_match`, so the parameter carries its own
//! delimiters (`/…/`, `#…#`, or bracket pairs such as `(…)`) and trailing flags. This module
//! strips those and maps the flags onto the `regex` crate's inline flags.
//!
//! Known differences from PCRE, none of which matter for the egg corpus:
//! - classes such as `\w` and `\d` are Unicode-aware here, ASCII-only in PCRE;
//! - `$` only matches at the very end (PCRE's `D` behaviour); PCRE also matches before a
//!   final newline;
//! - look-around and back-references are not supported by the `regex` crate; such patterns
//!   are rejected with a parse error (no egg in the corpus uses them).

use std::fmt;

use regex::Regex;

/// A compiled `regex:` parameter, compared and printed by its source text.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Parses `/body/flags` (any non-alphanumeric delimiter, or a bracket pair).
    pub fn parse(source: &str) -> Result<Self, String> {
        let source = source.trim_start();
        let Some(open) = source.chars().next() else {
            return Err("empty regex".to_owned());
        };
        if open.is_alphanumeric() || open == '\\' {
            return Err(format!(
                "regex must start with a delimiter such as `/`, found `{open}`"
            ));
        }
        let Some(body_end) = closing_delimiter(source).first().copied() else {
            return Err(format!(
                "regex has no closing delimiter `{}`",
                close_of(open)
            ));
        };
        let body = &source[open.len_utf8()..body_end];
        let flags = &source[body_end + close_of(open).len_utf8()..];
        let mut inline = String::new();
        let mut anchored = false;
        for flag in flags.chars() {
            match flag {
                'i' | 'm' | 's' | 'x' | 'U' => inline.push(flag),
                // `u` (UTF-8) is always on here; `D` is the regex crate's default `$`.
                'u' | 'D' => {}
                'A' => anchored = true,
                other => return Err(format!("unsupported regex flag `{other}`")),
            }
        }
        let body = unescape_delimiter(body, open);
        let mut translated = String::new();
        if !inline.is_empty() {
            translated.push_str(&format!("(?{inline})"));
        }
        if anchored {
            translated.push_str(&format!("\\A(?:{body})"));
        } else {
            translated.push_str(&body);
        }
        let regex = Regex::new(&translated).map_err(|e| format!("invalid regex: {e}"))?;
        Ok(Self {
            source: source.to_owned(),
            regex,
        })
    }

    /// The parameter as written, delimiters and flags included.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the value matches anywhere (like `preg_match`).
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn close_of(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        '<' => '>',
        other => other,
    }
}

/// Byte offsets of every candidate closing delimiter in `source` (which starts with the
/// opening delimiter), in order. For bracket delimiters, nesting is tracked as PCRE does.
pub(crate) fn closing_delimiter(source: &str) -> Vec<usize> {
    let mut chars = source.char_indices();
    let Some((_, open)) = chars.next() else {
        return Vec::new();
    };
    let close = close_of(open);
    let nests = close != open;
    let mut depth = 0usize;
    let mut found = Vec::new();
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if nests && c == open {
            depth += 1;
        } else if c == close {
            if depth == 0 {
                found.push(i);
            } else {
                depth -= 1;
            }
        }
    }
    found
}

/// Turns `\/` into `/` when `/` is the delimiter; keeps the escape for regex metacharacters.
fn unescape_delimiter(body: &str, open: char) -> String {
    let close = close_of(open);
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(next) if (next == open || next == close) && !is_regex_meta(next) => out.push(next),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn is_regex_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_delimited_with_alternation() {
        let p = Pattern::parse("/^(a|b)$/").expect("parses");
        assert!(p.is_match("a"));
        assert!(!p.is_match("c"));
    }

    #[test]
    fn bracket_delimiters_and_flags() {
        let p = Pattern::parse("([a-z-0-9]+$)").expect("parses");
        assert!(p.is_match("abc-1"));
        let p = Pattern::parse("#^abc$#i").expect("parses");
        assert!(p.is_match("ABC"));
        let p = Pattern::parse("/b/A").expect("parses");
        assert!(!p.is_match("ab"));
    }

    #[test]
    fn escaped_delimiter_inside_body() {
        let p = Pattern::parse(r"/^\/home\/[a-z]+$/").expect("parses");
        assert!(p.is_match("/home/container"));
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(Pattern::parse("").is_err());
        assert!(Pattern::parse("abc").is_err());
        assert!(Pattern::parse("/abc").is_err());
        assert!(Pattern::parse("/abc/q").is_err());
        assert!(Pattern::parse("/(?<=a)b/").is_err());
    }
}
