//! Typed, path-aware access to the JSON objects of an egg document.
//!
//! Every accessor reports a wrong or missing value as an [`EggError`] whose `field` is the
//! JSON path (`variables[3].env_variable`, `config.files["a.yml"].parser`).

use serde_json::{Map, Value};

use super::EggError;
use super::ordered::OrderedObject;

pub(super) type Result<T> = std::result::Result<T, EggError>;

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn key_path(prefix: &str, key: &str) -> String {
    format!("{prefix}[{}]", Value::String(key.to_owned()))
}

/// A JSON object plus its path, with typed accessors that report errors at `path.key`.
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    pub(super) fn new(map: &'a Map<String, Value>, path: &str) -> Self {
        Self {
            map,
            path: path.to_owned(),
        }
    }

    pub(super) fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn required_str(&self, key: &str) -> Result<String> {
        self.opt_str(key)?
            .ok_or_else(|| EggError::invalid(self.at(key), "is required"))
    }

    pub(super) fn opt_str(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(EggError::invalid(
                self.at(key),
                format!("must be a string, found {}", kind(other)),
            )),
        }
    }

    pub(super) fn object(&self, key: &str) -> Result<Option<Obj<'a>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj::new(map, &self.at(key)))),
            Some(other) => Err(EggError::invalid(
                self.at(key),
                format!("must be an object, found {}", kind(other)),
            )),
        }
    }

    /// A list of strings; `null`, missing and `""` are empty, a non-empty string is one
    /// entry per line.
    pub(super) fn str_list(&self, key: &str) -> Result<Vec<String>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(s
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(EggError::invalid(
                        format!("{}[{i}]", self.at(key)),
                        format!("must be a string, found {}", kind(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(EggError::invalid(
                self.at(key),
                format!("must be a list of strings, found {}", kind(other)),
            )),
        }
    }

    /// `true`/`false`, `0`/`1` or their string forms; missing is `false`.
    pub(super) fn flag(&self, key: &str) -> Result<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                Ok(n.as_i64() == Some(1))
            }
            Some(Value::String(s)) if matches!(s.as_str(), "0" | "1" | "true" | "false" | "") => {
                Ok(s == "1" || s == "true")
            }
            Some(other) => Err(EggError::invalid(
                self.at(key),
                format!("must be a boolean (or 0/1), found {}", kind(other)),
            )),
        }
    }

    /// Like `str_list`, but a string is a single entry (used for `done` markers).
    pub(super) fn str_list_strict(&self, key: &str) -> Result<Vec<String>> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            _ => self.str_list(key),
        }
    }
}

/// Reads `config.<key>`: a string holding a JSON object (as Pterodactyl stores it) or a plain
/// object. Missing, `null` and blank strings are empty. Keys keep their document order.
pub(super) fn embedded(config: &Obj<'_>, key: &str) -> Result<Vec<(String, Value)>> {
    let path = config.at(key);
    match config.get(key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => {
            let value: Value = serde_json::from_str(s)
                .map_err(|e| EggError::invalid(&path, format!("is not valid JSON: {e}")))?;
            if !value.is_object() {
                return Err(EggError::invalid(
                    &path,
                    format!("must encode a JSON object, found {}", kind(&value)),
                ));
            }
            let ordered: OrderedObject = serde_json::from_str(s)
                .map_err(|e| EggError::invalid(&path, format!("is not valid JSON: {e}")))?;
            Ok(ordered.0)
        }
        Some(Value::Object(map)) => Ok(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Some(other) => Err(EggError::invalid(
            path,
            format!(
                "must be a JSON object or a string containing one, found {}",
                kind(other)
            ),
        )),
    }
}
