//! Parsing of rule strings (`required|string|max:20`) into [`Rule`]s, and printing them back.
//!
//! Laravel splits a rule string on every `|`, which breaks `regex:` patterns containing
//! `|`. Here a `regex:`/`not_regex:` segment instead runs to the first closing delimiter
//! (plus flags) that is followed by `|` or the end of the string, so `regex:/^(a|b)$/|max:5`
//! is two rules. Parameters are split on `,` except for regexes; `in`/`not_in` use CSV
//! quoting like `str_getcsv`. Empty segments (`required|string|`) are ignored, as in
//! Laravel, and rule names are case-insensitive.

use thiserror::Error;

use super::pattern::{Pattern, closing_delimiter};
use super::{Number, Rule};

/// A rule string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid rule `{rule}`: {message}")]
pub struct RuleParseError {
    /// The offending segment, e.g. `frobnicate` or `max:abc`.
    pub rule: String,
    /// What is wrong with it.
    pub message: String,
}

/// Parses a Laravel rule string. Unknown rules and malformed parameters are errors.
pub fn parse_rules(rules: &str) -> Result<Vec<Rule>, RuleParseError> {
    split_segments(rules)
        .into_iter()
        .filter(|segment| !segment.trim().is_empty())
        .map(parse_segment)
        .collect()
}

/// Prints rules in canonical Laravel syntax; `parse_rules` of the result gives them back.
pub fn rules_to_string(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("|")
}

fn split_segments(rules: &str) -> Vec<&str> {
    let mut segments = Vec::new();
    let mut rest = rules;
    loop {
        let end = regex_segment_end(rest).or_else(|| rest.find('|'));
        match end {
            Some(end) if end < rest.len() => {
                segments.push(&rest[..end]);
                rest = &rest[end + 1..];
            }
            _ => {
                segments.push(rest);
                return segments;
            }
        }
    }
}

/// For a segment starting with `regex:`/`not_regex:`, the byte offset where it ends.
fn regex_segment_end(rest: &str) -> Option<usize> {
    let colon = rest.find(':')?;
    let name = rest[..colon].trim().to_ascii_lowercase();
    if name != "regex" && name != "not_regex" {
        return None;
    }
    let pattern_start = colon + 1;
    let pattern = &rest[pattern_start..];
    for close in closing_delimiter(pattern) {
        let close_len = pattern[close..].chars().next().map_or(1, char::len_utf8);
        let after = &pattern[close + close_len..];
        let flags = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let end = close + close_len + flags;
        if end == pattern.len() || pattern[end..].starts_with('|') {
            return Some(pattern_start + end);
        }
    }
    None
}

fn parse_segment(segment: &str) -> Result<Rule, RuleParseError> {
    let segment = segment.trim();
    let (name, param) = match segment.split_once(':') {
        Some((name, param)) => (name.trim(), Some(param)),
        None => (segment, None),
    };
    let err = |message: String| RuleParseError {
        rule: segment.to_owned(),
        message,
    };
    let lower = name.to_ascii_lowercase();
    let rule = match lower.as_str() {
        // Laravel ignores parameters on these (the corpus has `nullable:string`).
        "required" => Rule::Required,
        "nullable" => Rule::Nullable,
        "present" => Rule::Present,
        "sometimes" => Rule::Sometimes,
        "string" => Rule::String,
        "numeric" => Rule::Numeric,
        "integer" | "int" => Rule::Integer,
        "boolean" | "bool" => Rule::Boolean,
        "alpha" => Rule::Alpha,
        "alpha_dash" => Rule::AlphaDash,
        "alpha_num" => Rule::AlphaNum,
        "url" => Rule::Url,
        "max" => Rule::Max(one_number(param).map_err(err)?),
        "min" => Rule::Min(one_number(param).map_err(err)?),
        "size" => Rule::Size(one_number(param).map_err(err)?),
        "gt" => Rule::Gt(one_number(param).map_err(err)?),
        "gte" => Rule::Gte(one_number(param).map_err(err)?),
        "lt" => Rule::Lt(one_number(param).map_err(err)?),
        "lte" => Rule::Lte(one_number(param).map_err(err)?),
        "between" => {
            let (a, b) = two_numbers(param).map_err(err)?;
            Rule::Between(a, b)
        }
        "digits" => {
            let [n] = counts::<1>(param).map_err(err)?;
            Rule::Digits(n)
        }
        "digits_between" => {
            let [a, b] = counts::<2>(param).map_err(err)?;
            Rule::DigitsBetween(a, b)
        }
        "in" => Rule::In(csv(param.unwrap_or_default())),
        "not_in" => Rule::NotIn(csv(param.unwrap_or_default())),
        "regex" | "not_regex" => {
            let pattern = Pattern::parse(param.unwrap_or_default()).map_err(err)?;
            if lower == "regex" {
                Rule::Regex(pattern)
            } else {
                Rule::NotRegex(pattern)
            }
        }
        "" => return Err(err("missing rule name".to_owned())),
        _ => return Err(err(format!("unknown rule `{name}`"))),
    };
    Ok(rule)
}

