//! Reading eggs and the workload shape from requests, with field-level errors.
//!
//! `POST`/`PUT /v1/workloads` accept the shape `GET` answers (see `view.rs`). It is turned
//! into a PTDL_v2 egg document and parsed by `parse_egg`, so variables, rules, images and
//! config files are checked exactly as on import. Only the parts whose structure differs
//! from an egg (`images`, `config.files`, `config.startup`, `install`) are checked here; an
//! error from `parse_egg` is reported at the path of the workload shape.

use serde_json::{Map, Value};
use shardlyn_proto::egg::{Egg, EggError, parse_egg};

use super::ordered::Doc;
use crate::error::{AppError, AppResult};

/// Longest workload name, in characters (Pterodactyl's column is 191).
pub const MAX_NAME_CHARS: usize = 191;

/// Fields of the shape that are shown by `GET` and ignored when sent back.
const READ_ONLY: &[&str] = &[
    "id",
    "organization_id",
    "source",
    "template",
    "created_by",
    "created_at",
    "updated_at",
];

/// Fields of the shape that are the workload's own, beside the egg.
const WORKLOAD_FIELDS: &[&str] = &["dns_srv_service"];

/// Fields of the shape that make up the egg.
const EGG_FIELDS: &[&str] = &[
    "name",
    "description",
    "author",
    "features",
    "images",
    "file_denylist",
    "startup",
    "config",
    "install",
    "variables",
    "comment",
    "update_url",
    "exported_at",
];

/// An egg import failure as a 400 naming the field.
pub fn egg_error(e: &EggError) -> AppError {
    AppError::invalid_field(e.field.clone(), e.to_string())
}

/// Parses an egg document (PTDL_v1 or PTDL_v2) and applies the panel's own limits.
///
/// # Errors
/// 400 `VALIDATION_ERROR` with the offending `field`.
pub fn parse_egg_text(text: &str) -> AppResult<Egg> {
    let egg = parse_egg(text).map_err(|e| egg_error(&e))?;
    check_egg(&egg)?;
    Ok(egg)
}

/// Limits the panel puts on top of the egg format: a name of at most
/// [`MAX_NAME_CHARS`] characters without control characters.
///
/// # Errors
/// 400 on the `name` field.
pub fn check_egg(egg: &Egg) -> AppResult<()> {
    check_name(&egg.name)
}

/// Checks a workload name.
///
/// # Errors
/// 400 on the `name` field.
pub fn check_name(name: &str) -> AppResult<()> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::invalid_field(
            "name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::invalid_field(
            "name",
            "name must not contain control characters",
        ));
    }
    Ok(())
}

/// An optional `organization_id` field of a body: a string or null.
///
/// # Errors
/// 400 for another type.
pub fn organization_field(body: &Value) -> AppResult<Option<String>> {
    match body.get("organization_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AppError::invalid_field(
            "organization_id",
            "organization_id must be a string",
        )),
    }
}

/// Turns the workload shape into an [`Egg`], validated like an import.
///
/// # Errors
/// 400 `VALIDATION_ERROR` naming the field of the shape.
pub fn egg_from_shape(body: &Value) -> AppResult<Egg> {
    let Value::Object(map) = body else {
        return Err(AppError::invalid_field(
            "",
            "expected a workload object with name, images, startup, variables...",
        ));
    };
    for key in map.keys() {
        if !READ_ONLY.contains(&key.as_str())
            && !EGG_FIELDS.contains(&key.as_str())
            && !WORKLOAD_FIELDS.contains(&key.as_str())
        {
            return Err(AppError::invalid_field(
                key.clone(),
                format!("unknown field `{key}`"),
            ));
        }
    }
    let get = |key: &str| Doc::from(map.get(key).cloned().unwrap_or(Value::Null));
    let (config, file_paths) = config(map.get("config"))?;
    let doc = Doc::object(vec![
        ("_comment", get("comment")),
        (
            "meta",
            Doc::object(vec![
                ("version", "PTDL_v2".into()),
                ("update_url", get("update_url")),
            ]),
        ),
        ("exported_at", get("exported_at")),
        ("name", get("name")),
        ("author", get("author")),
        ("description", get("description")),
        ("features", get("features")),
        ("docker_images", images(map.get("images"))?),
        ("file_denylist", get("file_denylist")),
        ("startup", get("startup")),
        ("config", config),
        (
            "scripts",
            Doc::object(vec![("installation", install(map.get("install"))?)]),
        ),
        ("variables", get("variables")),
    ]);
    let egg = parse_egg(&doc.to_json()).map_err(|e| {
        AppError::invalid_field(
            shape_path(&e.field, &file_paths),
            shape_message(&e, &file_paths),
        )
    })?;
    check_egg(&egg)?;
    Ok(egg)
}

