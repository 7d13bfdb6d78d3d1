//! Import of PTDL_v1/PTDL_v2 JSON into the normalized [`Egg`], with field-level errors.
//!
//! The document is read as a `serde_json::Value` and walked by hand so every error can name
//! its JSON path. Shapes seen in real eggs are accepted: `user_viewable` as `0`/`1`,
//! `default_value` as a number or `null`, `features`/`file_denylist` as `null` (or `""`),
//! `config.*` as JSON strings or plain objects, `done` as a string or a list, and images as
//! v2 `docker_images`, a `images` list or a v1 `image` string.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fields::{Obj, Result, embedded, key_path, kind};
use super::ordered::ordered_docker_images;
use super::{
    ConfigFile, DockerImage, Egg, EggConfig, EggError, EggErrorKind, EggVariable, InstallScript,
    LogConfig, Parser, StartupDetection, StopCommand,
};
use crate::rules::parse_rules;

/// Parses a PTDL_v1 or PTDL_v2 egg.
pub fn parse_egg(json: &str) -> Result<Egg> {
    let doc: Value = serde_json::from_str(json).map_err(|e| EggError {
        kind: EggErrorKind::Syntax {
            line: e.line(),
            column: e.column(),
        },
        field: String::new(),
        message: format!("invalid JSON: {e}"),
    })?;
    let Value::Object(root) = &doc else {
        return Err(not_an_egg(
            "",
            format!("expected an egg object, found {}", kind(&doc)),
        ));
    };
    let Some(Value::Object(meta)) = root.get("meta") else {
        return Err(not_an_egg(
            "meta",
            "not a Pterodactyl egg: no `meta` object",
        ));
    };
    let version_error = |message: String| EggError {
        kind: EggErrorKind::UnsupportedVersion,
        field: "meta.version".to_owned(),
        message,
    };
    match meta.get("version") {
        Some(Value::String(v)) if v == "PTDL_v1" || v == "PTDL_v2" => {}
        Some(Value::String(v)) => {
            return Err(version_error(format!(
                "unsupported egg version `{v}` (expected PTDL_v1 or PTDL_v2)"
            )));
        }
        None | Some(Value::Null) => return Err(version_error("missing `meta.version`".to_owned())),
        Some(other) => {
            return Err(version_error(format!(
                "must be a string, found {}",
                kind(other)
            )));
        }
    }
    let top = Obj::new(root, "");
    let name = top.required_str("name")?;
    if name.trim().is_empty() {
        return Err(EggError::invalid("name", "must not be empty"));
    }
    Ok(Egg {
        name,
        author: top.opt_str("author")?.unwrap_or_default(),
        description: top.opt_str("description")?.unwrap_or_default(),
        comment: top.opt_str("_comment")?,
        update_url: Obj::new(meta, "meta").opt_str("update_url")?,
        exported_at: top.opt_str("exported_at")?,
        features: top.str_list("features")?,
        images: images(root, json)?,
        file_denylist: top.str_list("file_denylist")?,
        startup: top.opt_str("startup")?.unwrap_or_default(),
        config: config(&top)?,
        install: install(&top)?,
        variables: variables(&top)?,
    })
}

fn not_an_egg(field: &str, message: impl Into<String>) -> EggError {
    EggError {
        kind: EggErrorKind::NotAnEgg,
        field: field.to_owned(),
        message: message.into(),
    }
}

fn images(root: &Map<String, Value>, json: &str) -> Result<Vec<DockerImage>> {
    let top = Obj::new(root, "");
    match top.get("docker_images") {
        Some(Value::Object(map)) if !map.is_empty() => {
            let pairs = ordered_docker_images(json)
                .unwrap_or_else(|| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
            return pairs
                .into_iter()
                .map(|(label, image)| match image {
                    Value::String(image) => Ok(DockerImage { label, image }),
                    other => Err(EggError::invalid(
                        key_path("docker_images", &label),
                        format!("must be an image name, found {}", kind(&other)),
                    )),
                })
                .collect();
        }
        None | Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(EggError::invalid(
                "docker_images",
                format!("must be an object of label → image, found {}", kind(other)),
            ));
        }
    }
    let mut list = top.str_list("images")?;
    if list.is_empty() {
        list.extend(top.opt_str("image")?);
    }
    if list.is_empty() {
        return Err(EggError::invalid(
            "docker_images",
            "the egg declares no Docker image (`docker_images`, `images` or `image`)",
        ));
    }
    Ok(list
        .into_iter()
        .map(|image| DockerImage {
            label: image.clone(),
            image,
        })
        .collect())
}

