//! API mode: reads a Pterodactyl panel through its Application API with a `ptla_` key.
//!
//! Base `{url}/api/application`, `Authorization: Bearer {key}`,
//! `Accept: Application/vnd.pterodactyl.v1+json`; every list is paged through with
//! `?page=&per_page=100` until `meta.pagination.total_pages` (a list without `meta`, like
//! a nest's eggs, is one page). It reads `/locations`, `/nodes`, `/nests`,
//! `/nests/{id}/eggs?include=variables`, `/users` and
//! `/servers?include=allocations,variables,subusers`.
//!
//! Eggs come back as Pterodactyl stores them: an egg with `config.extends`
//! (`config_from`) or `script.extends` (`copy_script_from`) leaves the fields it inherits
//! null. [`egg`] resolves the whole chain field by field, as the panel's `inherit_*` and
//! `copy_script_*` accessors do one level deep, and writes each egg as the PTDL_v2 export
//! document our importer takes. An egg whose chain names a missing egg or loops is kept
//! out of the snapshot and named in [`ApiRead::problems`].
//!
//! The Application API has no password hashes, TOTP secrets, daemon tokens or schedules,
//! and does not say whether a server skips its egg's scripts: those stay `None`, empty or
//! `false`.
//!
//! Domain layer. Requests go only to the addresses the outbound guard checked for the URL
//! (pinned, no redirect followed), time out after 10 s each, and never log the key.

mod egg;
mod fields;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use shardlyn_net::outbound::{Outbound, OutboundError};

use super::model::{Allocation, Location, Node, Server, Snapshot, SourceError, Subuser, User};
use fields::{Attrs, relationship};

/// Longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Items asked for per page (Pterodactyl's default is 50).
const PER_PAGE: u64 = 100;
/// A list longer than this many pages is not a Pterodactyl panel's answer.
const MAX_PAGES: u64 = 100_000;
/// Largest answer read, in bytes.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Times a `429 Too Many Requests` is waited out before giving up.
const RATE_LIMIT_RETRIES: u32 = 5;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The media type Pterodactyl's Application API answers.
const ACCEPT: &str = "Application/vnd.pterodactyl.v1+json";

/// What one read found: the snapshot, and why anything the panel listed was left out
/// (an egg whose `config_from`/`copy_script_from` chain is broken).
#[derive(Debug, Clone, Default)]
pub struct ApiRead {
    pub snapshot: Snapshot,
    pub problems: Vec<String>,
}

/// Reads the panel at `url` (its address, as in the browser) with the application API
/// key `api_key`; eggs that cannot be resolved are logged and left out (see
/// [`read_with_problems`] to have them reported).
///
/// # Errors
/// [`SourceError::Unreachable`] when the panel cannot be reached or the outbound guard
/// refuses its address, [`SourceError::Credentials`] when the key is refused (naming the
/// endpoint), [`SourceError::Protocol`] when an answer is not the Application API's.
pub async fn read(outbound: &Outbound, url: &str, api_key: &str) -> Result<Snapshot, SourceError> {
    let read = read_with_problems(outbound, url, api_key).await?;
    for problem in &read.problems {
        tracing::warn!(pterodactyl.problem = %problem, "pterodactyl: left out of the import");
    }
    Ok(read.snapshot)
}

/// [`read`], with what was left out and why.
///
/// # Errors
/// As [`read`].
pub async fn read_with_problems(
    outbound: &Outbound,
    url: &str,
    api_key: &str,
) -> Result<ApiRead, SourceError> {
    let client = Client::new(outbound, url, api_key).await?;
    let mut snapshot = Snapshot::default();
    for item in client.list("/locations", None).await? {
        snapshot
            .locations
            .push(location(&Attrs::new(&item, "location"))?);
    }
    for item in client.list("/nodes", None).await? {
        snapshot.nodes.push(node(&Attrs::new(&item, "node"))?);
    }
    let mut raw_eggs = Vec::new();
    let mut problems = Vec::new();
    for item in client.list("/nests", None).await? {
        let nest = Attrs::new(&item, "nest");
        let (nest_id, nest_name) = (nest.int("id")?, nest.string("name")?);
        let path = format!("/nests/{nest_id}/eggs");
        for egg in client.list(&path, Some("variables")).await? {
            // One odd egg leaves that egg out, not the whole panel.
            match egg::RawEgg::parse(&Attrs::new(&egg, "egg"), nest_id, &nest_name) {
                Ok(egg) => raw_eggs.push(egg),
                Err(e) => problems.push(format!("an egg of nest {nest_id} is left out: {e}")),
            }
        }
    }
    let (eggs, unresolved) = egg::resolve(&raw_eggs);
    snapshot.eggs = eggs;
    problems.extend(unresolved);
    for item in client.list("/users", None).await? {
        snapshot.users.push(user(&Attrs::new(&item, "user"))?);
    }
    let include = Some("allocations,variables,subusers");
    for item in client.list("/servers", include).await? {
        let attrs = Attrs::new(&item, "server");
        snapshot.servers.push(server(&attrs)?);
        snapshot.subusers.extend(subusers(&attrs)?);
    }
    Ok(ApiRead { snapshot, problems })
}