fn params(param: Option<&str>) -> Vec<&str> {
    param.map(|p| p.split(',').collect()).unwrap_or_default()
}

fn one_number(param: Option<&str>) -> Result<Number, String> {
    match params(param).as_slice() {
        [n] => Number::parse(n).ok_or_else(|| format!("`{n}` is not a number")),
        _ => Err("expects exactly one numeric parameter".to_owned()),
    }
}

fn two_numbers(param: Option<&str>) -> Result<(Number, Number), String> {
    match params(param).as_slice() {
        [a, b] => {
            let a = Number::parse(a).ok_or_else(|| format!("`{a}` is not a number"))?;
            let b = Number::parse(b).ok_or_else(|| format!("`{b}` is not a number"))?;
            Ok((a, b))
        }
        _ => Err("expects two numeric parameters, e.g. `between:1,10`".to_owned()),
    }
}

fn counts<const N: usize>(param: Option<&str>) -> Result<[usize; N], String> {
    let parts = params(param);
    if parts.len() != N {
        return Err(format!("expects {N} whole-number parameter(s)"));
    }
    let mut out = [0usize; N];
    for (slot, part) in out.iter_mut().zip(parts) {
        *slot = part
            .trim()
            .parse()
            .map_err(|_| format!("`{part}` is not a whole number"))?;
    }
    Ok(out)
}

/// Splits like PHP's `str_getcsv`: `,` separated, `"` quoting with `""` as an escaped quote.
fn csv(param: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = param.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && at_field_start {
            quoted = true;
            at_field_start = false;
        } else if c == ',' {
            fields.push(std::mem::take(&mut field));
            at_field_start = true;
        } else {
            field.push(c);
            at_field_start = false;
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_regex_containing_pipes_and_commas() {
        let rules = parse_rules(r"required|regex:/^(\w{1,20}|x|y)$/|max:64").expect("parses");
        assert_eq!(rules.len(), 3);
        assert!(matches!(&rules[1], Rule::Regex(p) if p.source() == r"/^(\w{1,20}|x|y)$/"));
        assert!(matches!(&rules[2], Rule::Max(n) if n.as_str() == "64"));
    }

    #[test]
    fn regex_at_end_with_pipe_and_flags() {
        let rules = parse_rules("nullable|regex:/^(on|off)$/i").expect("parses");
        assert_eq!(rules.len(), 2);
    }

    #[test]
    fn csv_values() {
        assert_eq!(csv(",beta"), vec!["", "beta"]);
        assert_eq!(csv(r#""a,b",c"#), vec!["a,b", "c"]);
        assert_eq!(csv(r#""say ""hi""""#), vec![r#"say "hi""#]);
    }

    #[test]
    fn canonical_string_round_trips() {
        for source in [
            "required|string|max:20",
            "nullable:string",
            "required|string|",
            r#"in:"a,b",c,"#,
            "required|int|between:0.1,64",
            r"required|regex:/^([\w\d._-]+)(\.jar)$/",
            "nullable|regex:([a-z-0-9]+$)",
        ] {
            let rules = parse_rules(source).expect(source);
            let printed = rules_to_string(&rules);
            assert_eq!(parse_rules(&printed).expect(&printed), rules, "{source}");
        }
    }

    #[test]
    fn errors_name_the_segment() {
        let err = parse_rules("required|frobnicate").unwrap_err();
        assert_eq!(err.rule, "frobnicate");
        assert!(err.to_string().contains("unknown rule `frobnicate`"));
        for bad in [
            "max",
            "max:x",
            "between:1",
            "digits_between:a,2",
            ":5",
            "regex:abc",
        ] {
            assert!(parse_rules(bad).is_err(), "{bad}");
        }
    }
}
