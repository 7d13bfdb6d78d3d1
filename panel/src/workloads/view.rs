//! The workload JSON shape: the normalized egg plus the workload's own fields.
//!
//! `GET /v1/workloads/{id}` answers this shape and `POST`/`PUT` accept it back (see
//! `input.rs`), so a client can edit what it read. Rules are shown in canonical Laravel
//! syntax (`required|string|max:20`), as eggs write them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use shardlyn_proto::egg::{ConfigFile, DockerImage, Egg, EggVariable};
use shardlyn_proto::rules::rules_to_string;

use super::store::Workload;
use crate::db::ts;

/// A workload as the API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WorkloadView<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    /// `egg`, `template` or `api`.
    pub source: &'a str,
    /// The template a `template` workload was copied from.
    pub template: Option<&'a str>,
    #[serde(flatten)]
    pub egg: EggView<'a>,
    pub created_by: Option<&'a str>,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

impl<'a> From<&'a Workload> for WorkloadView<'a> {
    fn from(w: &'a Workload) -> Self {
        Self {
            id: &w.id,
            organization_id: &w.org_id,
            source: &w.source,
            template: w.template.as_deref(),
            egg: EggView::from(&w.egg),
            created_by: w.created_by.as_deref(),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A workload in a list: what tells workloads apart, without scripts and variables.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WorkloadSummary<'a> {
    pub id: &'a str,
    pub organization_id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub author: &'a str,
    pub source: &'a str,
    pub template: Option<&'a str>,
    pub images: Vec<ImageView<'a>>,
    pub variable_count: usize,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub created_at: i64,
    #[serde(with = "ts")]
    #[schemars(with = "crate::types::Timestamp")]
    pub updated_at: i64,
}

impl<'a> From<&'a Workload> for WorkloadSummary<'a> {
    fn from(w: &'a Workload) -> Self {
        Self {
            id: &w.id,
            organization_id: &w.org_id,
            name: &w.egg.name,
            description: &w.egg.description,
            author: &w.egg.author,
            source: &w.source,
            template: w.template.as_deref(),
            images: w.egg.images.iter().map(ImageView::from).collect(),
            variable_count: w.egg.variables.len(),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// The egg part of the shape, in the egg's vocabulary.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EggView<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub author: &'a str,
    /// Panel features such as `eula`.
    pub features: &'a [String],
    /// In order; the first is the default.
    pub images: Vec<ImageView<'a>>,
    pub file_denylist: &'a [String],
    /// Startup command template with `{{VARIABLE}}` placeholders.
    pub startup: &'a str,
    pub config: ConfigView<'a>,
    pub install: InstallView<'a>,
    pub variables: Vec<VariableView<'a>>,
    /// The egg's `_comment`, `meta.update_url` and `exported_at`, kept for export.
    pub comment: Option<&'a str>,
    pub update_url: Option<&'a str>,
    pub exported_at: Option<&'a str>,
}

impl<'a> From<&'a Egg> for EggView<'a> {
    fn from(egg: &'a Egg) -> Self {
        let c = &egg.config;
        Self {
            name: &egg.name,
            description: &egg.description,
            author: &egg.author,
            features: &egg.features,
            images: egg.images.iter().map(ImageView::from).collect(),
            file_denylist: &egg.file_denylist,
            startup: &egg.startup,
            config: ConfigView {
                files: c.files.iter().map(FileView::from).collect(),
                startup: StartupView {
                    done: &c.startup.done,
                    user_interaction: &c.startup.user_interaction,
                    strip_ansi: c.startup.strip_ansi,
                },
                logs: LogsView {
                    custom: c.logs.custom,
                    location: c.logs.location.as_deref(),
                },
                stop: c.stop.as_ref().map(|s| s.as_str()),
                extends: c.extends.as_deref(),
            },
            install: InstallView {
                script: &egg.install.script,
                container: &egg.install.container,
                entrypoint: &egg.install.entrypoint,
            },
            variables: egg.variables.iter().map(VariableView::from).collect(),
            comment: egg.comment.as_deref(),
            update_url: egg.update_url.as_deref(),
            exported_at: egg.exported_at.as_deref(),
        }
    }
}

/// `{"label": "Java 17", "image": "ghcr.io/pterodactyl/yolks:java_17"}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ImageView<'a> {
    pub label: &'a str,
    pub image: &'a str,
}