/// The body's `dns_srv_service`: left out (`None`), `null` (`Some(None)`: none) or a
/// checked service (`Some(Some("_minecraft._tcp"))`).
///
/// # Errors
/// 400 naming `dns_srv_service`.
pub fn srv_field(body: &Value) -> AppResult<Option<Option<String>>> {
    match body.get("dns_srv_service") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(srv_service(s)?))),
        Some(other) => Err(must_be("dns_srv_service", "a string or null", other)),
    }
}

/// An SRV service and protocol as they lead an SRV record's name: `_service._proto`,
/// the service a DNS label (letters, digits and inner hyphens, 1 to 63 characters) and
/// the protocol `tcp` or `udp`; returned in lower case.
///
/// # Errors
/// 400 naming `dns_srv_service`.
pub fn srv_service(text: &str) -> AppResult<String> {
    let lower = text.trim().to_ascii_lowercase();
    let valid = lower
        .strip_prefix('_')
        .and_then(|rest| rest.split_once("._"))
        .is_some_and(|(service, proto)| {
            (1..=63).contains(&service.len())
                && service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !service.starts_with('-')
                && !service.ends_with('-')
                && (proto == "tcp" || proto == "udp")
        });
    if valid {
        Ok(lower)
    } else {
        Err(AppError::invalid_field(
            "dns_srv_service",
            format!(
                "dns_srv_service: `{}` is not `_service._tcp` or `_service._udp` \
                 (e.g. `_minecraft._tcp`)",
                text.trim()
            ),
        ))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn must_be(field: &str, what: &str, found: &Value) -> AppError {
    AppError::invalid_field(
        field,
        format!("{field}: must be {what}, found {}", type_name(found)),
    )
}

fn only_keys(map: &Map<String, Value>, path: &str, allowed: &[&str]) -> AppResult<()> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(AppError::invalid_field(
            format!("{path}.{key}"),
            format!(
                "{path}.{key}: unknown field (expected {})",
                allowed.join(", ")
            ),
        )),
    }
}

/// `images: [{"label", "image"}]` (or plain image strings) → ordered `docker_images`.
fn images(value: Option<&Value>) -> AppResult<Doc> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Doc::Null),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(must_be("images", "a list of {label, image}", other)),
    };
    let mut pairs: Vec<(String, Doc)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (label, image) = match item {
            Value::String(image) => (image.clone(), image.clone()),
            Value::Object(map) => {
                only_keys(map, &format!("images[{i}]"), &["label", "image"])?;
                let image = match map.get("image") {
                    Some(Value::String(s)) => s.clone(),
                    None | Some(Value::Null) => {
                        return Err(AppError::invalid_field(
                            format!("images[{i}].image"),
                            format!("images[{i}].image: is required"),
                        ));
                    }
                    Some(other) => {
                        return Err(must_be(&format!("images[{i}].image"), "a string", other));
                    }
                };
                let label = match map.get("label") {
                    None | Some(Value::Null) => image.clone(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => {
                        return Err(must_be(&format!("images[{i}].label"), "a string", other));
                    }
                };
                (label, image)
            }
            other => return Err(must_be(&format!("images[{i}]"), "an object", other)),
        };
        if image.trim().is_empty() {
            return Err(AppError::invalid_field(
                format!("images[{i}].image"),
                format!("images[{i}].image: must not be empty"),
            ));
        }
        if pairs.iter().any(|(l, _)| *l == label) {
            return Err(AppError::invalid_field(
                format!("images[{i}].label"),
                format!("images[{i}].label: `{label}` is used by another image"),
            ));
        }
        pairs.push((label, Doc::String(image)));
    }
    Ok(Doc::Object(pairs))
}

