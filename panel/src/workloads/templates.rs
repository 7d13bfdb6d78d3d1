//! The bundled templates: our own PTDL_v2 eggs in `eggs/`, embedded into the binary.
//!
//! The table below is the one list of templates: id (the file name without `.json`),
//! category, and the egg text. `GET /v1/templates` lists them, `/v1/templates/{category}`
//! filters them, and `POST /v1/workloads/from-template` copies one into an organization.

use serde::Serialize;
use shardlyn_proto::egg::{Egg, parse_egg};
use shardlyn_proto::rules::rules_to_string;

use super::view::ImageView;
use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppJson, AppPath, AppResult};

/// One bundled egg.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// Stable id, the file name in `eggs/` without `.json`.
    pub id: &'static str,
    /// Category, e.g. `minecraft`.
    pub category: &'static str,
    /// The PTDL_v2 document.
    pub egg_json: &'static str,
}

macro_rules! templates {
    ($( $id:literal => $category:literal, )*) => {
        /// Every bundled template.
        pub const TEMPLATES: &[Template] = &[
            $( Template {
                id: $id,
                category: $category,
                egg_json: include_str!(concat!("../../../eggs/", $id, ".json")),
            }, )*
        ];
    };
}

templates! {
    "minecraft-paper" => "minecraft",
    "valheim" => "survival",
    "terraria" => "survival",
    "python-app" => "generic",
    "busybox-test" => "testing",
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
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TemplateView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub category: &'a str,
    pub images: Vec<ImageView<'a>>,
    pub variables: Vec<TemplateVariable<'a>>,
}

/// A template variable as listed.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TemplateVariable<'a> {
    pub name: &'a str,
    pub env_variable: &'a str,
    pub default_value: &'a str,
    pub rules: String,
    pub user_editable: bool,
}

fn view<'a>(t: &'a Template, egg: &'a Egg) -> TemplateView<'a> {
    TemplateView {
        id: t.id,
        name: &egg.name,
        description: &egg.description,
        category: t.category,
        images: egg.images.iter().map(ImageView::from).collect(),
        variables: egg
            .variables
            .iter()
            .map(|v| TemplateVariable {
                name: &v.name,
                env_variable: &v.env_variable,
                default_value: &v.default_value,
                rules: rules_to_string(&v.rules),
                user_editable: v.user_editable,
            })
            .collect(),
    }
}

fn render(templates: &[&Template]) -> AppResult<serde_json::Value> {
    let eggs = templates
        .iter()
        .map(|t| t.egg())
        .collect::<AppResult<Vec<_>>>()?;
    let views: Vec<TemplateView<'_>> = templates
        .iter()
        .zip(&eggs)
        .map(|(t, egg)| view(t, egg))
        .collect();
    serde_json::to_value(views).map_err(|e| AppError::Internal(e.into()))
}

/// `GET /v1/templates`: every bundled template.
pub async fn list(_user: CurrentUser) -> AppResult<AppJson<serde_json::Value>> {
    let all: Vec<&Template> = TEMPLATES.iter().collect();
    render(&all).map(AppJson)
}

/// `GET /v1/templates/{category}`: the templates of one category; 404 for a category no
/// template has.
pub async fn by_category(
    _user: CurrentUser,
    AppPath(category): AppPath<String>,
) -> AppResult<AppJson<serde_json::Value>> {
    let matching: Vec<&Template> = TEMPLATES
        .iter()
        .filter(|t| t.category == category)
        .collect();
    if matching.is_empty() {
        let mut known: Vec<&str> = TEMPLATES.iter().map(|t| t.category).collect();
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
        }
    }
}
