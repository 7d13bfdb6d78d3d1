//! Export of an [`Egg`] back to a PTDL_v2 document.
//!
//! As Pterodactyl does, `config.files`, `config.startup` and `config.logs` are written as
//! strings containing JSON. Rules are written in canonical form (`int` becomes `integer`,
//! empty segments are dropped), so an export re-imports to an equal [`Egg`].
//! [`export_egg_json`] keeps the order of images and config files; [`export_egg`] returns a
//! `serde_json::Value`, whose objects are key-sorted in this workspace, so there the
//! `docker_images` order (and with it the default image) is not preserved.

use serde::Serialize;
use serde_json::Value;

use super::ordered::OrderedPairs;
use super::{ConfigFile, Egg, EggVariable, StartupDetection};
use crate::rules::rules_to_string;

/// The egg as a PTDL_v2 JSON value.
pub fn export_egg(egg: &Egg) -> Value {
    serde_json::to_value(Document::from(egg)).unwrap_or(Value::Null)
}

/// The egg as pretty-printed PTDL_v2 JSON, in Pterodactyl's key order, with the document
/// order of `docker_images` and `config.files` preserved.
pub fn export_egg_json(egg: &Egg) -> String {
    serde_json::to_string_pretty(&Document::from(egg)).unwrap_or_default()
}

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "_comment", skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    meta: Meta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exported_at: Option<&'a str>,
    name: &'a str,
    author: &'a str,
    description: &'a str,
    features: Option<&'a [String]>,
    docker_images: OrderedPairs<'a, &'a str>,
    file_denylist: &'a [String],
    startup: &'a str,
    config: Config<'a>,
    scripts: Scripts<'a>,
    variables: Vec<Variable<'a>>,
}

#[derive(Serialize)]
struct Meta<'a> {
    version: &'static str,
    update_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Config<'a> {
    files: String,
    startup: String,
    logs: String,
    stop: Option<&'a str>,
    extends: Option<&'a str>,
}

#[derive(Serialize)]
struct Scripts<'a> {
    installation: Installation<'a>,
}

#[derive(Serialize)]
struct Installation<'a> {
    script: &'a str,
    container: &'a str,
    entrypoint: &'a str,
}

#[derive(Serialize)]
struct Variable<'a> {
    name: &'a str,
    description: &'a str,
    env_variable: &'a str,
    default_value: &'a str,
    user_viewable: bool,
    user_editable: bool,
    rules: String,
    field_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort: Option<i64>,
}

#[derive(Serialize)]
struct FileSpec<'a> {
    parser: &'a str,
    find: &'a std::collections::BTreeMap<String, Value>,
}

impl<'a> From<&'a Egg> for Document<'a> {
    fn from(egg: &'a Egg) -> Self {
        Document {
            comment: egg.comment.as_deref(),
            meta: Meta {
                version: "PTDL_v2",
                update_url: egg.update_url.as_deref(),
            },
            exported_at: egg.exported_at.as_deref(),
            name: &egg.name,
            author: &egg.author,
            description: &egg.description,
            features: (!egg.features.is_empty()).then_some(egg.features.as_slice()),
            docker_images: OrderedPairs(
                egg.images
                    .iter()
                    .map(|i| (i.label.as_str(), i.image.as_str()))
                    .collect(),
            ),
            file_denylist: &egg.file_denylist,
            startup: &egg.startup,
            config: Config {
                files: files_json(&egg.config.files),
                startup: startup_json(&egg.config.startup),
                logs: logs_json(egg),
                stop: egg.config.stop.as_ref().map(|s| s.as_str()),
                extends: egg.config.extends.as_deref(),
            },
            scripts: Scripts {
                installation: Installation {
                    script: &egg.install.script,
                    container: &egg.install.container,
                    entrypoint: &egg.install.entrypoint,
                },
            },
            variables: egg.variables.iter().map(Variable::from).collect(),
        }
    }
}

impl<'a> From<&'a EggVariable> for Variable<'a> {
    fn from(v: &'a EggVariable) -> Self {
        Variable {
            name: &v.name,
            description: &v.description,
            env_variable: &v.env_variable,
            default_value: &v.default_value,
            user_viewable: v.user_viewable,
            user_editable: v.user_editable,
            rules: rules_to_string(&v.rules),
            field_type: &v.field_type,
            sort: v.sort,
        }
    }
}

fn pretty(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_owned())
}

fn files_json(files: &[ConfigFile]) -> String {
    pretty(&OrderedPairs(
        files
            .iter()
            .map(|f| {
                let spec = FileSpec {
                    parser: f.parser.as_str(),
                    find: &f.find,
                };
                (f.path.as_str(), spec)
            })
            .collect(),
    ))
}

fn startup_json(startup: &StartupDetection) -> String {
    let mut map = serde_json::Map::new();
    match startup.done.as_slice() {
        [] => {}
        [one] => {
            map.insert("done".to_owned(), Value::from(one.as_str()));
        }
        many => {
            map.insert("done".to_owned(), Value::from(many.to_vec()));
        }
    }
    if !startup.user_interaction.is_empty() {
        map.insert(
            "userInteraction".to_owned(),
            Value::from(startup.user_interaction.clone()),
        );
    }
    if let Some(strip) = startup.strip_ansi {
        map.insert("strip_ansi".to_owned(), Value::Bool(strip));
    }
    pretty(&map)
}

fn logs_json(egg: &Egg) -> String {
    let logs = &egg.config.logs;
    let mut map = serde_json::Map::new();
    if let Some(custom) = logs.custom {
        map.insert("custom".to_owned(), Value::Bool(custom));
    }
    if let Some(location) = &logs.location {
        map.insert("location".to_owned(), Value::from(location.as_str()));
    }
    pretty(&map)
}