/// An HTTP client pinned to the panel's checked addresses, with the key.
struct Client {
    http: reqwest::Client,
    /// `{url}/api/application`, without trailing slash.
    base: String,
    key: String,
}

impl Client {
    async fn new(outbound: &Outbound, url: &str, key: &str) -> Result<Self, SourceError> {
        let key = key.trim();
        if key.is_empty() || key.chars().any(char::is_control) {
            return Err(SourceError::Credentials(
                "the application API key is empty or malformed".into(),
            ));
        }
        let url = url.trim().trim_end_matches('/');
        let checked = outbound.resolve_url(url).await.map_err(|e| match e {
            OutboundError::InvalidUrl(why) => {
                SourceError::Unreachable(format!("the panel URL is unusable: {why}"))
            }
            e => SourceError::Unreachable(e.to_string()),
        })?;
        let http = checked
            .pin(reqwest::Client::builder())
            .timeout(TIMEOUT)
            .user_agent(concat!("Shardlyn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Unreachable(format!("http client: {e}")))?;
        Ok(Self {
            http,
            base: format!("{url}/api/application"),
            key: key.to_owned(),
        })
    }

    /// Every item's `attributes` of the list at `path`, page after page.
    async fn list(&self, path: &str, include: Option<&str>) -> Result<Vec<Value>, SourceError> {
        let mut items = Vec::new();
        let mut page = 1;
        loop {
            let mut query = vec![
                ("page", page.to_string()),
                ("per_page", PER_PAGE.to_string()),
            ];
            if let Some(include) = include {
                query.push(("include", include.to_owned()));
            }
            let doc = self.get(path, &query).await?;
            let (data, total_pages) = list_envelope(doc, path)?;
            let empty = data.is_empty();
            items.extend(data);
            if empty || page >= total_pages || page >= MAX_PAGES {
                return Ok(items);
            }
            page += 1;
        }
    }

    /// One `GET`, its JSON answer.
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, SourceError> {
        let endpoint = format!("GET /api/application{path}");
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| SourceError::Unreachable(format!("the panel URL is unusable: {e}")))?;
        url.query_pairs_mut().extend_pairs(query);
        let mut retries = 0;
        let response = loop {
            let response = self
                .http
                .get(url.clone())
                .bearer_auth(&self.key)
                .header(reqwest::header::ACCEPT, ACCEPT)
                .send()
                .await
                .map_err(|e| transport(&e, &endpoint))?;
            if response.status() == StatusCode::TOO_MANY_REQUESTS && retries < RATE_LIMIT_RETRIES {
                retries += 1;
                tokio::time::sleep(retry_after(&response)).await;
                continue;
            }
            break response;
        };
        check_status(response.status(), &endpoint, response.headers())?;
        let body = read_body(response, &endpoint).await?;
        serde_json::from_slice(&body).map_err(|_| {
            SourceError::Protocol(format!(
                "{endpoint} did not answer JSON: is the URL the Pterodactyl panel's address?"
            ))
        })
    }
}

fn transport(e: &reqwest::Error, endpoint: &str) -> SourceError {
    // reqwest's own message names the URL only; it never holds the key, but say less.
    SourceError::Unreachable(if e.is_timeout() {
        format!("{endpoint} did not answer within {} s", TIMEOUT.as_secs())
    } else if e.is_connect() {
        format!("could not connect for {endpoint}")
    } else {
        format!("{endpoint} failed: the connection broke off")
    })
}

/// The wait a `429` asks for (`Retry-After` in seconds), 1 s when it says nothing.
fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(MAX_RETRY_AFTER)
}

