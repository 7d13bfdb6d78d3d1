//! The platform admin's "Import from Pterodactyl" pages (web layer, issue 20), through
//! the `/v1/pterodactyl` API as the signed-in user (it answers anyone but a platform
//! admin 403, shown as an error page):
//!
//! - `/admin/pterodactyl`: the connection form (API mode: panel URL and application
//!   key; database mode: a read-only MySQL/MariaDB login and the panel's `APP_KEY`; the
//!   shared `choice.js` shows the chosen mode's fields), one form with four buttons:
//!   Check connection (`validate`: the counts and warnings, or the refusal), List servers
//!   (`servers`: a table with what can be imported and why not, each with a checkbox),
//!   Dry run and Import (`import`, then the import's own page). Options: root admins
//!   become platform admins, the Pterodactyl root-admin login for the files, switch-over.
//!   Below, the imports so far. Secrets (the key, passwords, `APP_KEY`) are sent to the
//!   API and never written back into the page: after any submit their fields are empty.
//! - `/admin/pterodactyl/imports/{id}`: the import's status, phase and counts (the page
//!   reloads itself while it runs) and its report grouped by kind, item by item.
//!
//! The API's answers are read into the types below, named after its documented shapes.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use super::view::redirect;
use crate::types::Timestamp;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/admin/pterodactyl", get(form).post(submit))
        .route("/admin/pterodactyl/imports/{id}", get(import))
}

/// The prefix of a server checkbox's name (`server.<uuid>`).
const SERVER: &str = "server.";
/// MySQL's port when none is typed.
const MYSQL_PORT: u16 = 3306;
/// Seconds between reloads of a running import's page.
const REFRESH_SECS: u32 = 2;
/// The report's kinds, in the order the page shows them, with their headings.
const KINDS: &[(&str, &str)] = &[
    ("user", "Users"),
    ("egg", "Eggs → workloads"),
    ("server", "Servers → instances"),
    ("subuser", "Subusers → per-server access"),
    ("schedule", "Schedules"),
    ("files", "Files"),
];

// --- The API's answers. ---

/// What `validate` counted at the source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceCounts {
    pub locations: u64,
    pub nodes: u64,
    pub eggs: u64,
    pub users: u64,
    pub servers: u64,
    pub subusers: u64,
    pub schedules: u64,
}

/// `POST /v1/pterodactyl/validate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    pub mode: String,
    pub counts: SourceCounts,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One server of `POST /v1/pterodactyl/servers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceServer {
    pub uuid: String,
    #[serde(default)]
    pub identifier: String,
    pub name: String,
    #[serde(default)]
    pub owner_email: Option<String>,
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub egg: Option<String>,
    #[serde(default)]
    pub memory_mb: i64,
    #[serde(default)]
    pub disk_mb: i64,
    #[serde(default)]
    pub cpu: i64,
    #[serde(default)]
    pub ports: Vec<u32>,
    pub importable: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub already_imported: bool,
    #[serde(default)]
    pub instance_id: Option<String>,
}

/// `POST /v1/pterodactyl/servers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceServerList {
    pub data: Vec<SourceServer>,
}

/// What an import did so far, by outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportCounts {
    pub planned: u64,
    pub imported: u64,
    pub exists: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// One line of an import's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportItem {
    pub kind: String,
    pub source_uuid: String,
    #[serde(default)]
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub target_id: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// An import (`GET /v1/pterodactyl/imports/{id}`; the list leaves `items` out).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Import {
    pub id: String,
    pub mode: String,
    #[serde(default)]
    pub source: String,
    pub status: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub counts: ImportCounts,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub items: Vec<ImportItem>,
}

/// `GET /v1/pterodactyl/imports`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportList {
    pub data: Vec<Import>,
}

// --- The bodies the pages send. ---

/// How to reach the old panel.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "snake_case")]
enum Connection {
    Api {
        url: String,
        api_key: String,
    },
    Database {
        host: String,
        port: u16,
        database: String,
        username: String,
        password: String,
        app_key: String,
    },
}

/// The Pterodactyl root-admin login Wings' SFTP accepts, for the files.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
struct FilesLogin {
    username: String,
    password: String,
}

