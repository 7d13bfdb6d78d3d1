//! Eggs from the `nests`, `eggs` and `egg_variables` tables, with Pterodactyl's
//! inheritance resolved, each written as the PTDL_v2 document the panel's own "Export"
//! would give (and `POST /v1/workloads/import-egg` takes).
//!
//! Inheritance as Pterodactyl's `Egg` model does it: a `NULL` config field
//! (`config_files`, `config_startup`, `config_logs`, `config_stop`, `file_denylist`,
//! `features`) is taken from the `config_from` egg, a `NULL` script field
//! (`script_install`, `script_entry`, `script_container`) from the `copy_script_from`
//! egg. Chains are followed (Pterodactyl itself stops after one step, where a chained
//! value would be `NULL`), cycles are cut.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sqlx::mysql::MySqlConnection;

use super::rows::{Columns, Keyed};
use super::{group, paged};
use crate::pterodactyl::model::{Egg, SourceError};

/// Eggs and, by egg id, their variables (for the servers' values).
pub(super) struct EggSet {
    pub(super) eggs: Vec<Egg>,
    pub(super) variables: BTreeMap<i64, Vec<VariableRow>>,
}

#[derive(sqlx::FromRow)]
struct NestRow {
    id: i64,
    name: String,
}

#[derive(sqlx::FromRow, Clone)]
struct EggRow {
    id: i64,
    uuid: String,
    nest_id: i64,
    author: Option<String>,
    name: String,
    description: Option<String>,
    features: Option<String>,
    docker_images: Option<String>,
    docker_image: Option<String>,
    file_denylist: Option<String>,
    update_url: Option<String>,
    config_files: Option<String>,
    config_startup: Option<String>,
    config_logs: Option<String>,
    config_stop: Option<String>,
    config_from: Option<i64>,
    startup: Option<String>,
    script_container: Option<String>,
    script_entry: Option<String>,
    script_install: Option<String>,
    copy_script_from: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(super) struct VariableRow {
    pub(super) id: i64,
    egg_id: i64,
    name: String,
    description: Option<String>,
    pub(super) env_variable: String,
    pub(super) default_value: String,
    user_viewable: i64,
    user_editable: i64,
    rules: Option<String>,
}

impl Keyed for NestRow {
    fn key(&self) -> i64 {
        self.id
    }
}
impl Keyed for EggRow {
    fn key(&self) -> i64 {
        self.id
    }
}
impl Keyed for VariableRow {
    fn key(&self) -> i64 {
        self.id
    }
}

pub(super) async fn read(
    db: &mut MySqlConnection,
    columns: &Columns,
) -> Result<EggSet, SourceError> {
    let nests: Vec<NestRow> =
        paged(db, "CAST(id AS SIGNED) AS id, name", "nests", "id", None).await?;
    let nests: BTreeMap<i64, String> = nests.into_iter().map(|n| (n.id, n.name)).collect();
    let select = format!(
        "CAST(id AS SIGNED) AS id, uuid, CAST(nest_id AS SIGNED) AS nest_id, author, name, \
         description, {features} AS features, {images} AS docker_images, \
         {image} AS docker_image, {denylist} AS file_denylist, {update_url} AS update_url, \
         config_files, config_startup, config_logs, config_stop, \
         CAST(config_from AS SIGNED) AS config_from, startup, script_container, script_entry, \
         script_install, CAST(copy_script_from AS SIGNED) AS copy_script_from",
        features = columns.or("eggs", "features", "CAST(features AS CHAR)", "NULL"),
        images = columns.or(
            "eggs",
            "docker_images",
            "CAST(docker_images AS CHAR)",
            "NULL"
        ),
        image = columns.or("eggs", "docker_image", "docker_image", "NULL"),
        denylist = columns.or(
            "eggs",
            "file_denylist",
            "CAST(file_denylist AS CHAR)",
            "NULL"
        ),
        update_url = columns.or("eggs", "update_url", "update_url", "NULL"),
    );
    let rows: Vec<EggRow> = paged(db, &select, "eggs", "id", None).await?;
    let variables: Vec<VariableRow> = paged(
        db,
        "CAST(id AS SIGNED) AS id, CAST(egg_id AS SIGNED) AS egg_id, name, description, \
         env_variable, COALESCE(default_value, '') AS default_value, \
         CAST(user_viewable AS SIGNED) AS user_viewable, \
         CAST(user_editable AS SIGNED) AS user_editable, rules",
        "egg_variables",
        "id",
        None,
    )
    .await?;
    let variables = group(variables.into_iter().map(|v| (v.egg_id, v)));
    let by_id: BTreeMap<i64, EggRow> = rows.iter().map(|r| (r.id, r.clone())).collect();
    let eggs = rows
        .iter()
        .map(|r| {
            let resolved = resolve(r, &by_id);
            Egg {
                id: r.id,
                uuid: r.uuid.clone(),
                nest_id: r.nest_id,
                nest_name: nests.get(&r.nest_id).cloned().unwrap_or_default(),
                name: r.name.clone(),
                ptdl: ptdl(
                    &resolved,
                    variables.get(&r.id).map_or(&[][..], Vec::as_slice),
                ),
            }
        })
        .collect();
    Ok(EggSet { eggs, variables })
}

/// `egg` with its `NULL` fields filled from the eggs it inherits from.
fn resolve(egg: &EggRow, by_id: &BTreeMap<i64, EggRow>) -> EggRow {
    let mut out = egg.clone();
    let mut seen = vec![egg.id];
    let mut from = egg.config_from;
    while let Some(parent) = from.and_then(|id| by_id.get(&id)) {
        if seen.contains(&parent.id) {
            break;
        }
        seen.push(parent.id);
        for (field, inherited) in [
            (&mut out.config_files, &parent.config_files),
            (&mut out.config_startup, &parent.config_startup),
            (&mut out.config_logs, &parent.config_logs),
            (&mut out.config_stop, &parent.config_stop),
            (&mut out.file_denylist, &parent.file_denylist),
            (&mut out.features, &parent.features),
        ] {
            if field.is_none() {
                field.clone_from(inherited);
            }
        }
        from = parent.config_from;
    }
    let mut seen = vec![egg.id];
    let mut from = egg.copy_script_from;
    while let Some(parent) = from.and_then(|id| by_id.get(&id)) {
        if seen.contains(&parent.id) {
            break;
        }
        seen.push(parent.id);
        for (field, inherited) in [
            (&mut out.script_install, &parent.script_install),
            (&mut out.script_entry, &parent.script_entry),
            (&mut out.script_container, &parent.script_container),
        ] {
            if field.is_none() {
                field.clone_from(inherited);
            }
        }
        from = parent.copy_script_from;
    }
    out
}

/// A JSON column's value; text that is not JSON is kept as a string, so the egg parser
/// refuses that egg (naming the field) rather than the whole read failing.
fn json_column(raw: Option<&str>) -> Value {
    match raw.map(str::trim) {
        None | Some("") => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())),
    }
}

