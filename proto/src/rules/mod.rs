//! Egg variable rules: the subset of Laravel's validation syntax that Pterodactyl eggs
//! use (`required|string|max:20`), parsed into [`Rule`]s and checked by [`validate`].
//!
//! This module owns the rule vocabulary, the parser and its canonical string form;
//! value checking lives in `validate`, regex delimiter handling in `pattern`.

mod parse;
mod pattern;
mod validate;

use std::fmt;

pub use parse::{RuleParseError, parse_rules, rules_to_string};
pub use pattern::Pattern;
pub use validate::{RuleError, VALIDATION_ERROR_CODE, validate, validate_named};

/// One validation rule of an egg variable.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `required`: the value must be present and not blank.
    Required,
    /// `nullable`: a blank or absent value skips every other rule except `required`.
    Nullable,
    /// `present`: the value must be supplied, even if blank.
    Present,
    /// `sometimes`: accepted for compatibility; absent values are never checked anyway.
    Sometimes,
    /// `string`.
    String,
    /// `numeric`: a PHP-style number (`-1`, `0.5`, `1e3`).
    Numeric,
    /// `integer` (also written `int`).
    Integer,
    /// `boolean` (also written `bool`): `true`, `false`, `1`, `0`.
    Boolean,
    /// `max:n`: numeric value or character count at most `n`.
    Max(Number),
    /// `min:n`: numeric value or character count at least `n`.
    Min(Number),
    /// `between:a,b`: numeric value or character count within `a..=b`.
    Between(Number, Number),
    /// `size:n`: numeric value or character count exactly `n`.
    Size(Number),
    /// `gt:n`: numeric value or character count greater than `n`.
    Gt(Number),
    /// `gte:n`.
    Gte(Number),
    /// `lt:n`.
    Lt(Number),
    /// `lte:n`.
    Lte(Number),
    /// `digits:n`: only ASCII digits, exactly `n` of them.
    Digits(usize),
    /// `digits_between:a,b`: only ASCII digits, between `a` and `b` of them.
    DigitsBetween(usize, usize),
    /// `in:a,b,c` (CSV, so `in:,x` allows the empty string).
    In(Vec<String>),
    /// `not_in:a,b,c`.
    NotIn(Vec<String>),
    /// `regex:/pattern/flags`.
    Regex(Pattern),
    /// `not_regex:/pattern/flags`.
    NotRegex(Pattern),
    /// `alpha`: letters and marks only.
    Alpha,
    /// `alpha_dash`: letters, marks, numbers, `-` and `_`.
    AlphaDash,
    /// `alpha_num`: letters, marks and numbers.
    AlphaNum,
    /// `url`: a scheme followed by `://` and a host.
    Url,
}

impl Rule {
    /// The canonical Laravel name of the rule, as used in error payloads.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::Nullable => "nullable",
            Rule::Present => "present",
            Rule::Sometimes => "sometimes",
            Rule::String => "string",
            Rule::Numeric => "numeric",
            Rule::Integer => "integer",
            Rule::Boolean => "boolean",
            Rule::Max(_) => "max",
            Rule::Min(_) => "min",
            Rule::Between(..) => "between",
            Rule::Size(_) => "size",
            Rule::Gt(_) => "gt",
            Rule::Gte(_) => "gte",
            Rule::Lt(_) => "lt",
            Rule::Lte(_) => "lte",
            Rule::Digits(_) => "digits",
            Rule::DigitsBetween(..) => "digits_between",
            Rule::In(_) => "in",
            Rule::NotIn(_) => "not_in",
            Rule::Regex(_) => "regex",
            Rule::NotRegex(_) => "not_regex",
            Rule::Alpha => "alpha",
            Rule::AlphaDash => "alpha_dash",
            Rule::AlphaNum => "alpha_num",
            Rule::Url => "url",
        }
    }
}

impl fmt::Display for Rule {
    /// Writes the rule back in Laravel syntax; parsing the output yields an equal rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Rule::Max(n) | Rule::Min(n) | Rule::Size(n) | Rule::Gt(n) => write!(f, "{name}:{n}"),
            Rule::Gte(n) | Rule::Lt(n) | Rule::Lte(n) => write!(f, "{name}:{n}"),
            Rule::Between(a, b) => write!(f, "{name}:{a},{b}"),
            Rule::Digits(n) => write!(f, "{name}:{n}"),
            Rule::DigitsBetween(a, b) => write!(f, "{name}:{a},{b}"),
            Rule::In(values) | Rule::NotIn(values) => {
                write!(f, "{name}:")?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_csv_field(f, value)?;
                }
                Ok(())
            }
            Rule::Regex(p) | Rule::NotRegex(p) => write!(f, "{name}:{}", p.source()),
            _ => f.write_str(name),
        }
    }
}

/// Quotes a CSV field the way `str_getcsv` reads it back.
fn write_csv_field(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    if value.contains([',', '"']) {
        write!(f, "\"{}\"", value.replace('"', "\"\""))
    } else {
        f.write_str(value)
    }
}

/// A numeric rule parameter, kept with its source text so it prints back unchanged.
#[derive(Debug, Clone)]
pub struct Number {
    text: String,
    value: f64,
}

impl Number {
    /// Parses a PHP-numeric parameter (`10`, `-1`, `0.1`); `None` if it is not a number.
    pub fn parse(text: &str) -> Option<Self> {
        let trimmed = text.trim();
        if !validate::is_php_numeric(trimmed) {
            return None;
        }
        let value = trimmed.parse::<f64>().ok()?;
        Some(Self {
            text: trimmed.to_owned(),
            value,
        })
    }

    /// The parameter as a float.
    pub fn value(&self) -> f64 {
        self.value
    }

    /// The parameter as written in the rule.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
