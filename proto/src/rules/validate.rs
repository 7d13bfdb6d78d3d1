//! Checking a variable value against parsed [`Rule`]s with Laravel's semantics.
//!
//! Values arrive as Pterodactyl receives them over HTTP, where blank strings are trimmed to
//! `null`. So: an absent value (`None`) is only checked by `required`/`present`; a blank value
//! (empty or whitespace) passes everything under `nullable` except `required`, and otherwise
//! still meets the type rules (`string`, `numeric`, …), which reject it as Laravel does for
//! `null`. Size rules compare the number when `numeric`/`integer` is among the rules and the
//! value is numeric, else the length in characters. The first failing rule, in rule order,
//! is reported.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use thiserror::Error;

use super::{Number, Rule};

/// The `code` an API answers with when a variable fails validation.
pub const VALIDATION_ERROR_CODE: &str = "VALIDATION_ERROR";

/// A value that failed a rule. Serializes to `{"field", "rule", "error"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Error)]
#[error("{message}")]
pub struct RuleError {
    /// The variable, e.g. `SERVER_PORT`.
    pub field: String,
    /// The failing rule's Laravel name, e.g. `between`.
    pub rule: String,
    /// Laravel-style message, e.g. `The Server Port field must be between 1 and 65535.`
    #[serde(rename = "error")]
    pub message: String,
}

impl RuleError {
    /// The API error body: `{"error", "code": "VALIDATION_ERROR", "field", "rule"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": self.message,
            "code": VALIDATION_ERROR_CODE,
            "field": self.field,
            "rule": self.rule,
        })
    }
}

/// Validates `value` for variable `var_name`, which is both the error `field` and, humanized
/// (`SERVER_PORT` → `Server Port`), the name in the message.
pub fn validate(var_name: &str, value: Option<&str>, rules: &[Rule]) -> Result<(), RuleError> {
    validate_named(&humanize(var_name), var_name, value, rules)
}

/// Like [`validate`] with an explicit display name, e.g. the egg variable's `name`.
pub fn validate_named(
    display_name: &str,
    field: &str,
    value: Option<&str>,
    rules: &[Rule],
) -> Result<(), RuleError> {
    let blank = value.is_none_or(|v| v.trim().is_empty());
    let nullable = rules.contains(&Rule::Nullable);
    let numeric = rules
        .iter()
        .any(|r| matches!(r, Rule::Numeric | Rule::Integer));
    for rule in rules {
        let implicit = matches!(rule, Rule::Required | Rule::Present);
        let skip = !implicit && (value.is_none() || (blank && nullable));
        if skip {
            continue;
        }
        // A blank value is `null` to Laravel: it has no characters and is not a string.
        let v = if blank { None } else { value };
        if let Some(fail) = check(rule, value, v, numeric) {
            let message = match fail.strip_prefix('!') {
                Some(rest) => format!("The selected {display_name} {rest}."),
                None => format!("The {display_name} field {fail}."),
            };
            return Err(RuleError {
                field: field.to_owned(),
                rule: rule.name().to_owned(),
                message,
            });
        }
    }
    Ok(())
}

