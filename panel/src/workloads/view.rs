//! The workload JSON shape: the normalized egg plus the workload's own fields.
//!
//! `GET /v1/workloads/{id}` answers this shape and `POST`/`PUT` accept it back (see
//! `input.rs`), so a client can edit what it read. Rules are shown in canonical Laravel
//! syntax (`required|string|max:20`), as eggs write them.
//!
//! The views borrow the row they show (`Cow::Borrowed`, no copy when answering); the
//! web pages read the same types back owned (`WorkloadView<'static>`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shardlyn_proto::egg::{ConfigFile, DockerImage, Egg, EggVariable};
use shardlyn_proto::rules::rules_to_string;

use super::store::Workload;
use crate::db::ts;

/// A workload as the API shows it.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadView<'a> {
    pub id: Cow<'a, str>,
    pub organization_id: Cow<'a, str>,
    /// `egg`, `template` or `api`.
    pub source: Cow<'a, str>,
    /// The template a `template` workload was copied from.
    pub template: Option<Cow<'a, str>>,
    #[serde(flatten)]
    pub egg: EggView<'a>,
    /// The SRV service its servers answer, as it leads their SRV record's name
    /// (`_minecraft._tcp`); `null` for none. Auto-DNS writes an SRV record only for
    /// workloads that have one.
    pub dns_srv_service: Option<Cow<'a, str>>,
    pub created_by: Option<Cow<'a, str>>,
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
            id: Cow::Borrowed(&w.id),
            organization_id: Cow::Borrowed(&w.org_id),
            source: Cow::Borrowed(&w.source),
            template: w.template.as_deref().map(Cow::Borrowed),
            egg: EggView::from(&w.egg),
            dns_srv_service: w.dns_srv_service.as_deref().map(Cow::Borrowed),
            created_by: w.created_by.as_deref().map(Cow::Borrowed),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// A workload in a list: what tells workloads apart, without scripts and variables.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadSummary<'a> {
    pub id: Cow<'a, str>,
    pub organization_id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub description: Cow<'a, str>,
    pub author: Cow<'a, str>,
    pub source: Cow<'a, str>,
    pub template: Option<Cow<'a, str>>,
    pub images: Vec<ImageView<'a>>,
    pub variable_count: usize,
    /// The SRV service (`_minecraft._tcp`), or `null`.
    pub dns_srv_service: Option<Cow<'a, str>>,
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
            id: Cow::Borrowed(&w.id),
            organization_id: Cow::Borrowed(&w.org_id),
            name: Cow::Borrowed(&w.egg.name),
            description: Cow::Borrowed(&w.egg.description),
            author: Cow::Borrowed(&w.egg.author),
            source: Cow::Borrowed(&w.source),
            template: w.template.as_deref().map(Cow::Borrowed),
            images: w.egg.images.iter().map(ImageView::from).collect(),
            variable_count: w.egg.variables.len(),
            dns_srv_service: w.dns_srv_service.as_deref().map(Cow::Borrowed),
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

/// The egg part of the shape, in the egg's vocabulary.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EggView<'a> {
    pub name: Cow<'a, str>,
    pub description: Cow<'a, str>,
    pub author: Cow<'a, str>,
    /// Panel features such as `eula`.
    pub features: Cow<'a, [String]>,
    /// In order; the first is the default.
    pub images: Vec<ImageView<'a>>,
    pub file_denylist: Cow<'a, [String]>,
    /// Startup command template with `{{VARIABLE}}` placeholders.
    pub startup: Cow<'a, str>,
    pub config: ConfigView<'a>,
    pub install: InstallView<'a>,
    pub variables: Vec<VariableView<'a>>,
    /// The egg's `_comment`, `meta.update_url` and `exported_at`, kept for export.
    pub comment: Option<Cow<'a, str>>,
    pub update_url: Option<Cow<'a, str>>,
    pub exported_at: Option<Cow<'a, str>>,
}

impl<'a> From<&'a Egg> for EggView<'a> {
    fn from(egg: &'a Egg) -> Self {
        let c = &egg.config;
        Self {
            name: Cow::Borrowed(&egg.name),
            description: Cow::Borrowed(&egg.description),
            author: Cow::Borrowed(&egg.author),
            features: Cow::Borrowed(&egg.features),
            images: egg.images.iter().map(ImageView::from).collect(),
            file_denylist: Cow::Borrowed(&egg.file_denylist),
            startup: Cow::Borrowed(&egg.startup),
            config: ConfigView {
                files: c.files.iter().map(FileView::from).collect(),
                startup: StartupView {
                    done: Cow::Borrowed(&c.startup.done),
                    user_interaction: Cow::Borrowed(&c.startup.user_interaction),
                    strip_ansi: c.startup.strip_ansi,
                },
                logs: LogsView {
                    custom: c.logs.custom,
                    location: c.logs.location.as_deref().map(Cow::Borrowed),
                },
                stop: c.stop.as_ref().map(|s| Cow::Borrowed(s.as_str())),
                extends: c.extends.as_deref().map(Cow::Borrowed),
            },
            install: InstallView {
                script: Cow::Borrowed(&egg.install.script),
                container: Cow::Borrowed(&egg.install.container),
                entrypoint: Cow::Borrowed(&egg.install.entrypoint),
            },
            variables: egg.variables.iter().map(VariableView::from).collect(),
            comment: egg.comment.as_deref().map(Cow::Borrowed),
            update_url: egg.update_url.as_deref().map(Cow::Borrowed),
            exported_at: egg.exported_at.as_deref().map(Cow::Borrowed),
        }
    }
}