fn config(top: &Obj<'_>) -> Result<EggConfig> {
    let empty = Map::new();
    let config = top
        .object("config")?
        .unwrap_or_else(|| Obj::new(&empty, "config"));
    let files = embedded(&config, "files")?
        .into_iter()
        .map(|(path, spec)| config_file(path, &spec))
        .collect::<Result<Vec<_>>>()?;
    let startup_map: Map<String, Value> = embedded(&config, "startup")?.into_iter().collect();
    let startup = Obj::new(&startup_map, "config.startup");
    let strip_ansi = match startup.get("strip_ansi") {
        None => None,
        Some(_) => Some(startup.flag("strip_ansi")?),
    };
    let logs_map: Map<String, Value> = embedded(&config, "logs")?.into_iter().collect();
    let logs = Obj::new(&logs_map, "config.logs");
    let custom = match logs.get("custom") {
        None => None,
        Some(_) => Some(logs.flag("custom")?),
    };
    let extends = match config.get("extends") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(EggError::invalid(
                "config.extends",
                format!("must be a string, found {}", kind(other)),
            ));
        }
    };
    Ok(EggConfig {
        files,
        startup: StartupDetection {
            done: startup.str_list_strict("done")?,
            user_interaction: startup.str_list_strict("userInteraction")?,
            strip_ansi,
        },
        logs: LogConfig {
            custom,
            location: logs.opt_str("location")?,
        },
        stop: config
            .opt_str("stop")?
            .filter(|s| !s.is_empty())
            .map(|s| StopCommand::from_egg(&s)),
        extends,
    })
}

fn config_file(path: String, spec: &Value) -> Result<ConfigFile> {
    let at = key_path("config.files", &path);
    let Value::Object(spec) = spec else {
        return Err(EggError::invalid(
            at,
            format!(
                "must be an object with `parser` and `find`, found {}",
                kind(spec)
            ),
        ));
    };
    let spec = Obj::new(spec, &at);
    let parser = Parser::from_name(&spec.required_str("parser")?);
    let find = match spec.get("find") {
        None => BTreeMap::new(),
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(other) => {
            return Err(EggError::invalid(
                spec.at("find"),
                format!("must be an object of key → value, found {}", kind(other)),
            ));
        }
    };
    Ok(ConfigFile { path, parser, find })
}

fn install(top: &Obj<'_>) -> Result<InstallScript> {
    let Some(scripts) = top.object("scripts")? else {
        return Ok(InstallScript::default());
    };
    let Some(inst) = scripts.object("installation")? else {
        return Ok(InstallScript::default());
    };
    Ok(InstallScript {
        script: inst.opt_str("script")?.unwrap_or_default(),
        container: inst.opt_str("container")?.unwrap_or_default(),
        entrypoint: inst.opt_str("entrypoint")?.unwrap_or_default(),
    })
}

fn variables(top: &Obj<'_>) -> Result<Vec<EggVariable>> {
    let items = match top.get("variables") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(EggError::invalid(
                "variables",
                format!("must be a list, found {}", kind(other)),
            ));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("variables[{i}]");
            match item {
                Value::Object(map) => variable(&Obj::new(map, &path)),
                other => Err(EggError::invalid(
                    path,
                    format!("must be an object, found {}", kind(other)),
                )),
            }
        })
        .collect()
}

fn variable(var: &Obj<'_>) -> Result<EggVariable> {
    let name = var.required_str("name")?;
    let env_variable = var.required_str("env_variable")?;
    if !is_env_name(&env_variable) {
        return Err(EggError::invalid(
            var.at("env_variable"),
            format!(
                "`{env_variable}` is not a valid environment variable name \
                 (letters, digits and `_`, not starting with a digit)"
            ),
        ));
    }
    let default_value = match var.get("default_value") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => if *b { "1" } else { "0" }.to_owned(),
        Some(other) => {
            return Err(EggError::invalid(
                var.at("default_value"),
                format!("must be a string or a number, found {}", kind(other)),
            ));
        }
    };
    let rules_src = var.opt_str("rules")?.unwrap_or_default();
    let rules = parse_rules(&rules_src).map_err(|e| {
        EggError::invalid(
            var.at("rules"),
            format!("variable `{name}` ({env_variable}): {e}"),
        )
    })?;
    let sort = match var.get("sort") {
        None => None,
        Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
        Some(other) => {
            return Err(EggError::invalid(
                var.at("sort"),
                format!("must be an integer, found {}", kind(other)),
            ));
        }
    };
    Ok(EggVariable {
        description: var.opt_str("description")?.unwrap_or_default(),
        default_value,
        user_viewable: var.flag("user_viewable")?,
        user_editable: var.flag("user_editable")?,
        rules,
        field_type: var
            .opt_str("field_type")?
            .unwrap_or_else(|| "text".to_owned()),
        sort,
        name,
        env_variable,
    })
}

/// `[A-Za-z_][A-Za-z0-9_]*`: lower case is allowed because real eggs use it.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
