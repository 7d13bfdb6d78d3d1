//! Column decoding shared by every store, written once: rows become structs through
//! `#[derive(sqlx::FromRow)]`, and the few column conventions the `Any` driver cannot
//! decode by itself (see the module doc of [`crate::db`]) are the types here, named in a
//! field's `#[sqlx(try_from = "...")]`:
//!
//! - [`Flag`]: a boolean stored as BIGINT 0/1 (`#[sqlx(try_from = "Flag")] locked: bool`);
//! - [`IsSet`]: a nullable column read as whether it holds a value
//!   (`#[sqlx(rename = "suspended_at", try_from = "IsSet")] suspended: bool`);
//! - [`JsonText`]: JSON stored as TEXT (`#[sqlx(try_from = "JsonText")] v: BTreeMap<..>`).
//!
//! Enums stored as TEXT implement `TryFrom<String>` next to the enum and use
//! `#[sqlx(try_from = "String")]`; unsigned integers stored as BIGINT use
//! `#[sqlx(try_from = "i64")]`. A stored value that does not decode is a decode error
//! naming the column, never a panic.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use sqlx::any::{AnyTypeInfo, AnyTypeInfoKind, AnyValueRef};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Any, Decode, Encode, Type, ValueRef};

/// A boolean column, stored as BIGINT 0/1 on both engines (any non-zero value is true).
/// Reads a real boolean too, should an expression hand one over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        ty.kind().is_integer() || ty.kind() == AnyTypeInfoKind::Bool
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.type_info().kind() == AnyTypeInfoKind::Bool {
            return <bool as Decode<Any>>::decode(value).map(Self);
        }
        <i64 as Decode<Any>>::decode(value).map(|n| Self(n != 0))
    }
}

impl Encode<'_, Any> for Flag {
    fn encode_by_ref(
        &self,
        buf: &mut <Any as sqlx::Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<Any>>::encode_by_ref(&i64::from(self.0), buf)
    }
}

impl From<Flag> for bool {
    fn from(flag: Flag) -> Self {
        flag.0
    }
}

impl From<bool> for Flag {
    fn from(b: bool) -> Self {
        Self(b)
    }
}

/// Whether a nullable column holds a value, whatever its type (`revoked_at` → revoked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsSet(pub bool);

impl Type<Any> for IsSet {
    fn type_info() -> AnyTypeInfo {
        <i64 as Type<Any>>::type_info()
    }

    fn compatible(_: &AnyTypeInfo) -> bool {
        true
    }
}

impl<'r> Decode<'r, Any> for IsSet {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(!value.is_null()))
    }
}

impl From<IsSet> for bool {
    fn from(set: IsSet) -> Self {
        set.0
    }
}

/// A JSON document stored as TEXT; a field of any deserializable type reads it through
/// `TryFrom<JsonText>` (implemented here for the shapes the stores hold, and next to a
/// type that parses its own way, like a workload's egg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(pub String);

impl JsonText {
    /// Parses the text as `T`.
    ///
    /// # Errors
    /// Text that is not a JSON `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl Type<Any> for JsonText {
    fn type_info() -> AnyTypeInfo {
        <String as Type<Any>>::type_info()
    }
}

impl<'r> Decode<'r, Any> for JsonText {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        <String as Decode<Any>>::decode(value).map(Self)
    }
}

impl<T: DeserializeOwned> TryFrom<JsonText> for Vec<T> {
    type Error = serde_json::Error;

    fn try_from(text: JsonText) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl<K: DeserializeOwned + Ord, V: DeserializeOwned> TryFrom<JsonText> for BTreeMap<K, V> {
    type Error = serde_json::Error;

    fn try_from(text: JsonText) -> Result<Self, Self::Error> {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sqlx::{AnyConnection, Connection, FromRow};

    use super::{Flag, IsSet, JsonText};

    #[derive(Debug, FromRow)]
    struct Sample {
        #[sqlx(try_from = "Flag")]
        flag: bool,
        #[sqlx(try_from = "IsSet")]
        stamped: bool,
        #[sqlx(try_from = "JsonText")]
        list: Vec<u32>,
        #[sqlx(try_from = "JsonText")]
        map: BTreeMap<String, String>,
    }

    async fn sqlite() -> AnyConnection {
        sqlx::any::install_default_drivers();
        AnyConnection::connect("sqlite::memory:")
            .await
            .expect("in-memory sqlite")
    }

    async fn sample(conn: &mut AnyConnection, select: &'static str) -> Result<Sample, sqlx::Error> {
        sqlx::query_as::<_, Sample>(select).fetch_one(conn).await
    }

    #[tokio::test]
    async fn flags_sets_and_json_decode_from_sqlite() {
        let mut conn = sqlite().await;
        let row = sample(
            &mut conn,
            r#"SELECT 1 AS flag, 5 AS stamped, '[1,2]' AS list, '{"a":"b"}' AS map"#,
        )
        .await
        .expect("decodes");
        assert!(row.flag && row.stamped);
        assert_eq!(row.list, [1, 2]);
        assert_eq!(row.map.get("a").map(String::as_str), Some("b"));

        let row = sample(
            &mut conn,
            "SELECT CAST(0 AS BIGINT) AS flag, NULL AS stamped, '[]' AS list, '{}' AS map",
        )
        .await
        .expect("decodes");
        assert!(!row.flag && !row.stamped && row.list.is_empty() && row.map.is_empty());

        let row = sample(
            &mut conn,
            "SELECT -7 AS flag, 'x' AS stamped, '[]' AS list, '{}' AS map",
        )
        .await
        .expect("decodes");
        assert!(row.flag, "any non-zero value is true");
    }

    #[tokio::test]
    async fn values_that_do_not_decode_are_errors_naming_the_column() {
        let mut conn = sqlite().await;
        for (select, column) in [
            (
                "SELECT 'yes' AS flag, 1 AS stamped, '[]' AS list, '{}' AS map",
                "flag",
            ),
            (
                "SELECT NULL AS flag, 1 AS stamped, '[]' AS list, '{}' AS map",
                "flag",
            ),
            (
                "SELECT 1 AS flag, 1 AS stamped, '[x' AS list, '{}' AS map",
                "list",
            ),
            (
                "SELECT 1 AS flag, 1 AS stamped, '[-1]' AS list, '{}' AS map",
                "list",
            ),
            (
                "SELECT 1 AS flag, 1 AS stamped, '[]' AS list, 3 AS map",
                "map",
            ),
        ] {
            let err = sample(&mut conn, select).await.expect_err(select);
            assert!(
                matches!(&err, sqlx::Error::ColumnDecode { index, .. } if index.contains(column)),
                "{select}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_flag_binds_as_zero_or_one() {
        let mut conn = sqlite().await;
        let stored: (i64, i64) = sqlx::query_as("SELECT $1, $2")
            .bind(Flag(true))
            .bind(Flag(false))
            .fetch_one(&mut conn)
            .await
            .expect("binds");
        assert_eq!(stored, (1, 0));
    }
}
