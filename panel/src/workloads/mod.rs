//! Workloads: what an instance runs, defined as a Pterodactyl egg and owned by an
//! organization. CRUD on the normalized egg shape, egg import and export, and the bundled
//! templates (`eggs/`) under `/v1/templates`.
//!
//! Every workload is stored as its PTDL_v2 export and validated by
//! `shardlyn_proto::egg::parse_egg`, whichever way it arrives (import, template or the
//! JSON shape), so rules and fields are checked identically.

mod handlers;
mod import;
pub mod input;
mod ordered;
pub mod store;
pub mod templates;
pub mod view;

use crate::routes::{Access, Routes};

/// `/v1/workloads/*` and `/v1/templates/*`.
pub fn router() -> Routes {
    Routes::new("workloads")
        .get(
            "/v1/workloads",
            Access::User,
            "List workloads",
            handlers::list,
        )
        .post(
            "/v1/workloads",
            Access::User,
            "Create workload",
            handlers::create,
        )
        .get(
            "/v1/workloads/{id}",
            Access::User,
            "Get workload",
            handlers::get,
        )
        .put(
            "/v1/workloads/{id}",
            Access::User,
            "Update workload",
            handlers::update,
        )
        .delete(
            "/v1/workloads/{id}",
            Access::User,
            "Delete workload",
            handlers::delete,
        )
        .get(
            "/v1/workloads/{id}/export",
            Access::User,
            "Export workload",
            handlers::export,
        )
        .post(
            "/v1/workloads/from-template",
            Access::User,
            "Create from workload template",
            import::from_template,
        )
        .post(
            "/v1/workloads/import-egg",
            Access::User,
            "Import Pterodactyl egg",
            import::import_egg,
        )
        .merge(
            Routes::new("templates")
                .get(
                    "/v1/templates",
                    Access::User,
                    "List deployment templates",
                    templates::list,
                )
                .get(
                    "/v1/templates/{category}",
                    Access::User,
                    "List templates by category",
                    templates::by_category,
                ),
        )
}

/// A file-name-safe kebab-case slug of `name` (`Minecraft: Paper` → `minecraft-paper`),
/// as Pterodactyl names exported eggs; `workload` when nothing is left.
#[must_use]
pub fn slug(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 60 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "workload".to_owned()
    } else {
        slug.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(super::slug("Minecraft: Paper"), "minecraft-paper");
        assert_eq!(super::slug("\"; rm -rf / ü"), "rm-rf");
        assert_eq!(super::slug("---"), "workload");
    }
}
