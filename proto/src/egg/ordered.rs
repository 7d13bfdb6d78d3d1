//! Key-order-preserving JSON objects.
//!
//! `serde_json::Value` sorts object keys (the workspace does not enable `preserve_order`),
//! but in eggs the order of `docker_images` (first = default image) and `config.files` is
//! meaningful to users. This module reads and writes such objects as ordered pairs.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// A JSON object as `(key, value)` pairs in document order; a repeated key keeps its first
/// position and its last value, like `json_decode`.
#[derive(Debug, Default)]
pub(crate) struct OrderedObject(pub Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut pairs: Vec<(String, Value)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    match pairs.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => pairs.push((key, value)),
                    }
                }
                Ok(OrderedObject(pairs))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Serializes borrowed `(key, value)` pairs as a JSON object in the given order.
pub(crate) struct OrderedPairs<'a, V: Serialize>(pub Vec<(&'a str, V)>);

impl<V: Serialize> Serialize for OrderedPairs<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Reads the top-level `docker_images` object in document order; `None` when the document
/// or that member is not an object (the caller then reports the problem from a `Value`).
pub(crate) fn ordered_docker_images(json: &str) -> Option<Vec<(String, Value)>> {
    #[derive(serde::Deserialize)]
    struct Top {
        docker_images: Option<OrderedObject>,
    }
    let top: Top = serde_json::from_str(json).ok()?;
    top.docker_images.map(|o| o.0)
}
