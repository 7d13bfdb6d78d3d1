//! The `json` and `yaml`/`yml` parsers: both edit one ordered tree
//! (`serde_yaml_ng::Value`, whose mappings keep file order; JSON is read into it through
//! serde so a JSON file keeps its key order too).
//!
//! A `find` key is a dotted path: `a.b.c`, array elements as `listeners[0].host` or
//! `listeners.0.host`, and `*` for every element of an array or value of a map
//! (`servers.*.address`); unlike Wings, several `*` may appear. Missing maps and keys on
//! the path are created for unconditional values (an array only as its element 0, as
//! Wings does); conditional values only touch existing keys.
//!
//! Types are kept: a replacement of a current boolean stays a boolean when it reads
//! `true`/`false`, a current number stays a number when the text is numeric, and a
//! current string stays a string (a Discord id stays a string rather than becoming a
//! number that JavaScript would round). A new key gets the egg's own JSON type, else
//! Wings' coercion: `true`/`false` become booleans and canonical integers numbers.
//!
//! The file is only rewritten when a value actually changed. YAML comments are lost on
//! rewrite, as with Wings: no maintained Rust YAML library round-trips them.

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Number, Value};

use super::Error;
use super::replacement::{NewValue, Replacement};

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    Any,
}

fn parse_path(key: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in key.split('.') {
        if part == "*" {
            segs.push(Seg::Any);
            continue;
        }
        let (name, mut rest) = match part.find('[') {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        if !name.is_empty() {
            segs.push(Seg::Key(name.to_owned()));
        }
        // `name[0][1]`: trailing indexes; anything unparsable stays part of a key.
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = inner.find(']') else {
                segs.push(Seg::Key(rest.to_owned()));
                break;
            };
            let index = &inner[..close];
            if index == "*" {
                segs.push(Seg::Any);
            } else if let Ok(i) = index.parse() {
                segs.push(Seg::Index(i));
            } else {
                segs.push(Seg::Key(format!("[{index}]")));
            }
            rest = &inner[close + 1..];
        }
    }
    segs
}

pub(crate) fn edit_yaml(content: &str, replacements: &[Replacement]) -> Result<String, Error> {
    let original: Value = if content.trim().is_empty() {
        Value::Null
    } else {
        serde_yaml_ng::from_str(content).map_err(|e| Error::malformed("yaml", &e))?
    };
    let mut doc = original.clone();
    apply_all(&mut doc, replacements);
    if doc == original && !content.trim().is_empty() {
        return Ok(content.to_owned());
    }
    serde_yaml_ng::to_string(&doc).map_err(|e| Error::malformed("yaml", &e))
}

pub(crate) fn edit_json(content: &str, replacements: &[Replacement]) -> Result<String, Error> {
    let original: Value = if content.trim().is_empty() {
        Value::Mapping(Mapping::new())
    } else {
        let mut de = serde_json::Deserializer::from_str(content);
        let value = Value::deserialize(&mut de).map_err(|e| Error::malformed("json", &e))?;
        de.end().map_err(|e| Error::malformed("json", &e))?;
        value
    };
    let mut doc = original.clone();
    apply_all(&mut doc, replacements);
    if doc == original && !content.trim().is_empty() {
        return Ok(content.to_owned());
    }
    let indent = detect_indent(content);
    let mut out = Vec::with_capacity(content.len() + 64);
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&doc, &mut ser).map_err(|e| Error::malformed("json", &e))?;
    let mut text = String::from_utf8(out).map_err(|e| Error::malformed("json", &e))?;
    text.push('\n');
    Ok(text)
}

/// The indentation of the first indented line, else two spaces.
fn detect_indent(content: &str) -> String {
    content
        .lines()
        .map(|line| &line[..line.len() - line.trim_start_matches([' ', '\t']).len()])
        .find(|indent| !indent.is_empty())
        .unwrap_or("  ")
        .to_owned()
}

fn apply_all(doc: &mut Value, replacements: &[Replacement]) {
    for rep in replacements {
        let path = parse_path(&rep.key);
        if path.is_empty() {
            continue;
        }
        set_at(doc, &path, rep, true);
    }
}

