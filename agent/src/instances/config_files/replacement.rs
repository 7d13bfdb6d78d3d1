//! One `find` entry turned into something a parser can apply.
//!
//! A `find` value is either the new value (a string with placeholders, or a JSON
//! number/boolean) or an object of conditional replacements, as the panel exports them
//! to Wings' `if_value`: `{"127.0.0.1": "new"}` replaces only a current value equal to
//! `127.0.0.1`, `{"regex:^(.*)$": "x$1"}` replaces only a current value the regex matches,
//! with `$1`-style groups expanded (Wings' `regexp.ReplaceAllString`). A conditional
//! replacement never creates a missing key (Pelican).

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use super::{Placeholders, placeholders};

/// When a replacement applies.
#[derive(Debug)]
pub(crate) enum Condition {
    /// The current value is exactly this.
    Equals(String),
    /// The current value matches; the new value is `replace_all` on the current one.
    Regex(Regex),
}

/// The new value as the egg typed it, placeholders resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NewValue {
    Text(String),
    Bool(bool),
    Number(serde_json::Number),
}

impl NewValue {
    pub(crate) fn as_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Bool(b) => b.to_string(),
            Self::Number(n) => n.to_string(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Replacement {
    /// The `find` key: a path, an ini `section.key`, or a line prefix.
    pub key: String,
    pub when: Option<Condition>,
    pub value: NewValue,
}

impl Replacement {
    /// Whether this replacement may create a key that is not in the file yet.
    pub(crate) fn creates(&self) -> bool {
        self.when.is_none()
    }

    /// The new text for a key whose current value is `current` (`None`: the key is not
    /// in the file), or `None` when the condition says to leave it alone.
    pub(crate) fn new_text(&self, current: Option<&str>) -> Option<String> {
        match &self.when {
            None => Some(self.value.as_text()),
            Some(Condition::Equals(want)) => {
                (current? == want.as_str()).then(|| self.value.as_text())
            }
            Some(Condition::Regex(re)) => {
                let current = current?;
                re.is_match(current)
                    .then(|| re.replace_all(current, self.value.as_text()).into_owned())
            }
        }
    }
}

/// Builds the replacements of one file, in `find` order. Entries that cannot be used
/// (an invalid regex) are left out and described in `notes`.
pub(crate) fn build(
    find: &BTreeMap<String, Value>,
    placeholders: &Placeholders,
    notes: &mut Vec<String>,
) -> Vec<Replacement> {
    let mut out = Vec::with_capacity(find.len());
    for (key, value) in find {
        match value {
            Value::Object(cases) => {
                for (if_value, new) in cases {
                    let when = if let Some(pattern) = if_value.strip_prefix("regex:") {
                        match Regex::new(pattern) {
                            Ok(re) => Condition::Regex(re),
                            Err(error) => {
                                notes.push(format!("`{key}`: invalid regex `{pattern}`: {error}"));
                                continue;
                            }
                        }
                    } else {
                        Condition::Equals(if_value.clone())
                    };
                    out.push(Replacement {
                        key: key.clone(),
                        when: Some(when),
                        value: new_value(new, placeholders),
                    });
                }
            }
            other => out.push(Replacement {
                key: key.clone(),
                when: None,
                value: new_value(other, placeholders),
            }),
        }
    }
    out
}

fn new_value(value: &Value, placeholders: &Placeholders) -> NewValue {
    match value {
        Value::String(text) => NewValue::Text(placeholders::resolve(text, placeholders)),
        Value::Bool(b) => NewValue::Bool(*b),
        Value::Number(n) => NewValue::Number(n.clone()),
        // Wings prints null as `<nil>`; an empty value is what an egg author would mean.
        Value::Null => NewValue::Text(String::new()),
        other => NewValue::Text(placeholders::resolve(&other.to_string(), placeholders)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(find: serde_json::Value) -> (Vec<Replacement>, Vec<String>) {
        let find: BTreeMap<String, Value> = serde_json::from_value(find).expect("map");
        let mut notes = Vec::new();
        let placeholders = Placeholders {
            default_port: 25577,
            config: [("docker.interface".to_owned(), "172.18.0.1".to_owned())].into(),
            ..Placeholders::default()
        };
        (build(&find, &placeholders, &mut notes), notes)
    }

    #[test]
    fn plain_values_always_apply() {
        let (reps, notes) =
            built(serde_json::json!({"a": "{{server.build.default.port}}", "b": true, "c": 0}));
        assert!(notes.is_empty());
        assert_eq!(reps[0].new_text(None).as_deref(), Some("25577"));
        assert_eq!(reps[1].value, NewValue::Bool(true));
        assert_eq!(reps[2].new_text(Some("9")).as_deref(), Some("0"));
        assert!(reps.iter().all(Replacement::creates));
    }

    #[test]
    fn equals_condition_needs_the_exact_current_value() {
        let (reps, _) =
            built(serde_json::json!({"addr": {"127.0.0.1": "{{config.docker.interface}}"}}));
        let rep = &reps[0];
        assert!(!rep.creates());
        assert_eq!(
            rep.new_text(Some("127.0.0.1")).as_deref(),
            Some("172.18.0.1")
        );
        assert_eq!(rep.new_text(Some("127.0.0.1:25565")), None);
        assert_eq!(rep.new_text(None), None);
    }

    #[test]
    fn regex_condition_replaces_with_groups_only_on_match() {
        let (reps, _) = built(serde_json::json!({
            "servers.*.address": {"regex:^(127\\.0\\.0\\.1|localhost)(:\\d{1,5})?$": "{{config.docker.interface}}$2"}
        }));
        let rep = &reps[0];
        assert_eq!(
            rep.new_text(Some("localhost:25565")).as_deref(),
            Some("172.18.0.1:25565")
        );
        assert_eq!(
            rep.new_text(Some("127.0.0.1")).as_deref(),
            Some("172.18.0.1")
        );
        assert_eq!(rep.new_text(Some("play.example.com:25565")), None);
        assert_eq!(rep.new_text(None), None);
    }

    #[test]
    fn invalid_regex_is_a_note_not_a_panic() {
        let (reps, notes) = built(serde_json::json!({"a": {"regex:(": "x"}, "b": "y"}));
        assert_eq!(reps.len(), 1);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("invalid regex"), "{notes:?}");
    }
}