/// `{"label": "Java 17", "image": "ghcr.io/pterodactyl/yolks:java_17"}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageView<'a> {
    pub label: Cow<'a, str>,
    pub image: Cow<'a, str>,
}

impl<'a> From<&'a DockerImage> for ImageView<'a> {
    fn from(i: &'a DockerImage) -> Self {
        Self {
            label: Cow::Borrowed(&i.label),
            image: Cow::Borrowed(&i.image),
        }
    }
}

/// The egg's `config` block, decoded.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigView<'a> {
    /// Config files edited before each start, in order.
    pub files: Vec<FileView<'a>>,
    pub startup: StartupView<'a>,
    pub logs: LogsView<'a>,
    /// `^C`-style signal or console command; null when inherited through `extends`.
    pub stop: Option<Cow<'a, str>>,
    pub extends: Option<Cow<'a, str>>,
}

/// One config file: `{"path", "parser", "find": {key: value}}`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileView<'a> {
    pub path: Cow<'a, str>,
    pub parser: Cow<'a, str>,
    pub find: Cow<'a, BTreeMap<String, Value>>,
}

impl<'a> From<&'a ConfigFile> for FileView<'a> {
    fn from(f: &'a ConfigFile) -> Self {
        Self {
            path: Cow::Borrowed(&f.path),
            parser: Cow::Borrowed(f.parser.as_str()),
            find: Cow::Borrowed(&f.find),
        }
    }
}

/// Startup detection.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StartupView<'a> {
    pub done: Cow<'a, [String]>,
    pub user_interaction: Cow<'a, [String]>,
    pub strip_ansi: Option<bool>,
}

/// Legacy log settings.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogsView<'a> {
    pub custom: Option<bool>,
    pub location: Option<Cow<'a, str>>,
}

/// The install script.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstallView<'a> {
    pub script: Cow<'a, str>,
    pub container: Cow<'a, str>,
    pub entrypoint: Cow<'a, str>,
}

/// A variable; `rules` in canonical Laravel syntax.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VariableView<'a> {
    pub name: Cow<'a, str>,
    pub description: Cow<'a, str>,
    pub env_variable: Cow<'a, str>,
    pub default_value: Cow<'a, str>,
    pub user_viewable: bool,
    pub user_editable: bool,
    pub rules: String,
    pub field_type: Cow<'a, str>,
    pub sort: Option<i64>,
}

impl<'a> From<&'a EggVariable> for VariableView<'a> {
    fn from(v: &'a EggVariable) -> Self {
        Self {
            name: Cow::Borrowed(&v.name),
            description: Cow::Borrowed(&v.description),
            env_variable: Cow::Borrowed(&v.env_variable),
            default_value: Cow::Borrowed(&v.default_value),
            user_viewable: v.user_viewable,
            user_editable: v.user_editable,
            rules: rules_to_string(&v.rules),
            field_type: Cow::Borrowed(&v.field_type),
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
            props.insert(
                "dns_srv_service".into(),
                serde_json::json!({
                    "type": ["string", "null"],
                    "description": "The SRV service its servers answer, `_service._tcp` or \
                        `_service._udp` (e.g. `_minecraft._tcp`); null for none. Left out on \
                        update: kept as it is"
                }),
            );
        }
        // Every field but the name has a default (as in an egg file).
        schema.insert("required".into(), serde_json::json!(["name"]));
        schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::templates::Template;

    fn workload() -> Workload {
        let egg = Template::find("minecraft-paper")
            .expect("bundled")
            .egg()
            .expect("parses");
        Workload {
            id: "w1".into(),
            org_id: "o1".into(),
            name: egg.name.clone(),
            description: egg.description.clone(),
            source: "template".into(),
            template: Some("minecraft-paper".into()),
            egg,
            dns_srv_service: Some("_minecraft._tcp".into()),
            created_by: None,
            created_at: 1_764_783_956_000,
            updated_at: 1_764_783_956_000,
        }
    }

    /// A page reads the answer back owned as the same type, and it says the same.
    #[test]
    fn views_read_back_what_they_answer() {
        let w = workload();
        let answer = serde_json::to_value(WorkloadBody(w.clone())).expect("serializes");
        let read: WorkloadView<'static> = serde_json::from_value(answer.clone()).expect("reads");
        assert_eq!(read.egg.variables.len(), w.egg.variables.len());
        assert_eq!(read.created_at, w.created_at);
        assert_eq!(serde_json::to_value(&read).expect("serializes"), answer);
        let summary = serde_json::to_value(SummaryBody(w)).expect("serializes");
        let read: WorkloadSummary<'static> =
            serde_json::from_value(summary.clone()).expect("reads");
        assert_eq!(serde_json::to_value(&read).expect("serializes"), summary);
    }
}