/// Returns the message tail when the rule fails. `raw` is the value as given, `v` is `None`
/// for a blank value. Tails starting with `!` use Laravel's "The selected …" form.
fn check(rule: &Rule, raw: Option<&str>, v: Option<&str>, numeric: bool) -> Option<String> {
    let ok = |pass: bool, msg: &str| (!pass).then(|| msg.to_owned());
    let size = |v: Option<&str>| size_of(v.unwrap_or_default(), numeric);
    let unit = |v: Option<&str>| {
        if numeric && v.is_some_and(is_php_numeric) {
            ""
        } else {
            " characters"
        }
    };
    match rule {
        Rule::Required => ok(v.is_some(), "is required"),
        Rule::Present => ok(raw.is_some(), "must be present"),
        Rule::Nullable | Rule::Sometimes => None,
        Rule::String => ok(v.is_some(), "must be a string"),
        Rule::Numeric => ok(v.is_some_and(is_php_numeric), "must be a number"),
        Rule::Integer => ok(v.is_some_and(is_php_integer), "must be an integer"),
        Rule::Boolean => ok(
            v.is_some_and(|v| matches!(v, "1" | "0" | "true" | "false")),
            "must be true or false",
        ),
        Rule::Max(n) => ok(
            cmp(size(v), n) != Ordering::Greater,
            &format!("must not be greater than {n}{}", unit(v)),
        ),
        Rule::Min(n) => ok(
            cmp(size(v), n) != Ordering::Less,
            &format!("must be at least {n}{}", unit(v)),
        ),
        Rule::Size(n) => ok(
            cmp(size(v), n) == Ordering::Equal,
            &format!("must be {n}{}", unit(v)),
        ),
        Rule::Gt(n) => ok(
            cmp(size(v), n) == Ordering::Greater,
            &format!("must be greater than {n}{}", unit(v)),
        ),
        Rule::Gte(n) => ok(
            cmp(size(v), n) != Ordering::Less,
            &format!("must be greater than or equal to {n}{}", unit(v)),
        ),
        Rule::Lt(n) => ok(
            cmp(size(v), n) == Ordering::Less,
            &format!("must be less than {n}{}", unit(v)),
        ),
        Rule::Lte(n) => ok(
            cmp(size(v), n) != Ordering::Greater,
            &format!("must be less than or equal to {n}{}", unit(v)),
        ),
        Rule::Between(a, b) => {
            let s = size(v);
            let pass = cmp(s.clone(), a) != Ordering::Less && cmp(s, b) != Ordering::Greater;
            ok(pass, &format!("must be between {a} and {b}{}", unit(v)))
        }
        Rule::Digits(n) => ok(
            v.is_some_and(|v| all_digits(v) && v.chars().count() == *n),
            &format!("must be {n} digits"),
        ),
        Rule::DigitsBetween(a, b) => ok(
            v.is_some_and(|v| all_digits(v) && (*a..=*b).contains(&v.chars().count())),
            &format!("must be between {a} and {b} digits"),
        ),
        Rule::In(values) => ok(
            values.iter().any(|x| x == v.unwrap_or_default()),
            "!is invalid",
        ),
        Rule::NotIn(values) => ok(
            !values.iter().any(|x| x == v.unwrap_or_default()),
            "!is invalid",
        ),
        Rule::Regex(p) => ok(v.is_some_and(|v| p.is_match(v)), "format is invalid"),
        Rule::NotRegex(p) => ok(v.is_some_and(|v| !p.is_match(v)), "format is invalid"),
        Rule::Alpha => ok(
            v.is_some_and(|v| ALPHA.is_match(v)),
            "must only contain letters",
        ),
        Rule::AlphaDash => ok(
            v.is_some_and(|v| ALPHA_DASH.is_match(v)),
            "must only contain letters, numbers, dashes, and underscores",
        ),
        Rule::AlphaNum => ok(
            v.is_some_and(|v| ALPHA_NUM.is_match(v)),
            "must only contain letters and numbers",
        ),
        Rule::Url => ok(v.is_some_and(is_url), "must be a valid URL"),
    }
}

static ALPHA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[\pL\pM]+\z").expect("static regex"));
static ALPHA_DASH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[\pL\pM\pN_-]+\z").expect("static regex"));
static ALPHA_NUM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\A[\pL\pM\pN]+\z").expect("static regex"));
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\A[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s/?#@]+@)?[^\s/?#@:]+(?::\d{1,5})?(?:[/?#]\S*)?\z",
    )
    .expect("static regex")
});
static NUMERIC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\A[ \t\n\r\x0B\x0C]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\r\x0B\x0C]*\z")
        .expect("static regex")
});

/// PHP's `is_numeric` for strings (leading/trailing whitespace, sign, decimals, exponent).
pub(crate) fn is_php_numeric(v: &str) -> bool {
    NUMERIC.is_match(v)
}

/// PHP's `FILTER_VALIDATE_INT`: optional sign, no leading zeros, fits in 64 bits.
fn is_php_integer(v: &str) -> bool {
    let t = v.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    all_digits(digits) && (digits == "0" || !digits.starts_with('0')) && t.parse::<i64>().is_ok()
}

fn all_digits(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

fn is_url(v: &str) -> bool {
    URL.is_match(v)
}

/// A value's "size": the number itself under a numeric rule, else its character count.
#[derive(Clone)]
enum Size {
    Int(i128),
    Float(f64),
}

fn size_of(v: &str, numeric: bool) -> Size {
    if numeric && is_php_numeric(v) {
        let t = v.trim();
        if let Ok(i) = t.strip_prefix('+').unwrap_or(t).parse::<i128>() {
            return Size::Int(i);
        }
        return Size::Float(t.parse().unwrap_or(f64::NAN));
    }
    Size::Int(v.chars().count() as i128)
}

/// Compares exactly when both sides are integers (`max:76561202255233023` is in the corpus).
fn cmp(size: Size, bound: &Number) -> Ordering {
    let exact = bound
        .as_str()
        .strip_prefix('+')
        .unwrap_or(bound.as_str())
        .parse::<i128>();
    match (size, exact) {
        (Size::Int(a), Ok(b)) => a.cmp(&b),
        (Size::Int(a), Err(_)) => (a as f64)
            .partial_cmp(&bound.value())
            .unwrap_or(Ordering::Less),
        (Size::Float(a), _) => a.partial_cmp(&bound.value()).unwrap_or(Ordering::Less),
    }
}

/// `SERVER_PORT` → `Server Port`; names that are not SCREAMING_SNAKE are kept as they are.
fn humanize(name: &str) -> String {
    let screaming = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !screaming {
        return name.to_owned();
    }
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}