/// `config` of the shape → the egg's `config`, plus the config file paths in order.
fn config(value: Option<&Value>) -> AppResult<(Doc, Vec<String>)> {
    let map = match value {
        None | Some(Value::Null) => return Ok((Doc::Null, Vec::new())),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(must_be("config", "an object", other)),
    };
    only_keys(
        map,
        "config",
        &["files", "startup", "logs", "stop", "extends"],
    )?;
    let get = |key: &str| Doc::from(map.get(key).cloned().unwrap_or(Value::Null));
    let (files, paths) = files(map.get("files"))?;
    let startup = match map.get("startup") {
        None | Some(Value::Null) => Doc::Null,
        Some(Value::Object(s)) => {
            only_keys(
                s,
                "config.startup",
                &["done", "user_interaction", "strip_ansi"],
            )?;
            let key = |k: &str| Doc::from(s.get(k).cloned().unwrap_or(Value::Null));
            Doc::object(vec![
                ("done", key("done")),
                ("userInteraction", key("user_interaction")),
                ("strip_ansi", key("strip_ansi")),
            ])
        }
        Some(other) => return Err(must_be("config.startup", "an object", other)),
    };
    let logs = match map.get("logs") {
        None | Some(Value::Null) => Doc::Null,
        Some(Value::Object(l)) => {
            only_keys(l, "config.logs", &["custom", "location"])?;
            Doc::from(Value::Object(l.clone()))
        }
        Some(other) => return Err(must_be("config.logs", "an object", other)),
    };
    let doc = Doc::object(vec![
        ("files", files),
        ("startup", startup),
        ("logs", logs),
        ("stop", get("stop")),
        ("extends", get("extends")),
    ]);
    Ok((doc, paths))
}

/// `config.files: [{"path", "parser", "find"}]` → the egg's ordered object, as the JSON
/// string eggs carry (a string keeps the order through `parse_egg`).
fn files(value: Option<&Value>) -> AppResult<(Doc, Vec<String>)> {
    let items = match value {
        None | Some(Value::Null) => return Ok((Doc::Null, Vec::new())),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(must_be(
                "config.files",
                "a list of {path, parser, find}",
                other,
            ));
        }
    };
    let mut pairs: Vec<(String, Doc)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("config.files[{i}]");
        let Value::Object(map) = item else {
            return Err(must_be(&at, "an object", item));
        };
        only_keys(map, &at, &["path", "parser", "find"])?;
        let path = match map.get("path") {
            Some(Value::String(p)) if !p.trim().is_empty() => p.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(AppError::invalid_field(
                    format!("{at}.path"),
                    format!("{at}.path: is required"),
                ));
            }
            Some(other) => return Err(must_be(&format!("{at}.path"), "a string", other)),
        };
        if pairs.iter().any(|(p, _)| *p == path) {
            return Err(AppError::invalid_field(
                format!("{at}.path"),
                format!("{at}.path: `{path}` is listed twice"),
            ));
        }
        let key = |k: &str| Doc::from(map.get(k).cloned().unwrap_or(Value::Null));
        pairs.push((
            path,
            Doc::object(vec![("parser", key("parser")), ("find", key("find"))]),
        ));
    }
    let paths = pairs.iter().map(|(p, _)| p.clone()).collect();
    Ok((Doc::String(Doc::Object(pairs).to_json()), paths))
}

/// `install: {"script", "container", "entrypoint"}` → `scripts.installation`.
fn install(value: Option<&Value>) -> AppResult<Doc> {
    match value {
        None | Some(Value::Null) => Ok(Doc::Null),
        Some(Value::Object(map)) => {
            only_keys(map, "install", &["script", "container", "entrypoint"])?;
            Ok(Doc::from(Value::Object(map.clone())))
        }
        Some(other) => Err(must_be("install", "an object", other)),
    }
}

