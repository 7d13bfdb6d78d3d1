//! Moving in from Pterodactyl: read a panel through its Application API ([`api`]) or
//! its database with its `APP_KEY` ([`database`], [`laravel`]), then map what was read
//! ([`model::Snapshot`]) onto Shardlyn's accounts ([`users`]), workloads, servers,
//! per-server grants and schedules, and copy the servers' files from the old Wings over
//! its SFTP ([`files`], [`wings`]).

pub mod api;
pub mod database;
pub mod files;
pub mod handlers;
pub mod laravel;
pub mod model;
pub mod run;
pub mod store;
pub mod users;
pub mod wings;

/// The routes, platform admins only.
pub fn router() -> crate::routes::Routes {
    use crate::routes::{Access, Routes};
    const SOURCE: [(u16, &str); 3] = [
        (
            422,
            "SOURCE_CREDENTIALS: the key or database login was refused; APP_KEY_INVALID: the APP_KEY does not open the panel's values",
        ),
        (
            502,
            "SOURCE_UNREACHABLE: the panel or database could not be reached; SOURCE_PROTOCOL: it answered something else",
        ),
        (403, "The address is refused by the outbound guard"),
    ];
    Routes::new("pterodactyl")
        .post(
            "/v1/pterodactyl/validate",
            Access::Admin,
            "Validate Pterodactyl connection",
            handlers::validate,
        )
        .errors(&SOURCE)
        .post(
            "/v1/pterodactyl/servers",
            Access::Admin,
            "List Pterodactyl servers",
            handlers::servers,
        )
        .errors(&SOURCE)
        .post(
            "/v1/pterodactyl/import",
            Access::Admin,
            "Import server",
            handlers::import,
        )
        .errors(&SOURCE)
        .get(
            "/v1/pterodactyl/imports",
            Access::Admin,
            "List Pterodactyl imports",
            handlers::list,
        )
        .get(
            "/v1/pterodactyl/imports/{id}",
            Access::Admin,
            "Get Pterodactyl import",
            handlers::get,
        )
        .errors(&[(404, "No such import")])
}