/// Applies `rep` at `path` below `node`; `existed` is false for a node just created.
/// Returns whether anything was set (a created branch is kept only then).
fn set_at(node: &mut Value, path: &[Seg], rep: &Replacement, existed: bool) -> bool {
    let Some((first, rest)) = path.split_first() else {
        let current = existed.then_some(&*node);
        return match typed_value(rep, current) {
            Some(value) => {
                *node = value;
                true
            }
            None => false,
        };
    };
    match first {
        Seg::Any => match node {
            Value::Mapping(map) => map
                .values_mut()
                .fold(false, |any, child| set_at(child, rest, rep, true) | any),
            Value::Sequence(seq) => seq
                .iter_mut()
                .fold(false, |any, child| set_at(child, rest, rep, true) | any),
            _ => false,
        },
        Seg::Index(i) => set_index(node, *i, rest, rep),
        Seg::Key(key) => {
            if let (Value::Sequence(_), Ok(i)) = (&*node, key.parse::<usize>()) {
                return set_index(node, i, rest, rep);
            }
            if node.is_null() && rep.creates() {
                *node = Value::Mapping(Mapping::new());
            }
            let Value::Mapping(map) = node else {
                return false;
            };
            if let Some(child) = lookup_mut(map, key) {
                return set_at(child, rest, rep, true);
            }
            if !rep.creates() {
                return false;
            }
            let mut child = Value::Null;
            let set = set_at(&mut child, rest, rep, false);
            if set {
                map.insert(Value::String(key.clone()), child);
            }
            set
        }
    }
}

fn set_index(node: &mut Value, i: usize, rest: &[Seg], rep: &Replacement) -> bool {
    if node.is_null() && rep.creates() && i == 0 {
        *node = Value::Sequence(Vec::new());
    }
    let Value::Sequence(seq) = node else {
        return false;
    };
    if let Some(child) = seq.get_mut(i) {
        return set_at(child, rest, rep, true);
    }
    if !rep.creates() || i != 0 || !seq.is_empty() {
        return false;
    }
    let mut child = Value::Null;
    let set = set_at(&mut child, rest, rep, false);
    if set {
        seq.push(child);
    }
    set
}

/// A map entry by string key, or by a scalar key that prints the same (`25565:`).
fn lookup_mut<'a>(map: &'a mut Mapping, key: &str) -> Option<&'a mut Value> {
    let wanted = Value::String(key.to_owned());
    if map.contains_key(&wanted) {
        return map.get_mut(&wanted);
    }
    map.iter_mut()
        .find(|(k, _)| scalar_text(k).as_deref() == Some(key))
        .map(|(_, v)| v)
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// The value to store, or `None` when the condition leaves the key alone.
fn typed_value(rep: &Replacement, current: Option<&Value>) -> Option<Value> {
    let current_text = current.map(|value| scalar_text(value).unwrap_or_default());
    if rep.when.is_some() && current.is_some_and(|v| scalar_text(v).is_none()) {
        // A condition cannot match a map or a list.
        return None;
    }
    let text = rep.new_text(current_text.as_deref())?;
    if rep.creates() {
        match &rep.value {
            NewValue::Bool(b) => return Some(Value::Bool(*b)),
            NewValue::Number(n) => {
                return Some(json_number(n).map_or(Value::String(text), Value::Number));
            }
            NewValue::Text(_) => {}
        }
    }
    Some(match current {
        Some(Value::Bool(_)) => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        Some(Value::Number(_)) => loose_number(&text).map_or(Value::String(text), Value::Number),
        Some(Value::String(_)) => Value::String(text),
        _ => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => canonical_integer(&text).map_or(Value::String(text), Value::Number),
        },
    })
}

fn json_number(n: &serde_json::Number) -> Option<Number> {
    if let Some(i) = n.as_i64() {
        Some(Number::from(i))
    } else if let Some(u) = n.as_u64() {
        Some(Number::from(u))
    } else {
        n.as_f64().map(Number::from)
    }
}

/// An integer whose text is exactly how it prints (`25565`, not `025565` or `+1`).
fn canonical_integer(text: &str) -> Option<Number> {
    if let Ok(i) = text.parse::<i64>()
        && i.to_string() == text
    {
        return Some(Number::from(i));
    }
    if let Ok(u) = text.parse::<u64>()
        && u.to_string() == text
    {
        return Some(Number::from(u));
    }
    None
}