/// The body of `POST /v1/pterodactyl/import`.
#[derive(Debug, Serialize)]
struct ImportBody {
    #[serde(flatten)]
    connection: Connection,
    dry_run: bool,
    /// The servers ticked, when the list was shown; every server otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    servers: Option<Vec<String>>,
    root_admins_become_platform_admins: bool,
    files: Option<FilesLogin>,
    switch_over: bool,
}

// --- The form. ---

/// The form as typed (secrets included: they are sent, never shown again).
#[derive(Debug, Clone, Default)]
struct Typed {
    action: String,
    mode: String,
    url: String,
    api_key: String,
    host: String,
    port: String,
    database: String,
    username: String,
    password: String,
    app_key: String,
    root_admins: bool,
    files_username: String,
    files_password: String,
    switch_over: bool,
    /// The server list was on the page (so the ticked boxes are the choice).
    servers_listed: bool,
    servers: Vec<String>,
}

impl Typed {
    /// The form's fields (a checkbox is on when sent non-empty).
    fn of(form: &BTreeMap<String, String>) -> Self {
        let text = |name: &str| {
            form.get(name)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let on = |name: &str| form.get(name).is_some_and(|v| !v.is_empty());
        Self {
            action: text("action"),
            mode: text("mode"),
            url: text("url"),
            // Secrets as typed but for surrounding blanks (a pasted key's newline).
            api_key: text("api_key"),
            host: text("host"),
            port: text("port"),
            database: text("database"),
            username: text("username"),
            password: form.get("password").cloned().unwrap_or_default(),
            app_key: text("app_key"),
            root_admins: on("root_admins"),
            files_username: text("files_username"),
            files_password: form.get("files_password").cloned().unwrap_or_default(),
            switch_over: on("switch_over"),
            servers_listed: on("servers_listed"),
            servers: form
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .filter_map(|(name, _)| name.strip_prefix(SERVER))
                .filter(|uuid| !uuid.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The connection of the chosen mode.
    ///
    /// # Errors
    /// A port that is not a number, beside its field.
    fn connection(&self) -> Result<Connection, WebError> {
        if self.mode == "database" {
            let port = if self.port.is_empty() {
                MYSQL_PORT
            } else {
                self.port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| invalid("port", "a port number from 1 to 65535"))?
            };
            Ok(Connection::Database {
                host: self.host.clone(),
                port,
                database: self.database.clone(),
                username: self.username.clone(),
                password: self.password.clone(),
                app_key: self.app_key.clone(),
            })
        } else {
            Ok(Connection::Api {
                url: self.url.clone(),
                api_key: self.api_key.clone(),
            })
        }
    }

    /// The import body (`dry_run` or for real).
    ///
    /// # Errors
    /// As [`Self::connection`]; no server ticked in a list that was shown.
    fn import(&self, dry_run: bool) -> Result<ImportBody, WebError> {
        let connection = self.connection()?;
        if self.servers_listed && self.servers.is_empty() {
            return Err(invalid(
                "servers",
                "tick at least one server, or reload the page to import every server",
            ));
        }
        let files =
            (!self.files_username.is_empty() || !self.files_password.is_empty()).then(|| {
                FilesLogin {
                    username: self.files_username.clone(),
                    password: self.files_password.clone(),
                }
            });
        Ok(ImportBody {
            connection,
            dry_run,
            servers: self.servers_listed.then(|| self.servers.clone()),
            root_admins_become_platform_admins: self.root_admins,
            files,
            switch_over: self.switch_over,
        })
    }

    /// What the page shows again: everything but the secrets.
    fn shown(&self) -> ShownForm {
        ShownForm {
            mode: if self.mode == "database" {
                "database"
            } else {
                "api"
            },
            url: self.url.clone(),
            host: self.host.clone(),
            port: self.port.clone(),
            database: self.database.clone(),
            username: self.username.clone(),
            root_admins: self.root_admins,
            files_username: self.files_username.clone(),
            switch_over: self.switch_over,
        }
    }
}

/// The form's fields shown back after a submit: no secret among them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
struct ShownForm {
    mode: &'static str,
    url: String,
    host: String,
    port: String,
    database: String,
    username: String,
    root_admins: bool,
    files_username: String,
    switch_over: bool,
}

impl Default for ShownForm {
    fn default() -> Self {
        Self {
            mode: "api",
            url: String::new(),
            host: String::new(),
            port: MYSQL_PORT.to_string(),
            database: "panel".to_owned(),
            username: String::new(),
            root_admins: false,
            files_username: String::new(),
            switch_over: false,
        }
    }
}

/// A refusal of the form before it reaches the API, beside `field`.
fn invalid(field: &str, message: &str) -> WebError {
    WebError {
        field: Some(field.to_owned()),
        ..WebError::new(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            format!("{field}: {message}"),
        )
    }
}

/// A source's refusal explained for the admin (the API's message follows).
fn explained(mut error: WebError) -> WebError {
    let hint = match error.code.as_str() {
        "SOURCE_CREDENTIALS" => {
            "The old panel refused the key or the login: check it, and that the key may read every resource."
        }
        "APP_KEY_INVALID" => {
            "This APP_KEY does not decrypt the panel's data: copy it from the old panel's .env (APP_KEY=base64:...). Nothing was imported."
        }
        "SOURCE_UNREACHABLE" => {
            "The old panel could not be reached from this server: check the address and that it answers here."
        }
        "SOURCE_PROTOCOL" => {
            "The address answered, but not as a Pterodactyl panel: check the URL or the database name."
        }
        "OUTBOUND_DENIED" => {
            "The panel's outbound guard refused this address (a private, loopback or reserved one; an operator may allow it with outbound.allow)."
        }
        "OUTBOUND_UNRESOLVABLE" => "The old panel's host name does not resolve from this server.",
        _ => return error,
    };
    error.message = format!("{hint} ({})", error.message);
    error
}

/// A server as the table shows it, ticked or not.
#[derive(Debug, Serialize)]
struct ServerRow {
    #[serde(flatten)]
    server: SourceServer,
    checked: bool,
}

#[derive(Debug, Default, Serialize)]
struct FormPage {
    flash: Flash,
    error_field: String,
    form: ShownForm,
    /// The last Check connection's answer.
    check: Option<Validation>,
    /// The last List servers' answer.
    servers: Option<Vec<ServerRow>>,
    imports: Vec<Import>,
}

/// Renders `/admin/pterodactyl` with `page`'s outcome and the imports so far.
async fn show_form(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    mut page: FormPage,
) -> WebResult<Response> {
    // The list is also the gate: anyone but a platform admin gets the API's 403.
    let list: ImportList = kit::read(web, browser, user, "/v1/pterodactyl/imports").await?;
    page.imports = list.data;
    if let Some(error) = &page.flash.error {
        page.error_field = error.field.clone().unwrap_or_default();
    }
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Import from Pterodactyl", "admin"),
        "admin_pterodactyl.html.tera",
        &page,
    )
    .await
}

/// `GET /admin/pterodactyl`.
pub async fn form(State(web): State<WebState>, browser: Browser) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/pterodactyl");
    show_form(&web, &browser, &user, FormPage::default()).await
}

/// Lists the source's servers, `ticked` checked (all when `None`).
async fn list_servers(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    connection: &Connection,
    ticked: Option<&[String]>,
) -> WebResult<Vec<ServerRow>> {
    let list: SourceServerList = kit::write(
        web,
        browser,
        user,
        Method::POST,
        "/v1/pterodactyl/servers",
        Some(connection),
    )
    .await?;
    Ok(list
        .data
        .into_iter()
        .map(|server| ServerRow {
            checked: server.importable
                && ticked.map_or(!server.already_imported, |t| t.contains(&server.uuid)),
            server,
        })
        .collect())
}

/// `POST /admin/pterodactyl`: Check connection, List servers, Dry run or Import.
pub async fn submit(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<BTreeMap<String, String>>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/admin/pterodactyl");
    let typed = Typed::of(&form);
    // Dropped before anything is rendered: no secret reaches the page.
    drop(form);
    let mut page = FormPage {
        form: typed.shown(),
        ..FormPage::default()
    };
    match typed.action.as_str() {
        "check" => {
            let answer = match typed.connection() {
                Ok(c) => {
                    kit::write::<Validation, _>(
                        &web,
                        &browser,
                        &user,
                        Method::POST,
                        "/v1/pterodactyl/validate",
                        Some(&c),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match shown(answer)? {
                Ok(v) => page.check = Some(v),
                Err(e) => page.flash = Flash::error(explained(e)),
            }
        }
        "servers" => {
            let answer = match typed.connection() {
                Ok(c) => list_servers(&web, &browser, &user, &c, None).await,
                Err(e) => Err(e),
            };
            match shown(answer)? {
                Ok(rows) => page.servers = Some(rows),
                Err(e) => page.flash = Flash::error(explained(e)),
            }
        }
        "dry_run" | "import" => {
            let dry_run = typed.action == "dry_run";
            let answer = match typed.import(dry_run) {
                Ok(body) => {
                    kit::write::<Import, _>(
                        &web,
                        &browser,
                        &user,
                        Method::POST,
                        "/v1/pterodactyl/import",
                        Some(&body),
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match shown(answer)? {
                Ok(import) => {
                    let id = plain(&import.id)?;
                    return redirect(&format!("/admin/pterodactyl/imports/{id}"), []);
                }
                Err(e) => {
                    // The server list stays on the page, as ticked, when it was shown.
                    if typed.servers_listed
                        && let Ok(c) = typed.connection()
                    {
                        page.servers =
                            list_servers(&web, &browser, &user, &c, Some(&typed.servers))
                                .await
                                .ok();
                    }
                    page.flash = Flash::error(explained(e));
                }
            }
        }
        _ => {
            page.flash = Flash::error(invalid(
                "action",
                "choose Check connection, List servers, Dry run or Import",
            ));
        }
    }
    show_form(&web, &browser, &user, page).await
}

/// One kind of the report.
#[derive(Debug, Serialize)]
struct ItemGroup {
    kind: &'static str,
    heading: &'static str,
    items: Vec<ImportItem>,
}

/// The report's items grouped by kind, in [`KINDS`] order (unknown kinds last, as
/// they came).
fn grouped(items: Vec<ImportItem>) -> Vec<ItemGroup> {
    let mut groups: Vec<ItemGroup> = KINDS
        .iter()
        .map(|(kind, heading)| ItemGroup {
            kind,
            heading,
            items: Vec::new(),
        })
        .collect();
    let mut other = ItemGroup {
        kind: "other",
        heading: "Other",
        items: Vec::new(),
    };
    for item in items {
        match groups.iter_mut().find(|g| g.kind == item.kind) {
            Some(group) => group.items.push(item),
            None => other.items.push(item),
        }
    }
    groups.push(other);
    groups.retain(|g| !g.items.is_empty());
    groups
}

/// Whether an import in `status` is still under way.
fn running(status: &str) -> bool {
    matches!(status, "pending" | "running")
}

#[derive(Debug, Serialize)]
struct ImportPage {
    import: Import,
    groups: Vec<ItemGroup>,
    running: bool,
    /// `<meta http-equiv="refresh">` while it runs: seconds and the page's own path.
    refresh: Option<String>,
    refresh_secs: u32,
}

/// `GET /admin/pterodactyl/imports/{id}`.
pub async fn import(
    State(web): State<WebState>,
    Path(id): Path<String>,
    browser: Browser,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let here = format!("/admin/pterodactyl/imports/{id}");
    let user = page_user!(web, browser, &here);
    let mut import: Import = kit::read(
        &web,
        &browser,
        &user,
        &format!("/v1/pterodactyl/imports/{id}"),
    )
    .await?;
    let items = std::mem::take(&mut import.items);
    let running = running(&import.status);
    let page = ImportPage {
        groups: grouped(items),
        running,
        refresh: running.then_some(here),
        refresh_secs: REFRESH_SECS,
        import,
    };
    let title = if page.import.dry_run {
        "Pterodactyl dry run"
    } else {
        "Pterodactyl import"
    };
    kit::page(
        &web,
        &browser,
        &user,
        StatusCode::OK,
        (title, "admin"),
        "admin_pterodactyl_import.html.tera",
        &page,
    )
    .await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Typed {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Typed::of(&map)
    }

    #[test]
    fn api_mode_sends_the_url_and_key() {
        let t = form(&[
            ("mode", "api"),
            ("url", " https://panel.example.com "),
            ("api_key", "ptla_secret\n"),
            ("host", "ignored"),
        ]);
        assert_eq!(
            serde_json::to_value(t.connection().expect("valid")).expect("json"),
            json!({"mode": "api", "url": "https://panel.example.com", "api_key": "ptla_secret"})
        );
    }

    #[test]
    fn database_mode_sends_the_login_and_a_default_port() {
        let t = form(&[
            ("mode", "database"),
            ("host", "db.example.com"),
            ("port", ""),
            ("database", "panel"),
            ("username", "reader"),
            ("password", " spaced "),
            ("app_key", "base64:abc="),
        ]);
        assert_eq!(
            serde_json::to_value(t.connection().expect("valid")).expect("json"),
            json!({"mode": "database", "host": "db.example.com", "port": 3306,
                "database": "panel", "username": "reader", "password": " spaced ",
                "app_key": "base64:abc="})
        );
        let e = form(&[("mode", "database"), ("port", "99999")])
            .connection()
            .expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("port"));
    }

    #[test]
    fn the_import_body_carries_the_choice_and_options() {
        let t = form(&[
            ("mode", "api"),
            ("url", "https://p"),
            ("api_key", "k"),
            ("servers_listed", "1"),
            ("server.aaaa-1", "on"),
            ("server.bbbb-2", ""),
            ("root_admins", "on"),
            ("files_username", "admin"),
            ("files_password", "pw"),
        ]);
        let body = serde_json::to_value(t.import(true).expect("valid")).expect("json");
        assert_eq!(
            body,
            json!({"mode": "api", "url": "https://p", "api_key": "k", "dry_run": true,
                "servers": ["aaaa-1"], "root_admins_become_platform_admins": true,
                "files": {"username": "admin", "password": "pw"}, "switch_over": false})
        );
        // Without the list on the page: every server, and no files login.
        let body = serde_json::to_value(
            form(&[("mode", "api"), ("url", "u"), ("api_key", "k")])
                .import(false)
                .expect("valid"),
        )
        .expect("json");
        assert!(body.get("servers").is_none(), "{body}");
        assert!(body["files"].is_null(), "{body}");
        assert_eq!(body["dry_run"], false);
        // A list with nothing ticked is refused on the page.
        let e = form(&[("servers_listed", "1")])
            .import(false)
            .expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("servers"));
    }

    #[test]
    fn secrets_are_never_shown_back() {
        let t = form(&[
            ("mode", "database"),
            ("api_key", "ptla_secret"),
            ("password", "db-secret"),
            ("app_key", "base64:key-secret"),
            ("files_password", "files-secret"),
            ("username", "reader"),
        ]);
        let shown = serde_json::to_string(&t.shown()).expect("json");
        for secret in ["ptla_secret", "db-secret", "key-secret", "files-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("reader"));
    }

    #[test]
    fn source_refusals_are_explained() {
        let e = explained(WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "APP_KEY_INVALID",
            "mac mismatch",
        ));
        assert!(e.message.contains("Nothing was imported"), "{}", e.message);
        assert!(e.message.contains("mac mismatch"));
        let e = explained(WebError::new(StatusCode::BAD_REQUEST, "OTHER", "x"));
        assert_eq!(e.message, "x");
    }

    #[test]
    fn the_report_is_grouped_in_order() {
        let item = |kind: &str| ImportItem {
            kind: kind.to_owned(),
            source_uuid: "u".into(),
            name: "n".into(),
            status: "imported".into(),
            target_id: None,
            message: None,
            detail: serde_json::Value::Null,
        };
        let groups = grouped(vec![
            item("server"),
            item("user"),
            item("odd"),
            item("server"),
        ]);
        let kinds: Vec<(&str, usize)> = groups.iter().map(|g| (g.kind, g.items.len())).collect();
        assert_eq!(kinds, [("user", 1), ("server", 2), ("other", 1)]);
        assert!(running("pending") && running("running") && !running("failed"));
    }

    /// The pages as the handlers build them render, escape what they show, and never
    /// carry a secret typed in the form.
    #[test]
    fn the_pages_render_from_their_structs() {
        let xss = "<script>alert(1)</script>";
        let layout = super::super::view::layout("Import", "admin", "c", None);
        let typed = form(&[
            ("mode", "api"),
            ("url", xss),
            ("api_key", "ptla_secret"),
            ("files_password", "files-secret"),
        ]);
        let import: Import = serde_json::from_value(json!({
            "id": "imp1", "mode": "api", "source": xss, "status": "running", "dry_run": true,
            "phase": xss, "counts": {"planned": 1}, "error": xss,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": null, "finished_at": null,
            "items": [{"kind": "server", "source_uuid": "s1", "name": xss, "status": "imported",
                "target_id": "i1", "message": xss, "detail": {"note": xss}},
                {"kind": "user", "source_uuid": "u1", "name": "a", "status": "clash",
                "target_id": null, "message": "email taken", "detail": null}]
        }))
        .expect("reads");
        let server: SourceServer = serde_json::from_value(json!({"uuid": "s1", "name": xss,
            "importable": false, "reason": xss, "ports": [25565]}))
        .expect("reads");
        let page = FormPage {
            flash: Flash::error(invalid("servers", "tick one")),
            error_field: "servers".into(),
            form: typed.shown(),
            check: Some(Validation {
                mode: "api".into(),
                counts: SourceCounts {
                    servers: 4,
                    ..SourceCounts::default()
                },
                warnings: vec![xss.into()],
            }),
            servers: Some(vec![ServerRow {
                server,
                checked: false,
            }]),
            imports: vec![import.clone()],
        };
        let html = super::super::templates::render("admin_pterodactyl.html.tera", &layout, &page)
            .expect("renders");
        assert!(!html.contains("<script>alert"), "escaped");
        assert!(!html.contains("ptla_secret") && !html.contains("files-secret"));
        for part in [
            r#"<dd id="count-servers">4</dd>"#,
            r#"id="ptero-servers-error""#,
            r#"data-uuid="s1""#,
            r#"href="/admin/pterodactyl/imports/imp1""#,
            r#"<option value="api" selected>"#,
        ] {
            assert!(html.contains(part), "{part} in {html}");
        }
        let mut import = import;
        let items = std::mem::take(&mut import.items);
        let page = ImportPage {
            groups: grouped(items),
            running: true,
            refresh: Some("/admin/pterodactyl/imports/imp1".into()),
            refresh_secs: REFRESH_SECS,
            import,
        };
        let html =
            super::super::templates::render("admin_pterodactyl_import.html.tera", &layout, &page)
                .expect("renders");
        assert!(!html.contains("<script>alert"), "escaped");
        for part in [
            r#"http-equiv="refresh" content="2;url=&#x2F;admin&#x2F;pterodactyl&#x2F;imports&#x2F;imp1""#,
            r#"id="ptero-group-user""#,
            r#"id="ptero-group-server""#,
            r#"<a href="/instances/i1">"#,
            r#"data-status="clash""#,
            r#"id="ptero-import-running""#,
        ] {
            assert!(html.contains(part), "{part} in {html}");
        }
        assert!(
            html.find("ptero-group-user") < html.find("ptero-group-server"),
            "users first"
        );
    }

    #[test]
    fn the_api_answers_read() {
        let import: Import = serde_json::from_value(json!({
            "id": "imp1", "mode": "api", "source": "https://p", "status": "running",
            "dry_run": true, "phase": "servers",
            "counts": {"planned": 3, "imported": 1, "exists": 0, "skipped": 1, "failed": 0},
            "error": null, "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "finished_at": null,
            "items": [{"kind": "server", "source_uuid": "s1", "name": "srv", "status": "skipped",
                "target_id": null, "message": "egg refused", "detail": {"egg": "x"}}]
        }))
        .expect("reads");
        assert_eq!(import.items[0].message.as_deref(), Some("egg refused"));
        let servers: SourceServerList = serde_json::from_value(json!({"data": [{
            "uuid": "s1", "identifier": "s1", "name": "srv", "owner_email": "a@b.c",
            "node": "n", "egg": "Paper", "memory_mb": 1024, "disk_mb": 2048, "cpu": 100,
            "ports": [25565], "importable": false, "reason": "egg refused",
            "already_imported": false, "instance_id": null}]}))
        .expect("reads");
        assert_eq!(servers.data[0].ports, [25565]);
        let v: Validation = serde_json::from_value(json!({"mode": "database",
            "counts": {"locations": 1, "nodes": 2, "eggs": 3, "users": 4, "servers": 5,
                "subusers": 6, "schedules": 7}, "warnings": ["w"]}))
        .expect("reads");
        assert_eq!(v.counts.schedules, 7);
    }
}