fn check_status(
    status: StatusCode,
    endpoint: &str,
    headers: &reqwest::header::HeaderMap,
) -> Result<(), SourceError> {
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::UNAUTHORIZED => Err(SourceError::Credentials(format!(
            "{endpoint} answered 401: the application API key was not accepted"
        ))),
        StatusCode::FORBIDDEN => Err(SourceError::Credentials(format!(
            "{endpoint} answered 403: the key may not read this (an application key \
             (ptla_) with read access to locations, nodes, nests, eggs, users and \
             servers is needed)"
        ))),
        s if s.is_redirection() => {
            let to = headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("elsewhere");
            Err(SourceError::Protocol(format!(
                "{endpoint} redirected to {to}: give the panel's final address"
            )))
        }
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            Err(SourceError::Unreachable(format!(
                "{endpoint} answered {status}"
            )))
        }
        StatusCode::NOT_FOUND => Err(SourceError::Protocol(format!(
            "{endpoint} answered 404: is the URL the Pterodactyl panel's address?"
        ))),
        _ => Err(SourceError::Protocol(format!(
            "{endpoint} answered {status}"
        ))),
    }
}

async fn read_body(
    mut response: reqwest::Response,
    endpoint: &str,
) -> Result<Vec<u8>, SourceError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport(&e, endpoint))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(SourceError::Protocol(format!(
                "{endpoint} answered more than {} MiB",
                MAX_BODY / 1024 / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A list answer's items (each item's `attributes`) and `meta.pagination.total_pages`
/// (1 without `meta`).
fn list_envelope(doc: Value, path: &str) -> Result<(Vec<Value>, u64), SourceError> {
    let wrong = |what: &str| {
        SourceError::Protocol(format!(
            "GET /api/application{path} did not answer a Pterodactyl list: {what}"
        ))
    };
    let Value::Object(mut doc) = doc else {
        return Err(wrong("not a JSON object"));
    };
    if doc.get("object").and_then(Value::as_str) != Some("list") {
        return Err(wrong("`object` is not \"list\""));
    }
    let total_pages = match doc
        .get("meta")
        .and_then(|m| m.pointer("/pagination/total_pages"))
    {
        None => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| wrong("`meta.pagination.total_pages` is not a number"))?,
    };
    let Some(Value::Array(data)) = doc.remove("data") else {
        return Err(wrong("no `data` list"));
    };
    let items = data
        .into_iter()
        .map(|item| match item {
            Value::Object(mut item) => match item.remove("attributes") {
                Some(attributes @ Value::Object(_)) => Ok(attributes),
                _ => Err(wrong("an item has no `attributes` object")),
            },
            _ => Err(wrong("an item is not an object")),
        })
        .collect::<Result<_, _>>()?;
    Ok((items, total_pages))
}

fn location(a: &Attrs<'_>) -> Result<Location, SourceError> {
    Ok(Location {
        id: a.int("id")?,
        short: a.string("short")?,
        long: a.opt_string("long")?.unwrap_or_default(),
    })
}

fn node(a: &Attrs<'_>) -> Result<Node, SourceError> {
    Ok(Node {
        id: a.int("id")?,
        // Pterodactyl 0.7's nodes have no UUID.
        uuid: a.opt_string("uuid")?.unwrap_or_default(),
        name: a.string("name")?,
        location_id: a.int("location_id")?,
        fqdn: a.string("fqdn")?,
        scheme: a.opt_string("scheme")?.unwrap_or_else(|| "https".into()),
        daemon_listen: a.port("daemon_listen")?.unwrap_or(8080),
        daemon_sftp: a.port("daemon_sftp")?.unwrap_or(2022),
        memory_mb: a.opt_int("memory")?.unwrap_or(0),
        disk_mb: a.opt_int("disk")?.unwrap_or(0),
        daemon_token_id: None,
        daemon_token: None,
    })
}

fn user(a: &Attrs<'_>) -> Result<User, SourceError> {
    Ok(User {
        id: a.int("id")?,
        uuid: a.string("uuid")?,
        username: a.string("username")?,
        email: a.string("email")?,
        name_first: a.opt_string("first_name")?.unwrap_or_default(),
        name_last: a.opt_string("last_name")?.unwrap_or_default(),
        root_admin: a.flag("root_admin")?,
        password_hash: None,
        totp_secret: None,
        use_totp: a.flag("2fa")?,
    })
}

fn server(a: &Attrs<'_>) -> Result<Server, SourceError> {
    let limits = a.object("limits")?;
    let features = a.object("feature_limits")?;
    let container = a.object("container")?;
    let primary = a.opt_int("allocation")?;
    let allocations = relationship(a, "allocations")?
        .unwrap_or_default()
        .iter()
        .map(|al| {
            let id = al.int("id")?;
            Ok(Allocation {
                id,
                ip: al.string("ip")?,
                port: al.port("port")?.ok_or_else(|| al.missing("port"))?,
                alias: al.opt_string("alias")?.filter(|s| !s.is_empty()),
                primary: primary == Some(id),
            })
        })
        .collect::<Result<Vec<_>, SourceError>>()?;
    Ok(Server {
        id: a.int("id")?,
        uuid: a.string("uuid")?,
        identifier: a.string("identifier")?,
        name: a.string("name")?,
        description: a.opt_string("description")?.unwrap_or_default(),
        owner_id: a.int("user")?,
        node_id: a.int("node")?,
        egg_id: a.int("egg")?,
        status: a.opt_string("status")?,
        suspended: a.flag("suspended")? || a.opt_string("status")?.as_deref() == Some("suspended"),
        memory_mb: limits.opt_int("memory")?.unwrap_or(0),
        swap_mb: limits.opt_int("swap")?.unwrap_or(0),
        disk_mb: limits.opt_int("disk")?.unwrap_or(0),
        io: limits.opt_int("io")?.unwrap_or(500),
        cpu: limits.opt_int("cpu")?.unwrap_or(0),
        threads: limits.opt_string("threads")?.filter(|s| !s.is_empty()),
        oom_disabled: limits.flag("oom_disabled")?,
        startup: container.opt_string("startup_command")?.unwrap_or_default(),
        image: container.opt_string("image")?.unwrap_or_default(),
        skip_scripts: false,
        backup_limit: features.opt_int("backups")?.unwrap_or(0),
        allocations,
        variables: server_variables(a, &container)?,
    })
}

/// Environment variables Pterodactyl adds to every server's `container.environment`
/// that are not egg variables.
const BUILT_IN_ENV: &[&str] = &[
    "STARTUP",
    "P_SERVER_LOCATION",
    "P_SERVER_UUID",
    "P_SERVER_ALLOCATION_LIMIT",
];

/// Every egg variable by `env_variable`: the server's value (`server_value`), else the
/// egg's default. Without `include=variables`, `container.environment` less the
/// built-in names.
fn server_variables(
    a: &Attrs<'_>,
    container: &Attrs<'_>,
) -> Result<BTreeMap<String, String>, SourceError> {
    if let Some(vars) = relationship(a, "variables")? {
        return vars
            .iter()
            .map(|v| {
                let value = match v.opt_scalar("server_value")? {
                    Some(value) => value,
                    None => v.opt_scalar("default_value")?.unwrap_or_default(),
                };
                Ok((v.string("env_variable")?, value))
            })
            .collect();
    }
    let env = container.opt_object("environment")?;
    let mut out = BTreeMap::new();
    if let Some(env) = env {
        for key in env.keys() {
            if !BUILT_IN_ENV.contains(&key.as_str()) {
                out.insert(key.clone(), env.opt_scalar(key)?.unwrap_or_default());
            }
        }
    }
    Ok(out)
}

fn subusers(a: &Attrs<'_>) -> Result<Vec<Subuser>, SourceError> {
    let server_id = a.int("id")?;
    relationship(a, "subusers")?
        .unwrap_or_default()
        .iter()
        .map(|s| {
            Ok(Subuser {
                server_id: s.opt_int("server_id")?.unwrap_or(server_id),
                user_id: s.int("user_id")?,
                permissions: s.string_list("permissions")?,
            })
        })
        .collect()
}
