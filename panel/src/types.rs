//! Small value types of the API's request and response bodies, shared by every area:
//! [`Timestamp`] (stored as unix milliseconds, shown as RFC 3339) and [`Message`].

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An answer that is a sentence for people (`{"message": "..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub message: Cow<'static, str>,
}

impl Message {
    /// A fixed sentence.
    #[must_use]
    pub const fn new(message: &'static str) -> Self {
        Self {
            message: Cow::Borrowed(message),
        }
    }
}

/// A point in time: unix milliseconds in the database, an RFC 3339 string (UTC, whole
/// seconds) on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Unix milliseconds.
    #[must_use]
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl From<i64> for Timestamp {
    fn from(ms: i64) -> Self {
        Self(ms)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::db::rfc3339(self.0))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| Self(t.timestamp_millis()))
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time"})
    }
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn round_trips_through_rfc3339_at_second_precision() {
        let t = Timestamp(1_764_783_956_000);
        let text = serde_json::to_string(&t).expect("serializes");
        assert_eq!(text, "\"2025-12-03T17:45:56Z\"");
        let back: Timestamp = serde_json::from_str(&text).expect("parses");
        assert_eq!(back, t);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