/// Maps a path of the generated egg document back to the workload shape.
fn shape_path(field: &str, file_paths: &[String]) -> String {
    if field.starts_with("docker_images") {
        return "images".to_owned();
    }
    if let Some(rest) = field.strip_prefix("scripts.installation") {
        return format!("install{rest}");
    }
    if let Some(rest) = field.strip_prefix("config.files[") {
        for (i, path) in file_paths.iter().enumerate() {
            let quoted = Value::String(path.clone()).to_string();
            if let Some(tail) = rest.strip_prefix(&format!("{quoted}]")) {
                return format!("config.files[{i}]{tail}");
            }
        }
    }
    match field {
        "config.startup.userInteraction" => "config.startup.user_interaction".to_owned(),
        "meta.update_url" => "update_url".to_owned(),
        "_comment" => "comment".to_owned(),
        other => other.to_owned(),
    }
}

fn shape_message(e: &EggError, file_paths: &[String]) -> String {
    let field = shape_path(&e.field, file_paths);
    if field.is_empty() {
        e.message.clone()
    } else if field == "images" && e.field == "docker_images" {
        "images: the workload declares no Docker image".to_owned()
    } else {
        format!("{field}: {}", e.message)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field_of(body: &Value) -> Option<String> {
        match egg_from_shape(body) {
            Err(AppError::InvalidField { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn srv_services_are_service_and_protocol() {
        for ok in ["_minecraft._tcp", "_ts3._udp", "_Mumble._TCP", "_a-b._udp"] {
            assert!(srv_service(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            srv_service(" _Minecraft._TCP ").ok().as_deref(),
            Some("_minecraft._tcp")
        );
        let long = format!("_{}._tcp", "a".repeat(64));
        for bad in [
            "",
            "minecraft._tcp",
            "_minecraft",
            "_minecraft._sctp",
            "__tcp",
            "_mine craft._tcp",
            "_-x._tcp",
            "_x-._udp",
            "_x._tcp.example.com",
            "_x._tcp.",
            &long,
        ] {
            match srv_service(bad) {
                Err(AppError::InvalidField { field, .. }) => {
                    assert_eq!(field.as_deref(), Some("dns_srv_service"), "{bad}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(srv_field(&json!({})).ok(), Some(None));
        assert_eq!(
            srv_field(&json!({"dns_srv_service": null})).ok(),
            Some(Some(None))
        );
        assert!(srv_field(&json!({"dns_srv_service": 5})).is_err());
    }

    #[test]
    fn minimal_shape_parses() {
        let egg = egg_from_shape(&json!({
            "name": "Echo",
            "images": [{"label": "B", "image": "busybox"}, "alpine"],
            "startup": "sh",
            "config": {"files": [{"path": "b.yml", "parser": "yaml", "find": {"a": 1}},
                                 {"path": "a.ini", "parser": "ini", "find": {}}],
                       "startup": {"done": ["ready"], "user_interaction": ["eula"]},
                       "stop": "^C"},
            "variables": [{"name": "Port", "env_variable": "PORT", "rules": "required|int"}],
        }))
        .expect("valid");
        assert_eq!(egg.images[0].label, "B");
        assert_eq!(egg.images[1].image, "alpine");
        assert_eq!(egg.config.files[0].path, "b.yml", "file order kept");
        assert_eq!(egg.config.startup.user_interaction, vec!["eula".to_owned()]);
        assert_eq!(egg.variables[0].rules.len(), 2);
    }

    #[test]
    fn errors_name_the_shape_field() {
        let base = json!({"name": "x", "images": ["i"]});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert_eq!(field_of(&json!({"name": "x"})).as_deref(), Some("images"));
        assert_eq!(
            field_of(&with(
                "variables",
                json!([{"name": "a", "env_variable": "A", "rules": "required|frobnicate"}])
            ))
            .as_deref(),
            Some("variables[0].rules")
        );
        assert_eq!(
            field_of(&with(
                "config",
                json!({"files": [{"path": "a", "parser": 5}]})
            ))
            .as_deref(),
            Some("config.files[0].parser")
        );
        assert_eq!(
            field_of(&with("install", json!({"script": 1}))).as_deref(),
            Some("install.script")
        );
        assert_eq!(field_of(&with("bogus", json!(1))).as_deref(), Some("bogus"));
        assert_eq!(
            field_of(&with("name", json!("n".repeat(500)))).as_deref(),
            Some("name")
        );
        assert_eq!(field_of(&json!([])), None);
    }
}
