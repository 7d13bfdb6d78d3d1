//! The bundled templates: our own PTDL_v2 eggs in `eggs/`, embedded into the binary.
//!
//! The table below is the one list of templates: id (the file name without `.json`),
//! category, and the egg text. `GET /v1/templates` lists them, `/v1/templates/{category}`
//! filters them, and `POST /v1/workloads/from-template` copies one into an organization.
//! The `testing` category is listed only while the platform setting
//! `show_testing_templates` is on.

use serde::{Deserialize, Serialize};
use shardlyn_proto::egg::{Egg, parse_egg};
use shardlyn_proto::rules::rules_to_string;

use axum::extract::State;

use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppJson, AppPath, AppResult};
use crate::state::AppState;

/// The category of templates meant for tests and demos, hidden unless the platform
/// setting `show_testing_templates` shows it.
pub const TESTING: &str = "testing";

/// Whether the platform lists the `testing` templates.
///
/// # Errors
/// Database failures.
pub async fn shows_testing(state: &AppState) -> AppResult<bool> {
    Ok(crate::settings::platform::current(state)
        .await?
        .show_testing_templates)
}

/// The templates listed now.
async fn listed(state: &AppState) -> AppResult<Vec<&'static Template>> {
    let testing = shows_testing(state).await?;
    Ok(TEMPLATES
        .iter()
        .filter(|t| testing || t.category != TESTING)
        .collect())
}

/// One bundled egg.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// Stable id, the file name in `eggs/` without `.json`.
    pub id: &'static str,
    /// Category, e.g. `minecraft`.
    pub category: &'static str,
    /// The PTDL_v2 document.
    pub egg_json: &'static str,
    /// The SRV service the game's clients look up (`_minecraft._tcp`), for the games
    /// that honour SRV records (Pelican's list: Minecraft Java, Mumble, Factorio, Rust,
    /// SCP:SL, TeamSpeak 3); `None` for the others (Minecraft Bedrock ignores SRV).
    pub dns_srv_service: Option<&'static str>,
}

macro_rules! templates {
    ($( $id:literal => $category:literal $(, srv $srv:literal)?; )*) => {
        /// Every bundled template.
        pub const TEMPLATES: &[Template] = &[
            $( Template {
                id: $id,
                category: $category,
                egg_json: include_str!(concat!("../../../eggs/", $id, ".json")),
                dns_srv_service: srv!($($srv)?),
            }, )*
        ];
    };
}

/// A template's optional SRV service.
macro_rules! srv {
    () => {
        None
    };
    ($srv:literal) => {
        Some($srv)
    };
}

templates! {
    "minecraft-paper" => "minecraft", srv "_minecraft._tcp";
    "valheim" => "survival";
    "terraria" => "survival";
    "python-app" => "generic";
    "busybox-test" => "testing";
}

impl Template {
    /// The template by id.
    #[must_use]
    pub fn find(id: &str) -> Option<&'static Template> {
        TEMPLATES.iter().find(|t| t.id == id)
    }

    /// The parsed egg.
    ///
    /// # Errors
    /// 500 if a bundled egg does not parse (a unit test keeps that from shipping).
    pub fn egg(&self) -> AppResult<Egg> {
        parse_egg(self.egg_json).map_err(|e| {
            AppError::Internal(anyhow::anyhow!(
                "bundled template {} is invalid: {e}",
                self.id
            ))
        })
    }
}

/// A template as listed.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    /// The SRV service a workload made from it gets (`_minecraft._tcp`), or `null`.
    pub dns_srv_service: Option<String>,
    pub images: Vec<TemplateImage>,
    pub variables: Vec<TemplateVariable>,
}

/// `{"label": "Java 17", "image": "ghcr.io/pterodactyl/yolks:java_17"}`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateImage {
    pub label: String,
    pub image: String,
}

/// A template variable as listed.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateVariable {
    pub name: String,
    pub env_variable: String,
    pub default_value: String,
    pub rules: String,
    pub user_editable: bool,
}

fn view(t: &Template, egg: Egg) -> TemplateView {
    TemplateView {
        id: t.id.to_string(),
        description: egg.description,
        name: egg.name,
        category: t.category.to_string(),
        dns_srv_service: t.dns_srv_service.map(str::to_owned),
        images: egg
            .images
            .into_iter()
            .map(|i| TemplateImage {
                label: i.label,
                image: i.image,
            })
            .collect(),
        variables: egg
            .variables
            .into_iter()
            .map(|v| TemplateVariable {
                rules: rules_to_string(&v.rules),
                name: v.name,
                env_variable: v.env_variable,
                default_value: v.default_value,
                user_editable: v.user_editable,
            })
            .collect(),
    }
}

fn render(templates: &[&Template]) -> AppResult<Vec<TemplateView>> {
    templates.iter().map(|t| Ok(view(t, t.egg()?))).collect()
}

/// `GET /v1/templates`: every bundled template (`testing` only while shown).
pub async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> AppResult<AppJson<Vec<TemplateView>>> {
    render(&listed(&state).await?).map(AppJson)
}

/// `GET /v1/templates/{category}`: the templates of one category; 404 for a category no
/// template has.
pub async fn by_category(
    State(state): State<AppState>,
    _user: CurrentUser,
    AppPath(category): AppPath<String>,
) -> AppResult<AppJson<Vec<TemplateView>>> {
    let listed = listed(&state).await?;
    let matching: Vec<&Template> = listed
        .iter()
        .copied()
        .filter(|t| t.category == category)
        .collect();
    if matching.is_empty() {
        let mut known: Vec<&str> = listed.iter().map(|t| t.category).collect();
        known.sort_unstable();
        known.dedup();
        return Err(AppError::NotFound(format!(
            "no template category `{category}` (categories: {})",
            known.join(", ")
        )));
    }
    render(&matching).map(AppJson)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_ids_are_unique() {
        let mut ids: Vec<&str> = TEMPLATES.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TEMPLATES.len(), "duplicate template id");
        for t in TEMPLATES {
            let egg = t.egg().unwrap_or_else(|e| panic!("{}: {e}", t.id));
            assert!(
                !egg.images.is_empty() && !egg.startup.is_empty(),
                "{}",
                t.id
            );
            assert!(
                t.egg_json.contains("\"PTDL_v2\""),
                "{} must be a PTDL_v2 egg",
                t.id
            );
            for var in &egg.variables {
                var.validate(Some(&var.default_value))
                    .unwrap_or_else(|e| panic!("{}: default of {}: {e}", t.id, var.env_variable));
            }
            super::super::input::check_egg(&egg).expect("name within limits");
            if let Some(srv) = t.dns_srv_service {
                assert_eq!(
                    super::super::input::srv_service(srv).ok().as_deref(),
                    Some(srv),
                    "{}: SRV service",
                    t.id
                );
            }
        }
    }
}
