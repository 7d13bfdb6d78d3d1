//! Reading one Application API object's `attributes` leniently: PHP answers integers as
//! numbers or numeric strings and booleans as `true`, `1` or `"1"` depending on the
//! panel's version and database driver. A field that is missing or of a shape no
//! Pterodactyl sends is a [`SourceError::Protocol`] naming the object.

use serde_json::{Map, Value};

use crate::pterodactyl::model::SourceError;

/// One object's attributes and what to call it in errors (`server 12`).
#[derive(Debug, Clone)]
pub(super) struct Attrs<'a> {
    map: Option<&'a Map<String, Value>>,
    what: String,
}

impl<'a> Attrs<'a> {
    /// `value`'s fields (none when it is not an object), named `what` and its `id`.
    pub(super) fn new(value: &'a Value, what: &str) -> Self {
        let map = value.as_object();
        let what = match map.and_then(|m| m.get("id")) {
            Some(Value::Number(n)) => format!("{what} {n}"),
            Some(Value::String(s)) => format!("{what} {s}"),
            _ => what.to_owned(),
        };
        Self { map, what }
    }

    /// The field, when present and not null.
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    pub(super) fn missing(&self, key: &str) -> SourceError {
        SourceError::Protocol(format!("{} has no `{key}`", self.what))
    }

    fn wrong(&self, key: &str, expected: &str) -> SourceError {
        SourceError::Protocol(format!("{}: `{key}` is not {expected}", self.what))
    }

    pub(super) fn opt_int(&self, key: &str) -> Result<Option<i64>, SourceError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.wrong(key, "an integer")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.wrong(key, "an integer")),
            Some(_) => Err(self.wrong(key, "an integer")),
        }
    }

    pub(super) fn int(&self, key: &str) -> Result<i64, SourceError> {
        self.opt_int(key)?.ok_or_else(|| self.missing(key))
    }

    pub(super) fn port(&self, key: &str) -> Result<Option<u16>, SourceError> {
        self.opt_int(key)?
            .map(|p| u16::try_from(p).map_err(|_| self.wrong(key, "a port")))
            .transpose()
    }

    pub(super) fn opt_string(&self, key: &str) -> Result<Option<String>, SourceError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.wrong(key, "a string")),
        }
    }

    pub(super) fn string(&self, key: &str) -> Result<String, SourceError> {
        self.opt_string(key)?.ok_or_else(|| self.missing(key))
    }

    /// A string, number or boolean as text (`true` is `1`, as PHP prints it).
    pub(super) fn opt_scalar(&self, key: &str) -> Result<Option<String>, SourceError> {
        match self.get(key) {
            Some(Value::Bool(b)) => Ok(Some(if *b { "1" } else { "0" }.to_owned())),
            _ => self.opt_string(key),
        }
    }

    /// A boolean; missing is `false`.
    pub(super) fn flag(&self, key: &str) -> Result<bool, SourceError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if matches!(n.as_i64(), Some(0 | 1)) => {
                Ok(n.as_i64() == Some(1))
            }
            Some(Value::String(s)) if matches!(s.as_str(), "" | "0" | "1" | "true" | "false") => {
                Ok(s == "1" || s == "true")
            }
            Some(_) => Err(self.wrong(key, "a boolean")),
        }
    }

    /// A list of strings; missing is empty.
    pub(super) fn string_list(&self, key: &str) -> Result<Vec<String>, SourceError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| self.wrong(key, "a list of strings"))
                })
                .collect(),
            Some(_) => Err(self.wrong(key, "a list of strings")),
        }
    }

    /// A nested object (`limits`, `container`); missing is empty.
    pub(super) fn object(&self, key: &str) -> Result<Attrs<'a>, SourceError> {
        Ok(self.opt_object(key)?.unwrap_or_else(|| Attrs {
            map: None,
            what: format!("{}.{key}", self.what),
        }))
    }

    pub(super) fn opt_object(&self, key: &str) -> Result<Option<Attrs<'a>>, SourceError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Attrs {
                map: Some(map),
                what: format!("{}.{key}", self.what),
            })),
            // PHP encodes an empty associative array as `[]`.
            Some(Value::Array(items)) if items.is_empty() => Ok(None),
            Some(_) => Err(self.wrong(key, "an object")),
        }
    }

    /// The raw field (for values copied into an egg document as they are).
    pub(super) fn raw(&self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }

    /// The object's keys, in the order serde_json keeps them.
    pub(super) fn keys(&self) -> impl Iterator<Item = &'a String> {
        self.map.into_iter().flat_map(Map::keys)
    }
}

/// The items of `attributes.relationships.{name}` (an included list), or `None` when it
/// was not included or is Pterodactyl's `null_resource`.
pub(super) fn relationship<'a>(
    a: &Attrs<'a>,
    name: &str,
) -> Result<Option<Vec<Attrs<'a>>>, SourceError> {
    let Some(rel) = a.get("relationships").and_then(|r| r.get(name)) else {
        return Ok(None);
    };
    if rel.get("object").and_then(Value::as_str) == Some("null_resource") {
        return Ok(None);
    }
    let Some(Value::Array(items)) = rel.get("data") else {
        return Err(SourceError::Protocol(format!(
            "{}: `relationships.{name}` is not a list",
            a.what
        )));
    };
    items
        .iter()
        .map(|item| match item.get("attributes") {
            Some(attrs @ Value::Object(_)) => Ok(Attrs::new(attrs, name)),
            _ => Err(SourceError::Protocol(format!(
                "{}: an item of `relationships.{name}` has no `attributes`",
                a.what
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
