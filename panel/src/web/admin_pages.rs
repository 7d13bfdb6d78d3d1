//! Platform admin pages: users (search, suspend, unsuspend), every organization, the
//! audit log with its filters, and the panel's replicas with their agents. The API decides who is an admin: anyone else gets its
//! 403 as an error page.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::WebResult;
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use crate::admin::replicas::{ReplicaList, ReplicaView};
use crate::audit::store::Entry;
use crate::orgs::store::Org;
use crate::pagination::{Page, PageInfo};
use crate::users::store::User;

/// Rows per page of the admin lists.
const PER_PAGE: i64 = 50;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/admin/users", get(users))
        .route("/admin/users/{id}/suspend", post(suspend))
        .route("/admin/users/{id}/unsuspend", post(unsuspend))
        .route("/admin/organizations", get(organizations))
        .route("/admin/audit", get(audit))
        .route("/admin/replicas", get(replicas))
        .route("/admin/system-backup", get(system_backup))
        .merge(super::admin_ssh_pages::router())
}

/// Previous and next page numbers of a paged answer.
#[derive(Debug, Default, Serialize)]
struct Pager {
    page: i64,
    pages: i64,
    total: i64,
    prev: Option<String>,
    next: Option<String>,
}

/// The pager of a paged answer, its links keeping `filters`.
fn pager(info: &PageInfo, base: &str, filters: &[(&str, &str)]) -> Pager {
    let page = info.page.max(1);
    let total = info.total.max(0);
    let per_page = info.per_page.max(1);
    let pages = ((total + per_page - 1) / per_page).max(1);
    let link = |p: i64| {
        let p = p.to_string();
        let mut pairs = filters.to_vec();
        pairs.push(("page", &p));
        format!("{base}?{}", kit::query(&pairs))
    };
    Pager {
        page,
        pages,
        total,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    }
}

/// A page number from the address (1 when absent or odd).
fn page_number(page: Option<&str>) -> String {
    page.and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
        .to_string()
}

#[derive(Debug, Default, Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    page: Option<String>,
    done: Option<String>,
}

#[derive(Debug, Default, Serialize)]
struct UsersPage {
    flash: Flash,
    users: Vec<User>,
    q: String,
    pager: Pager,
    me: String,
}

async fn show_users(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    q: UsersQuery,
    flash: Flash,
) -> WebResult<Response> {
    let search = q.q.unwrap_or_default();
    let page = page_number(q.page.as_deref());
    let per_page = PER_PAGE.to_string();
    let filters = [("q", search.as_str())];
    let mut pairs = filters.to_vec();
    pairs.extend([("page", page.as_str()), ("per_page", per_page.as_str())]);
    let answer: Page<User> = kit::read(
        web,
        browser,
        user,
        &format!("/v1/admin/users?{}", kit::query(&pairs)),
    )
    .await?;
    let data = UsersPage {
        flash,
        pager: pager(&answer.pagination, "/admin/users", &filters),
        users: answer.data,
        q: search,
        me: user.current.user.id.clone(),
    };
    kit::page(
        web,
        browser,
        user,
        data.flash.status(),
        ("Users", "admin"),
        "admin_users.html.tera",
        &data,
    )
    .await
}

/// `GET /admin/users?q=&page=`.
pub async fn users(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/users");
    let mut q = query.map(|Query(q)| q).unwrap_or_default();
    let flash = Flash::from_done(&kit::Done {
        done: q.done.take(),
    });
    show_users(&web, &browser, &user, q, flash).await
}

#[derive(Debug, Deserialize)]
pub struct NoFields {}

async fn set_suspended(
    web: &WebState,
    browser: &Browser,
    id: &str,
    action: &str,
) -> WebResult<Response> {
    let id = plain(id)?;
    let user = page_user!(web, browser, "/admin/users");
    let answer = kit::act(
        web,
        browser,
        &user,
        Method::POST,
        &format!("/v1/admin/users/{id}/{action}"),
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(()) => kit::done("/admin/users", &format!("{action}ed")),
        Err(error) => {
            show_users(
                web,
                browser,
                &user,
                UsersQuery::default(),
                Flash::error(error),
            )
            .await
        }
    }
}

/// `POST /admin/users/{id}/suspend`.
pub async fn suspend(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    set_suspended(&web, &browser, &id, "suspend").await
}

/// `POST /admin/users/{id}/unsuspend`.
pub async fn unsuspend(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    set_suspended(&web, &browser, &id, "unsuspend").await
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    page: Option<String>,
}

#[derive(Debug, Serialize)]
struct OrganizationsPage {
    organizations: Vec<Org>,
    pager: Pager,
}

/// `GET /admin/organizations?page=`.
pub async fn organizations(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/organizations");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let page = page_number(q.page.as_deref());
    let per_page = PER_PAGE.to_string();
    let path = format!(
        "/v1/admin/organizations?{}",
        kit::query(&[("page", &page), ("per_page", &per_page)])
    );
    let answer: Page<Org> = kit::read(&web, &browser, &user, &path).await?;
    let data = OrganizationsPage {
        pager: pager(&answer.pagination, "/admin/organizations", &[]),
        organizations: answer.data,
    };
    kit::page(
        &web,
        &browser,
        &user,
        axum::http::StatusCode::OK,
        ("Organizations", "admin"),
        "admin_orgs.html.tera",
        &data,
    )
    .await
}