/// Any finite number, for a value that already was one.
fn loose_number(text: &str) -> Option<Number> {
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return Some(Number::from(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Number::from(u));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| {
            f.is_finite()
                && text
                    .chars()
                    .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        })
        .map(Number::from)
}

#[cfg(test)]
mod tests {
    use super::super::replacement::Condition;
    use super::*;

    fn rep(key: &str, value: NewValue) -> Replacement {
        Replacement {
            key: key.into(),
            when: None,
            value,
        }
    }

    fn text(key: &str, value: &str) -> Replacement {
        rep(key, NewValue::Text(value.into()))
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("listeners[0].host"),
            vec![
                Seg::Key("listeners".into()),
                Seg::Index(0),
                Seg::Key("host".into())
            ]
        );
        assert_eq!(
            parse_path("servers.*.address"),
            vec![
                Seg::Key("servers".into()),
                Seg::Any,
                Seg::Key("address".into())
            ]
        );
        assert_eq!(
            parse_path("a[1][2]"),
            vec![Seg::Key("a".into()), Seg::Index(1), Seg::Index(2)]
        );
    }

    #[test]
    fn json_keeps_order_indent_and_types() {
        let input = "{\n    \"zeta\": 1,\n    \"port\": 7777,\n    \"name\": \"old\",\n    \"flag\": false,\n    \"owner\": \"\"\n}\n";
        let out = edit_json(
            input,
            &[
                text("port", "28015"),
                text("name", "42"),
                text("flag", "true"),
                text("owner", "123456789012345678901"),
                text("new.nested", "5"),
            ],
        )
        .expect("json");
        assert_eq!(
            out,
            "{\n    \"zeta\": 1,\n    \"port\": 28015,\n    \"name\": \"42\",\n    \"flag\": true,\n    \"owner\": \"123456789012345678901\",\n    \"new\": {\n        \"nested\": 5\n    }\n}\n"
        );
    }

    #[test]
    fn yaml_wildcards_arrays_and_regex() {
        let input = "listeners:\n- host: 0.0.0.0:25577\n  query_port: 25577\nservers:\n  lobby:\n    address: localhost:25565\n  other:\n    address: play.example.com:25565\n";
        let regex = Replacement {
            key: "servers.*.address".into(),
            when: Some(Condition::Regex(
                regex::Regex::new(r"^(127\.0\.0\.1|localhost)(:\d{1,5})?$").expect("re"),
            )),
            value: NewValue::Text("172.18.0.1$2".into()),
        };
        let out = edit_yaml(
            input,
            &[
                text("listeners[0].host", "0.0.0.0:30000"),
                text("listeners[0].query_port", "30000"),
                regex,
            ],
        )
        .expect("yaml");
        let doc: Value = serde_yaml_ng::from_str(&out).expect("valid");
        assert_eq!(
            doc["listeners"][0]["host"],
            Value::String("0.0.0.0:30000".into())
        );
        assert_eq!(
            doc["listeners"][0]["query_port"],
            Value::Number(30000.into())
        );
        assert_eq!(
            doc["servers"]["lobby"]["address"],
            Value::String("172.18.0.1:25565".into())
        );
        assert_eq!(
            doc["servers"]["other"]["address"],
            Value::String("play.example.com:25565".into())
        );
    }

    #[test]
    fn missing_file_and_array_creation() {
        let out = edit_yaml(
            "",
            &[
                text("listeners[0].host", "x"),
                rep("a.b", NewValue::Bool(true)),
            ],
        )
        .expect("yaml");
        assert_eq!(out, "listeners:\n- host: x\na:\n  b: true\n");
        assert_eq!(
            edit_json("", &[text("a", "1")]).expect("json"),
            "{\n  \"a\": 1\n}\n"
        );
    }

    #[test]
    fn conditional_does_not_create_and_unchanged_is_verbatim() {
        let input = "# comment\nport: 1\n";
        let only = Replacement {
            key: "missing".into(),
            when: Some(Condition::Equals("x".into())),
            value: NewValue::Text("y".into()),
        };
        assert_eq!(
            edit_yaml(input, &[only, text("port", "1")]).expect("yaml"),
            input
        );
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(edit_json("{\"a\": ", &[text("a", "1")]).is_err());
        assert!(edit_json("{} {}", &[text("a", "1")]).is_err());
        assert!(edit_yaml("a: [1, 2\nb: c: d", &[text("a", "1")]).is_err());
    }
}
