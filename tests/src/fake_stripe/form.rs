//! Stripe's request encoding: `application/x-www-form-urlencoded` bodies (query strings
//! for `GET` and `DELETE`) whose keys nest with brackets — `metadata[org_id]=o1`,
//! `line_items[0][price]=price_1`, `expand[]=data.customer` — decoded into a JSON tree
//! (objects whose keys are all indexes become arrays), every leaf a string as sent.

use serde_json::{Map, Value};

/// A request's parameters: the pairs as sent and their decoded tree.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub pairs: Vec<(String, String)>,
    pub tree: Map<String, Value>,
}

impl Params {
    /// Decodes `a=1&b[c]=2`.
    #[must_use]
    pub fn parse(encoded: &[u8]) -> Self {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(encoded)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut root = Value::Object(Map::new());
        for (key, value) in &pairs {
            insert(&mut root, &path_of(key), value);
        }
        let tree = match arrays(root) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self { pairs, tree }
    }

    /// The pairs sorted: two requests with the same parameters compare equal.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let mut pairs = self.pairs.clone();
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A value by path, as `get(&["line_items", "0", "price"])`.
    #[must_use]
    pub fn get(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut at = self.tree.get(*first)?;
        for part in rest {
            at = match at {
                Value::Object(map) => map.get(*part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }

    /// A string leaf by path.
    #[must_use]
    pub fn str(&self, path: &[&str]) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    /// The first top-level key not in `allowed` (`expand` is always allowed).
    #[must_use]
    pub fn unknown(&self, allowed: &[&str]) -> Option<String> {
        self.tree
            .keys()
            .find(|k| k.as_str() != "expand" && !allowed.contains(&k.as_str()))
            .cloned()
    }
}

/// `a[b][0][]` → `["a", "b", "0", ""]`.
fn path_of(key: &str) -> Vec<String> {
    let Some(open) = key.find('[') else {
        return vec![key.to_owned()];
    };
    let mut parts = vec![key[..open].to_owned()];
    let mut rest = &key[open..];
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            break;
        };
        parts.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
    }
    parts
}

fn insert(at: &mut Value, path: &[String], value: &str) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Value::Object(map) = at else {
        return;
    };
    // `a[]=x` appends: give it the next free index.
    let key = if first.is_empty() {
        map.len().to_string()
    } else {
        first.clone()
    };
    if rest.is_empty() {
        map.insert(key, Value::String(value.to_owned()));
        return;
    }
    let child = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    insert(child, rest, value);
}

/// Objects whose keys are all indexes become arrays, in index order.
fn arrays(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let indexed = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if indexed {
                let mut items: Vec<(usize, Value)> = map
                    .into_iter()
                    .map(|(k, v)| (k.parse::<usize>().unwrap_or(0), arrays(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect())
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::Params;
    use serde_json::json;

    #[test]
    fn brackets_nest_and_indexes_make_arrays() {
        let p = Params::parse(
            b"mode=subscription&line_items[0][price]=price_1&line_items[0][quantity]=1\
              &metadata[org_id]=o1&expand[]=a&expand[]=b&subscription_data[metadata][plan]=pro",
        );
        assert_eq!(p.str(&["line_items", "0", "price"]), Some("price_1"));
        assert_eq!(p.tree["expand"], json!(["a", "b"]));
        assert_eq!(p.tree["metadata"], json!({"org_id": "o1"}));
        assert_eq!(
            p.str(&["subscription_data", "metadata", "plan"]),
            Some("pro")
        );
        assert_eq!(
            p.unknown(&["mode", "line_items", "metadata"]).as_deref(),
            Some("subscription_data")
        );
    }
}