#[derive(Debug, Serialize)]
struct ReplicasPage {
    /// Several replicas can run (Redis is configured).
    clustered: bool,
    replicas: Vec<ReplicaView>,
    /// This replica's `/metrics` asks for `[metrics] token` (never shown).
    metrics_token: bool,
}

/// `GET /admin/replicas`.
pub async fn replicas(State(web): State<WebState>, browser: Browser) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/replicas");
    let answer: ReplicaList = kit::read(&web, &browser, &user, "/v1/admin/replicas").await?;
    let data = ReplicasPage {
        clustered: answer.data.iter().any(|r| r.url.is_some()),
        replicas: answer.data,
        metrics_token: !web.app.config.metrics.token.expose().is_empty(),
    };
    kit::page(
        &web,
        &browser,
        &user,
        axum::http::StatusCode::OK,
        ("Replicas", "admin"),
        "admin_replicas.html.tera",
        &data,
    )
    .await
}

/// `GET /admin/system-backup`: the panel's own backup settings and last runs.
pub async fn system_backup(State(web): State<WebState>, browser: Browser) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/system-backup");
    let answer: crate::system_backup::ConfigView =
        kit::read(&web, &browser, &user, "/v1/system/backup-config").await?;
    kit::page(
        &web,
        &browser,
        &user,
        axum::http::StatusCode::OK,
        ("Panel backup", "admin"),
        "admin_system_backup.html.tera",
        &answer,
    )
    .await
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    page: Option<String>,
}

#[derive(Debug, Serialize)]
struct AuditPage {
    flash: Flash,
    filters: AuditQuery,
    entries: Vec<Entry>,
    pager: Pager,
    /// The newest entries, unfiltered: new ones are added as they happen (`audit`
    /// events of `GET /v1/events`).
    live: bool,
}

/// A `datetime-local` value (`2026-01-02T03:04`, the reader's clock taken as UTC) or an
/// RFC 3339 time, as the API's RFC 3339; empty stays empty.
fn api_time(value: &str) -> String {
    let value = value.trim();
    if value.len() == 16 && value.as_bytes().get(10) == Some(&b'T') {
        format!("{value}:00Z")
    } else {
        value.to_owned()
    }
}

/// `GET /admin/audit?action=&actor=&since=&until=&page=`: the API validates the filters;
/// a bad one is shown above an empty list.
pub async fn audit(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/audit");
    let filters = query.map(|Query(q)| q).unwrap_or_default();
    let page = page_number(filters.page.as_deref());
    let per_page = PER_PAGE.to_string();
    let (since, until) = (api_time(&filters.since), api_time(&filters.until));
    let kept = [
        ("action", filters.action.as_str()),
        ("actor", filters.actor.as_str()),
        ("since", filters.since.as_str()),
        ("until", filters.until.as_str()),
    ];
    let path = format!(
        "/v1/admin/audit-logs?{}",
        kit::query(&[
            ("action", &filters.action),
            ("actor", &filters.actor),
            ("since", &since),
            ("until", &until),
            ("page", &page),
            ("per_page", &per_page),
        ])
    );
    let answer = kit::read::<Page<Entry>>(&web, &browser, &user, &path).await;
    let (flash, entries, pager) = match shown(answer)? {
        Ok(answer) => {
            let pager = pager(&answer.pagination, "/admin/audit", &kept);
            (Flash::default(), answer.data, pager)
        }
        Err(error) => (Flash::error(error), Vec::new(), Pager::default()),
    };
    let live = page == "1"
        && flash.error.is_none()
        && [
            &filters.action,
            &filters.actor,
            &filters.since,
            &filters.until,
        ]
        .iter()
        .all(|f| f.is_empty());
    let data = AuditPage {
        flash,
        filters,
        entries,
        pager,
        live,
    };
    kit::page(
        &web,
        &browser,
        &user,
        data.flash.status(),
        ("Audit log", "admin"),
        "admin_audit.html.tera",
        &data,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_links_keep_the_filters() {
        let info = PageInfo {
            page: 2,
            per_page: 50,
            total: 120,
        };
        let p = pager(
            &info,
            "/admin/audit",
            &[("action", "auth.login"), ("actor", "")],
        );
        assert_eq!((p.page, p.pages), (2, 3));
        assert_eq!(
            p.prev.as_deref(),
            Some("/admin/audit?action=auth.login&page=1")
        );
        assert_eq!(
            p.next.as_deref(),
            Some("/admin/audit?action=auth.login&page=3")
        );
    }

    #[test]
    fn form_times_become_api_times() {
        assert_eq!(api_time("2026-01-02T03:04"), "2026-01-02T03:04:00Z");
        assert_eq!(api_time(" "), "");
        assert_eq!(api_time("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05Z");
        assert_eq!(page_number(Some("0")), "1");
        assert_eq!(page_number(Some("x")), "1");
        assert_eq!(page_number(Some("3")), "3");
    }
}
