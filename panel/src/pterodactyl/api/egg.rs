//! Eggs as the Application API answers them, resolved into PTDL_v2 export documents.
//!
//! The API shows each egg's own columns: `config.files`/`startup`/`logs` decoded (an
//! empty one as `[]`), `config.stop`, `config.extends` (`config_from`), `script.install`/
//! `entry`/`container`, `script.extends` (`copy_script_from`), and either a 0.7
//! `docker_image` string or a 1.x `docker_images` map (label → image; a plain list in
//! early 1.x). A null config field is inherited from `config_from`, a null script field
//! from `copy_script_from`, each through the whole chain (Pterodactyl follows one level;
//! a longer chain is resolved the same way, field by field). A chain that names an egg
//! the panel does not list, or comes back to an egg, leaves that egg out with a problem.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::fields::{Attrs, relationship};
use crate::pterodactyl::model::{Egg, SourceError};

/// One egg as the panel stores it, before inheritance.
#[derive(Debug, Clone)]
pub(super) struct RawEgg {
    id: i64,
    uuid: String,
    nest_id: i64,
    nest_name: String,
    name: String,
    author: String,
    description: String,
    features: Vec<String>,
    update_url: Option<String>,
    /// Label → image, in the order serde_json keeps keys.
    images: Vec<(String, String)>,
    file_denylist: Vec<String>,
    startup: String,
    files: Option<Value>,
    config_startup: Option<Value>,
    logs: Option<Value>,
    stop: Option<String>,
    config_from: Option<i64>,
    install: Option<String>,
    entry: Option<String>,
    container: Option<String>,
    copy_script_from: Option<i64>,
    /// In the export document's shape.
    variables: Vec<Value>,
}

impl RawEgg {
    /// The egg `a` of the nest `nest_id`, read with `include=variables`.
    pub(super) fn parse(a: &Attrs<'_>, nest_id: i64, nest_name: &str) -> Result<Self, SourceError> {
        let config = a.object("config")?;
        let script = a.object("script")?;
        let mut file_denylist = config.string_list("file_denylist")?;
        if file_denylist.is_empty() {
            file_denylist = a.string_list("file_denylist")?;
        }
        Ok(Self {
            id: a.int("id")?,
            uuid: a.opt_string("uuid")?.unwrap_or_default(),
            nest_id: a.opt_int("nest")?.unwrap_or(nest_id),
            nest_name: nest_name.to_owned(),
            name: a.string("name")?,
            author: a.opt_string("author")?.unwrap_or_default(),
            description: a.opt_string("description")?.unwrap_or_default(),
            features: a.string_list("features")?,
            update_url: a.opt_string("update_url")?,
            images: images(a)?,
            file_denylist,
            startup: a.opt_string("startup")?.unwrap_or_default(),
            files: config.raw("files").cloned(),
            config_startup: config.raw("startup").cloned(),
            logs: config.raw("logs").cloned(),
            stop: config.opt_string("stop")?,
            config_from: config.opt_int("extends")?,
            install: script.opt_string("install")?,
            entry: script.opt_string("entry")?,
            container: script.opt_string("container")?,
            copy_script_from: script.opt_int("extends")?,
            variables: relationship(a, "variables")?
                .unwrap_or_default()
                .iter()
                .map(variable)
                .collect::<Result<_, _>>()?,
        })
    }

    fn label(&self) -> String {
        format!("egg {} \"{}\"", self.id, self.name)
    }
}

/// Both image shapes: the 1.x `docker_images` (a map, or a list in early 1.x), else the
/// 0.7 `docker_image`.
fn images(a: &Attrs<'_>) -> Result<Vec<(String, String)>, SourceError> {
    let bad =
        || SourceError::Protocol(format!("{}: `docker_images` holds a non-string", a_name(a)));
    let mut out = Vec::new();
    match a.raw("docker_images") {
        Some(Value::Object(map)) => {
            for (label, image) in map {
                let image = image.as_str().ok_or_else(bad)?;
                out.push((label.clone(), image.to_owned()));
            }
        }
        Some(Value::Array(list)) => {
            for image in list {
                let image = image.as_str().ok_or_else(bad)?;
                out.push((image.to_owned(), image.to_owned()));
            }
        }
        _ => {}
    }
    if out.is_empty()
        && let Some(image) = a
            .opt_string("docker_image")?
            .filter(|s| !s.trim().is_empty())
    {
        out.push((image.clone(), image));
    }
    Ok(out)
}

fn a_name(a: &Attrs<'_>) -> String {
    a.opt_string("name")
        .ok()
        .flatten()
        .unwrap_or_else(|| "an egg".into())
}