impl<'a> From<&'a DockerImage> for ImageView<'a> {
    fn from(i: &'a DockerImage) -> Self {
        Self {
            label: &i.label,
            image: &i.image,
        }
    }
}

/// The egg's `config` block, decoded.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ConfigView<'a> {
    /// Config files edited before each start, in order.
    pub files: Vec<FileView<'a>>,
    pub startup: StartupView<'a>,
    pub logs: LogsView<'a>,
    /// `^C`-style signal or console command; null when inherited through `extends`.
    pub stop: Option<&'a str>,
    pub extends: Option<&'a str>,
}

/// One config file: `{"path", "parser", "find": {key: value}}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FileView<'a> {
    pub path: &'a str,
    pub parser: &'a str,
    pub find: &'a BTreeMap<String, Value>,
}

impl<'a> From<&'a ConfigFile> for FileView<'a> {
    fn from(f: &'a ConfigFile) -> Self {
        Self {
            path: &f.path,
            parser: f.parser.as_str(),
            find: &f.find,
        }
    }
}

/// Startup detection.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StartupView<'a> {
    pub done: &'a [String],
    pub user_interaction: &'a [String],
    pub strip_ansi: Option<bool>,
}

/// Legacy log settings.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LogsView<'a> {
    pub custom: Option<bool>,
    pub location: Option<&'a str>,
}

/// The install script.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct InstallView<'a> {
    pub script: &'a str,
    pub container: &'a str,
    pub entrypoint: &'a str,
}

/// A variable; `rules` in canonical Laravel syntax.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct VariableView<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub env_variable: &'a str,
    pub default_value: &'a str,
    pub user_viewable: bool,
    pub user_editable: bool,
    pub rules: String,
    pub field_type: &'a str,
    pub sort: Option<i64>,
}

impl<'a> From<&'a EggVariable> for VariableView<'a> {
    fn from(v: &'a EggVariable) -> Self {
        Self {
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

/// A workload answered in its API shape ([`WorkloadView`]), owning the row it shows.
#[derive(Debug)]
pub struct WorkloadBody(pub Workload);

impl Serialize for WorkloadBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WorkloadView::from(&self.0).serialize(s)
    }
}

impl schemars::JsonSchema for WorkloadBody {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <WorkloadView<'static> as schemars::JsonSchema>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <WorkloadView<'static> as schemars::JsonSchema>::json_schema(generator)
    }
}

/// A workload in a list ([`WorkloadSummary`]), owning the row it shows.
#[derive(Debug)]
pub struct SummaryBody(pub Workload);

impl Serialize for SummaryBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WorkloadSummary::from(&self.0).serialize(s)
    }
}

impl schemars::JsonSchema for SummaryBody {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <WorkloadSummary<'static> as schemars::JsonSchema>::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <WorkloadSummary<'static> as schemars::JsonSchema>::json_schema(generator)
    }
}

/// The body of `POST /v1/workloads` and `PUT /v1/workloads/{id}`: the workload shape
/// as read (read-only fields may be sent back and are ignored) and an optional
/// `organization_id`. Kept as the JSON document so `input::egg_from_shape` can name the
/// exact field of an error (`config.files[0].parser`); its schema is the egg part of
/// [`WorkloadView`].
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
pub struct WorkloadInput(pub Value);

impl schemars::JsonSchema for WorkloadInput {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WorkloadInput".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut schema = <EggView<'static> as schemars::JsonSchema>::json_schema(generator);
        if let Some(props) = schema
            .ensure_object()
            .get_mut("properties")
            .and_then(Value::as_object_mut)
        {
            props.insert(
                "organization_id".into(),
                serde_json::json!({
                    "type": ["string", "null"],
                    "description": "The organization (default: the caller's personal one)"
                }),
            );
        }
        // Every field but the name has a default (as in an egg file).
        schema.insert("required".into(), serde_json::json!(["name"]));
        schema
    }
}