/// `docker_images` as a map of label to image: 1.x before 1.8 stored a list (each image
/// its own label, as Pterodactyl's own migration did), 0.7 a single `docker_image`.
fn docker_images(egg: &EggRow) -> Value {
    match json_column(egg.docker_images.as_deref()) {
        Value::Array(list) => Value::Object(
            list.into_iter()
                .map(|v| match v {
                    Value::String(s) => (s.clone(), Value::String(s)),
                    other => (other.to_string(), other),
                })
                .collect(),
        ),
        Value::Null => match egg.docker_image.as_deref().filter(|s| !s.is_empty()) {
            Some(image) => Value::Object(Map::from_iter([(image.to_owned(), Value::from(image))])),
            None => Value::Null,
        },
        other => other,
    }
}

/// The PTDL_v2 export document of a resolved egg.
fn ptdl(egg: &EggRow, variables: &[VariableRow]) -> Value {
    let variables: Vec<Value> = variables
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "description": v.description.clone().unwrap_or_default(),
                "env_variable": v.env_variable,
                "default_value": v.default_value,
                "user_viewable": v.user_viewable != 0,
                "user_editable": v.user_editable != 0,
                "rules": v.rules.clone().unwrap_or_default(),
                "field_type": "text",
            })
        })
        .collect();
    let text_or_empty = |s: &Option<String>| s.clone().unwrap_or_else(|| "{}".into());
    let mut doc = Map::new();
    doc.insert(
        "_comment".into(),
        "Read from a Pterodactyl panel's database by Shardlyn's import".into(),
    );
    doc.insert(
        "meta".into(),
        json!({"version": "PTDL_v2", "update_url": egg.update_url}),
    );
    doc.insert("name".into(), egg.name.clone().into());
    doc.insert(
        "author".into(),
        egg.author.clone().unwrap_or_default().into(),
    );
    doc.insert(
        "description".into(),
        egg.description.clone().unwrap_or_default().into(),
    );
    doc.insert("features".into(), json_column(egg.features.as_deref()));
    doc.insert("docker_images".into(), docker_images(egg));
    doc.insert(
        "file_denylist".into(),
        json_column(egg.file_denylist.as_deref()),
    );
    doc.insert(
        "startup".into(),
        egg.startup.clone().unwrap_or_default().into(),
    );
    doc.insert(
        "config".into(),
        json!({
            "files": text_or_empty(&egg.config_files),
            "startup": text_or_empty(&egg.config_startup),
            "logs": text_or_empty(&egg.config_logs),
            "stop": egg.config_stop,
        }),
    );
    doc.insert(
        "scripts".into(),
        json!({"installation": {
            "script": egg.script_install.clone().unwrap_or_default(),
            "container": egg.script_container.clone().unwrap_or_default(),
            "entrypoint": egg.script_entry.clone().unwrap_or_default(),
        }}),
    );
    doc.insert("variables".into(), Value::Array(variables));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn egg(id: i64) -> EggRow {
        EggRow {
            id,
            uuid: format!("uuid-{id}"),
            nest_id: 1,
            author: Some("a@example.com".into()),
            name: format!("Egg {id}"),
            description: None,
            features: None,
            docker_images: Some(r#"{"Java 17":"ghcr.io/pterodactyl/yolks:java_17"}"#.into()),
            docker_image: None,
            file_denylist: Some("[]".into()),
            update_url: None,
            config_files: None,
            config_startup: None,
            config_logs: None,
            config_stop: None,
            config_from: None,
            startup: Some("java -jar {{SERVER_JARFILE}}".into()),
            script_container: None,
            script_entry: None,
            script_install: None,
            copy_script_from: None,
        }
    }

    #[test]
    fn null_fields_come_from_the_parents_and_cycles_stop() {
        let mut parent = egg(1);
        parent.config_files =
            Some(r#"{"server.properties":{"parser":"properties","find":{}}}"#.into());
        parent.config_stop = Some("stop".into());
        parent.script_install = Some("echo hi".into());
        parent.script_entry = Some("bash".into());
        parent.config_from = Some(2);
        let mut child = egg(2);
        child.config_from = Some(1);
        child.copy_script_from = Some(1);
        child.config_stop = Some("^C".into());
        let by_id: BTreeMap<i64, EggRow> = [(1, parent), (2, child.clone())].into();
        let r = resolve(&child, &by_id);
        assert_eq!(r.config_stop.as_deref(), Some("^C"));
        assert!(
            r.config_files
                .as_deref()
                .unwrap()
                .contains("server.properties")
        );
        assert_eq!(r.script_install.as_deref(), Some("echo hi"));
        assert_eq!(r.script_entry.as_deref(), Some("bash"));
        let doc = ptdl(&r, &[]);
        let parsed = shardlyn_proto::egg::parse_egg(&doc.to_string()).unwrap();
        assert_eq!(parsed.config.files.len(), 1);
        assert_eq!(parsed.install.script, "echo hi");
    }

    #[test]
    fn both_image_shapes_become_a_map() {
        let mut e = egg(1);
        e.docker_images = Some(r#"["quay.io/a:1","quay.io/b:2"]"#.into());
        assert_eq!(
            docker_images(&e),
            json!({"quay.io/a:1": "quay.io/a:1", "quay.io/b:2": "quay.io/b:2"})
        );
        e.docker_images = None;
        e.docker_image = Some("quay.io/old:0.7".into());
        assert_eq!(
            docker_images(&e),
            json!({"quay.io/old:0.7": "quay.io/old:0.7"})
        );
        e.docker_images = Some("not json".into());
        assert_eq!(docker_images(&e), json!("not json"));
    }
}