/// One variable as an export writes it (`id`, `egg_id` and times dropped).
fn variable(v: &Attrs<'_>) -> Result<Value, SourceError> {
    let mut out = json!({
        "name": v.string("name")?,
        "description": v.opt_string("description")?.unwrap_or_default(),
        "env_variable": v.string("env_variable")?,
        "default_value": v.opt_scalar("default_value")?.unwrap_or_default(),
        "user_viewable": v.flag("user_viewable")?,
        "user_editable": v.flag("user_editable")?,
        "rules": v.opt_string("rules")?.unwrap_or_default(),
        "field_type": v.opt_string("field_type")?.unwrap_or_else(|| "text".into()),
    });
    if let Some(sort) = v.opt_int("sort")? {
        out["sort"] = sort.into();
    }
    Ok(out)
}

/// Every egg whose chains resolve, as documents (by id), and a problem for each other.
pub(super) fn resolve(raw: &[RawEgg]) -> (Vec<Egg>, Vec<String>) {
    let by_id: BTreeMap<i64, &RawEgg> = raw.iter().map(|e| (e.id, e)).collect();
    let mut eggs = Vec::new();
    let mut problems = Vec::new();
    for egg in by_id.values() {
        let config = chain(egg, &by_id, |e| e.config_from, "configuration");
        let script = chain(egg, &by_id, |e| e.copy_script_from, "install script");
        match (config, script) {
            (Ok(config), Ok(script)) => eggs.push(Egg {
                id: egg.id,
                uuid: egg.uuid.clone(),
                nest_id: egg.nest_id,
                nest_name: egg.nest_name.clone(),
                name: egg.name.clone(),
                ptdl: document(egg, &config, &script),
            }),
            (Err(problem), _) | (_, Err(problem)) => problems.push(problem),
        }
    }
    (eggs, problems)
}

/// `egg` and the eggs it inherits from through `parent`, nearest first.
fn chain<'a>(
    egg: &'a RawEgg,
    by_id: &BTreeMap<i64, &'a RawEgg>,
    parent: impl Fn(&RawEgg) -> Option<i64>,
    what: &str,
) -> Result<Vec<&'a RawEgg>, String> {
    let mut chain = vec![egg];
    let mut seen = BTreeSet::from([egg.id]);
    let mut at = egg;
    while let Some(id) = parent(at) {
        let Some(next) = by_id.get(&id).copied() else {
            return Err(format!(
                "{} is left out: it takes its {what} from egg {id}, which the panel does \
                 not list",
                egg.label()
            ));
        };
        if !seen.insert(id) {
            return Err(format!(
                "{} is left out: its {what} inheritance loops back to egg {id}",
                egg.label()
            ));
        }
        chain.push(next);
        at = next;
    }
    Ok(chain)
}

/// The first value `field` has along `chain`.
fn inherited<T: Clone>(chain: &[&RawEgg], field: impl Fn(&RawEgg) -> Option<&T>) -> Option<T> {
    chain.iter().find_map(|e| field(e)).cloned()
}

/// A decoded config section written back as the JSON text an export holds (`{}` for
/// none: PHP decodes `{}` to an empty array).
fn section(value: Option<Value>) -> String {
    match value {
        None => "{}".to_owned(),
        Some(Value::Array(list)) if list.is_empty() => "{}".to_owned(),
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
    }
}

/// The PTDL_v2 export document of `egg` with its inherited fields filled in.
fn document(egg: &RawEgg, config: &[&RawEgg], script: &[&RawEgg]) -> Value {
    let images: Map<String, Value> = egg
        .images
        .iter()
        .map(|(label, image)| (label.clone(), Value::String(image.clone())))
        .collect();
    let mut meta = json!({"version": "PTDL_v2"});
    if let Some(url) = &egg.update_url {
        meta["update_url"] = url.clone().into();
    }
    json!({
        "_comment": "Read from a Pterodactyl panel's Application API by Shardlyn",
        "meta": meta,
        "name": egg.name,
        "author": egg.author,
        "description": egg.description,
        "features": egg.features,
        "docker_images": images,
        "file_denylist": egg.file_denylist,
        "startup": egg.startup,
        "config": {
            "files": section(inherited(config, |e| e.files.as_ref())),
            "startup": section(inherited(config, |e| e.config_startup.as_ref())),
            "logs": section(inherited(config, |e| e.logs.as_ref())),
            "stop": inherited(config, |e| e.stop.as_ref()).unwrap_or_default(),
        },
        "scripts": {
            "installation": {
                "script": inherited(script, |e| e.install.as_ref()).unwrap_or_default(),
                "container": inherited(script, |e| e.container.as_ref()).unwrap_or_default(),
                "entrypoint": inherited(script, |e| e.entry.as_ref()).unwrap_or_default(),
            }
        },
        "variables": egg.variables,
    })
}
