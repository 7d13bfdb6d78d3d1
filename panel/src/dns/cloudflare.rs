//! The Cloudflare DNS provider: API v4 (`{cloud.cloudflare_api_url}`), a bearer API token.
//! Provider layer: it knows Cloudflare's wire format and nothing of the panel's records.
//!
//! - zones: `GET /zones`, 50 a page (Cloudflare's most), filtered by `account.id` when
//!   the credential names an account.
//! - records: `GET /zones/{id}/dns_records`, 5,000,000 a page (Cloudflare's most, so one
//!   call for any real zone; every page is counted), grouped by name and type into
//!   record sets. SRV is read from its `data`; TXT content is unquoted whether Cloudflare
//!   answers it quoted or not.
//! - apply: the ids of the affected records are looked up — per name (`name.exact`)
//!   when the changes touch at most [`FEW_NAMES`] names, else with one list of the zone —
//!   and every change goes in one `POST /zones/{id}/dns_records/batch`: deletes of the
//!   records a set no longer has, posts of those it gains (records already right are
//!   left alone). Cloudflare runs a batch's deletes before its posts in one transaction.
//!   A batch holds at most [`BATCH_LIMIT`] operations (the Free plan's limit); more
//!   changes are sent in several batches, deletes first.
//!
//! Written records are `proxied: false` (a game server needs its real address) with the
//! comment "Managed by Shardlyn". Errors: a transport failure, the outbound guard or a
//! 502/503/504 are [`ProviderError::Unreachable`]; `success: false` is
//! [`ProviderError::Refused`] with Cloudflare's first message and code; an unknown zone
//! (codes 7003, 1001) is [`ProviderError::NoZone`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Deserialize;
use serde_json::{Value, json};

use super::provider::{Change, Context, DnsProvider, ProviderError, RecordSet, Zone};
use crate::credentials::providers::Parts;
use crate::error::{AppError, AppResult};

const PROVIDER: &str = "cloudflare";
/// `per_page` of a zone list (Cloudflare allows 5 to 50).
const ZONES_PER_PAGE: u64 = 50;
/// `per_page` of a record list (Cloudflare allows up to 5,000,000).
const RECORDS_PER_PAGE: u64 = 5_000_000;
/// Operations in one batch at most (Free plan: 200; paid plans allow more).
pub const BATCH_LIMIT: usize = 200;
/// Up to this many distinct names, `apply` looks records up by name; beyond, it lists
/// the zone once.
pub const FEW_NAMES: usize = 3;
/// The comment on every record written.
const COMMENT: &str = "Managed by Shardlyn";
/// Cloudflare's TXT content limit, in characters.
const TXT_CONTENT_MAX: usize = 2048;

/// A Cloudflare API client for one credential.
pub struct Client {
    ctx: Context,
    base: String,
    token: String,
    account_id: Option<String>,
}

impl Client {
    /// Builds the client from a credential's fields (`api_token`, optional `account_id`).
    ///
    /// # Errors
    /// 400 `config.api_token` when the credential has no token.
    pub fn new(ctx: Context, parts: &Parts, config: &crate::config::Config) -> AppResult<Self> {
        let text = |map: &serde_json::Map<String, Value>, key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let token = text(&parts.secrets, "api_token").ok_or_else(|| {
            AppError::invalid_field(
                "config.api_token",
                "the Cloudflare credential has no API token",
            )
        })?;
        Ok(Self {
            ctx,
            base: config
                .cloud
                .cloudflare_api_url
                .trim_end_matches('/')
                .to_owned(),
            token,
            account_id: text(&parts.public, "account_id"),
        })
    }
}

/// Cloudflare's answer envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Debug, Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_chain: Vec<ApiMessage>,
}

#[derive(Debug, Deserialize)]
struct ResultInfo {
    #[serde(default)]
    total_pages: Option<u64>,
}

/// A DNS record as Cloudflare answers it (the fields used here).
#[derive(Debug, Clone, Deserialize)]
struct CfRecord {
    id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    proxied: bool,
    #[serde(default)]
    priority: Option<u64>,
    #[serde(default)]
    data: Option<Value>,
}

impl CfRecord {
    fn name(&self) -> String {
        self.name.trim_end_matches('.').to_ascii_lowercase()
    }

    fn kind(&self) -> String {
        self.kind.to_ascii_uppercase()
    }

    /// The record's content as a zone file writes it (see `provider`).
    fn zone_content(&self) -> String {
        let kind = self.kind();
        let data = self.data.as_ref().filter(|d| d.is_object());
        let num = |d: &Value, k: &str| d[k].as_u64().unwrap_or_default();
        match (kind.as_str(), data) {
            ("SRV", Some(d)) => normalize(
                "SRV",
                &format!(
                    "{} {} {} {}",
                    num(d, "priority"),
                    num(d, "weight"),
                    num(d, "port"),
                    d["target"].as_str().unwrap_or(".")
                ),
            ),
            // An older answer: `weight port target` with the priority beside it.
            ("SRV", None) if self.content.split_whitespace().count() == 3 => normalize(
                "SRV",
                &format!("{} {}", self.priority.unwrap_or_default(), self.content),
            ),
            ("MX", _) => normalize(
                "MX",
                &format!("{} {}", self.priority.unwrap_or_default(), self.content),
            ),
            ("CAA", Some(d)) => format!(
                "{} {} \"{}\"",
                num(d, "flags"),
                d["tag"].as_str().unwrap_or_default(),
                d["value"].as_str().unwrap_or_default()
            ),
            ("TXT", _) => unquote(&self.content),
            (kind, _) => normalize(kind, &self.content),
        }
    }
}

/// `content` of `kind` in the form the sets compare: addresses canonical, names lower
/// case without the trailing dot.
fn normalize(kind: &str, content: &str) -> String {
    let content = content.trim();
    let host = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    match kind {
        "A" => content
            .parse::<Ipv4Addr>()
            .map_or_else(|_| content.to_owned(), |ip| ip.to_string()),
        "AAAA" => content
            .parse::<Ipv6Addr>()
            .map_or_else(|_| content.to_owned(), |ip| ip.to_string()),
        "CNAME" | "NS" | "PTR" => host(content),
        "SRV" | "MX" => {
            let mut parts: Vec<String> = content.split_whitespace().map(str::to_owned).collect();
            if let Some(last) = parts.last_mut()
                && last != "."
            {
                *last = host(last);
            }
            parts.join(" ")
        }
        _ => content.to_owned(),
    }
}

/// TXT content as its text: `"a" "b"` (zone-file character strings, with `\"`, `\\`
/// and `\DDD` escapes) is `ab`; unquoted content is taken as it is.
fn unquote(content: &str) -> String {
    let trimmed = content.trim();
    if !trimmed.starts_with('"') {
        return content.to_owned();
    }
    let mut out = Vec::new();
    let mut chars = trimmed.bytes().peekable();
    loop {
        while chars.next_if(u8::is_ascii_whitespace).is_some() {}
        match chars.next() {
            None => break,
            Some(b'"') => {}
            Some(_) => return content.to_owned(),
        }
        loop {
            match chars.next() {
                None => return content.to_owned(),
                Some(b'"') => break,
                Some(b'\\') => {
                    let digits: Vec<u8> = (0..3)
                        .map_while(|_| chars.next_if(u8::is_ascii_digit))
                        .collect();
                    if digits.len() == 3 {
                        let n = digits
                            .iter()
                            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
                        out.push(u8::try_from(n).unwrap_or(b'?'));
                    } else if digits.is_empty() {
                        match chars.next() {
                            Some(c) => out.push(c),
                            None => return content.to_owned(),
                        }
                    } else {
                        return content.to_owned();
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| content.to_owned())
}

/// TXT text as Cloudflare recommends writing it: quoted strings of at most 255 bytes
/// (`"` and `\` escaped); unquoted when the quoted form would pass Cloudflare's 2,048
/// characters (Cloudflare splits long unquoted text itself).
fn quote(text: &str) -> String {
    let mut strings = Vec::new();
    for chunk in text.as_bytes().chunks(255) {
        let chunk = String::from_utf8_lossy(chunk);
        strings.push(format!(
            "\"{}\"",
            chunk.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    let quoted = strings.join(" ");
    if quoted.chars().count() <= TXT_CONTENT_MAX {
        quoted
    } else {
        text.to_owned()
    }
}

/// A pinned HTTP client for one operation (its pages and batches).
struct Http {
    client: reqwest::Client,
}

fn refused(message: impl Into<String>) -> ProviderError {
    ProviderError::Refused {
        provider: PROVIDER,
        status: None,
        message: message.into(),
    }
}

fn unreachable(message: impl Into<String>) -> ProviderError {
    ProviderError::Unreachable {
        provider: PROVIDER,
        message: message.into(),
    }
}

/// A path segment, percent-encoded (zone ids come from the database).
fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Client {
    /// Resolves the API's host through the outbound guard and builds a client pinned
    /// to the addresses found.
    async fn http(&self) -> Result<Http, ProviderError> {
        let checked = self
            .ctx
            .outbound
            .resolve_url(&self.base)
            .await
            .map_err(|e| unreachable(format!("the Cloudflare API address is refused: {e}")))?;
        let client = checked
            .pin(reqwest::Client::builder())
            .timeout(self.ctx.timeout)
            .user_agent(concat!("Shardlyn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| unreachable(format!("http client: {e}")))?;
        Ok(Http { client })
    }

    /// One request; the envelope when Cloudflare answered `success: true`.
    async fn send(
        &self,
        http: &Http,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        zone: Option<&Zone>,
    ) -> Result<Envelope, ProviderError> {
        let mut request = http
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            unreachable(if e.is_timeout() {
                "Cloudflare did not answer in time".to_owned()
            } else {
                format!("could not connect to Cloudflare ({})", self.base)
            })
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|_| unreachable("the connection to Cloudflare broke mid-answer"))?;
        let envelope = serde_json::from_str::<Envelope>(&text).ok();
        let gateway = matches!(status.as_u16(), 502..=504);
        let Some(envelope) = envelope else {
            let message = format!("Cloudflare answered {status} without its JSON envelope");
            return Err(if status.is_server_error() {
                unreachable(message)
            } else {
                ProviderError::Refused {
                    provider: PROVIDER,
                    status: Some(status.as_u16()),
                    message,
                }
            });
        };
        if envelope.success && status.is_success() {
            return Ok(envelope);
        }
        if let Some(zone) = zone
            && envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, 1001 | 7003))
        {
            return Err(ProviderError::NoZone {
                provider: PROVIDER,
                zone: zone.name.clone(),
            });
        }
        let message = envelope.errors.first().map_or_else(
            || format!("Cloudflare answered {status}"),
            |e| {
                let mut m = format!("{} (code {})", e.message, e.code);
                for inner in &e.error_chain {
                    m.push_str(&format!("; {} (code {})", inner.message, inner.code));
                }
                m
            },
        );
        Err(if gateway {
            unreachable(message)
        } else {
            ProviderError::Refused {
                provider: PROVIDER,
                status: Some(status.as_u16()),
                message,
            }
        })
    }

    /// Every record of `zone` passing `filter`, all pages (each counted).
    async fn list(
        &self,
        http: &Http,
        zone: &Zone,
        filter: &[(&str, String)],
    ) -> Result<Vec<CfRecord>, ProviderError> {
        let path = format!("/zones/{}/dns_records", segment(&zone.id));
        let mut records = Vec::new();
        for page in 1u64.. {
            let mut query = vec![
                ("page", page.to_string()),
                ("per_page", RECORDS_PER_PAGE.to_string()),
            ];
            query.extend(filter.iter().cloned());
            self.ctx.calls.record_list();
            let envelope = self
                .send(http, reqwest::Method::GET, &path, &query, None, Some(zone))
                .await?;
            let got: Vec<CfRecord> = serde_json::from_value(envelope.result)
                .map_err(|e| refused(format!("Cloudflare's record list did not parse: {e}")))?;
            let last = envelope
                .result_info
                .and_then(|i| i.total_pages)
                .is_none_or(|total| page >= total);
            let empty = got.is_empty();
            records.extend(got);
            if last || empty {
                break;
            }
        }
        Ok(records)
    }
}

impl DnsProvider for Client {
    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        #[derive(Deserialize)]
        struct CfZone {
            id: String,
            name: String,
        }
        let http = self.http().await?;
        let mut zones = Vec::new();
        for page in 1u64.. {
            let mut query = vec![
                ("page", page.to_string()),
                ("per_page", ZONES_PER_PAGE.to_string()),
            ];
            if let Some(account) = &self.account_id {
                query.push(("account.id", account.clone()));
            }
            self.ctx.calls.zone_list();
            let envelope = self
                .send(&http, reqwest::Method::GET, "/zones", &query, None, None)
                .await?;
            let got: Vec<CfZone> = serde_json::from_value(envelope.result)
                .map_err(|e| refused(format!("Cloudflare's zone list did not parse: {e}")))?;
            let last = envelope
                .result_info
                .and_then(|i| i.total_pages)
                .is_none_or(|total| page >= total);
            let empty = got.is_empty();
            zones.extend(got.into_iter().map(|z| Zone {
                id: z.id,
                name: z.name.trim_end_matches('.').to_ascii_lowercase(),
            }));
            if last || empty {
                break;
            }
        }
        Ok(zones)
    }

    async fn records(&self, zone: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        let http = self.http().await?;
        let records = self.list(&http, zone, &[]).await?;
        let mut sets: BTreeMap<(String, String), RecordSet> = BTreeMap::new();
        for r in &records {
            let set = sets
                .entry((r.name(), r.kind()))
                .or_insert_with(|| RecordSet {
                    name: r.name(),
                    record_type: r.kind(),
                    ttl: r.ttl,
                    contents: Vec::new(),
                });
            set.ttl = set.ttl.min(r.ttl);
            set.contents.push(r.zone_content());
        }
        Ok(sets.into_values().map(RecordSet::normalized).collect())
    }

    async fn apply(&self, zone: &Zone, changes: &[Change]) -> Result<(), ProviderError> {
        if changes.is_empty() {
            return Ok(());
        }
        let http = self.http().await?;
        let names: BTreeSet<String> = changes
            .iter()
            .map(|c| c.key().0.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        let mut current = Vec::new();
        if names.len() <= FEW_NAMES {
            for name in &names {
                let found = self
                    .list(&http, zone, &[("name.exact", name.clone())])
                    .await?;
                current.extend(found.into_iter().filter(|r| r.name() == *name));
            }
        } else {
            let all = self.list(&http, zone, &[]).await?;
            current.extend(all.into_iter().filter(|r| names.contains(&r.name())));
        }
        let (deletes, posts) = plan(&current, changes)?;
        if deletes.is_empty() && posts.is_empty() {
            return Ok(());
        }
        let path = format!("/zones/{}/dns_records/batch", segment(&zone.id));
        let ops: Vec<(bool, Value)> = deletes
            .into_iter()
            .map(|id| (true, json!({"id": id})))
            .chain(posts.into_iter().map(|p| (false, p)))
            .collect();
        for chunk in ops.chunks(BATCH_LIMIT) {
            let body = json!({
                "deletes": chunk.iter().filter(|(d, _)| *d).map(|(_, v)| v).collect::<Vec<_>>(),
                "posts": chunk.iter().filter(|(d, _)| !*d).map(|(_, v)| v).collect::<Vec<_>>(),
            });
            self.ctx.calls.write();
            self.send(
                &http,
                reqwest::Method::POST,
                &path,
                &[],
                Some(&body),
                Some(zone),
            )
            .await?;
        }
        Ok(())
    }
}

/// The ids to delete and the records to post so that each changed set is exactly as
/// asked; records already right (same content and TTL, not proxied) stay.
fn plan(
    current: &[CfRecord],
    changes: &[Change],
) -> Result<(Vec<String>, Vec<Value>), ProviderError> {
    let mut by_key: BTreeMap<(String, String), Vec<&CfRecord>> = BTreeMap::new();
    for r in current {
        by_key.entry((r.name(), r.kind())).or_default().push(r);
    }
    let mut deletes = Vec::new();
    let mut posts = Vec::new();
    for change in changes {
        let (name, kind) = change.key();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let kind = kind.to_ascii_uppercase();
        let existing = by_key
            .get(&(name.clone(), kind.clone()))
            .into_iter()
            .flatten()
            .copied();
        match change {
            Change::Delete { .. } => deletes.extend(existing.map(|r| r.id.clone())),
            Change::Upsert(set) => {
                let ttl = if set.ttl == 1 {
                    1
                } else {
                    set.ttl.clamp(60, 86_400)
                };
                let mut wanted: Vec<String> = set
                    .contents
                    .iter()
                    .map(|c| {
                        if kind == "TXT" {
                            c.clone()
                        } else {
                            normalize(&kind, c)
                        }
                    })
                    .collect();
                wanted.sort();
                wanted.dedup();
                let mut kept = BTreeSet::new();
                for r in existing {
                    let content = r.zone_content();
                    if !r.proxied
                        && r.ttl == ttl
                        && wanted.contains(&content)
                        && kept.insert(content)
                    {
                        continue;
                    }
                    deletes.push(r.id.clone());
                }
                for content in wanted.iter().filter(|c| !kept.contains(*c)) {
                    posts.push(body(&name, &kind, content, ttl)?);
                }
            }
        }
    }
    Ok((deletes, posts))
}

/// The body that creates one record.
fn body(name: &str, kind: &str, content: &str, ttl: u32) -> Result<Value, ProviderError> {
    let mut record = json!({"type": kind, "name": name, "ttl": ttl, "comment": COMMENT});
    let numbers = |parts: &[&str]| -> Option<Vec<u64>> {
        parts
            .iter()
            .map(|p| p.parse::<u64>().ok().filter(|n| *n <= 65_535))
            .collect()
    };
    let parts: Vec<&str> = content.split_whitespace().collect();
    match kind {
        "A" | "AAAA" | "CNAME" => {
            record["content"] = json!(content);
            record["proxied"] = json!(false);
        }
        "TXT" => record["content"] = json!(quote(content)),
        "SRV" => {
            let [p, w, port, target] = parts[..] else {
                return Err(refused(format!(
                    "SRV content {content:?} is not \"priority weight port target\""
                )));
            };
            let n = numbers(&[p, w, port]).ok_or_else(|| {
                refused(format!(
                    "SRV content {content:?} has a number out of 0 to 65535"
                ))
            })?;
            record["data"] =
                json!({"priority": n[0], "weight": n[1], "port": n[2], "target": target});
        }
        "MX" => {
            let [p, target] = parts[..] else {
                return Err(refused(format!(
                    "MX content {content:?} is not \"priority target\""
                )));
            };
            let n = numbers(&[p]).ok_or_else(|| refused(format!("MX priority of {content:?}")))?;
            record["content"] = json!(target);
            record["priority"] = json!(n[0]);
        }
        "CAA" => {
            let [flags, tag, value @ ..] = parts.as_slice() else {
                return Err(refused(format!(
                    "CAA content {content:?} is not \"flags tag value\""
                )));
            };
            let flags =
                numbers(&[*flags]).ok_or_else(|| refused(format!("CAA flags of {content:?}")))?;
            record["data"] =
                json!({"flags": flags[0], "tag": tag, "value": value.join(" ").trim_matches('"')});
        }
        _ => record["content"] = json!(content),
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_content_is_quoted_and_unquoted_in_zone_file_style() {
        assert_eq!(unquote("\"v=spf1 -all\""), "v=spf1 -all");
        assert_eq!(unquote("v=spf1 -all"), "v=spf1 -all");
        assert_eq!(unquote("\"ab\" \"cd\""), "abcd");
        assert_eq!(unquote(r#""say \"hi\" \\ \065""#), r#"say "hi" \ A"#);
        assert_eq!(unquote("\"unterminated"), "\"unterminated");
        for text in ["plain", r#"with "quotes" and \ slash"#, &"x".repeat(600)] {
            assert_eq!(unquote(&quote(text)), text, "{text}");
        }
        let long = "y".repeat(2040);
        assert_eq!(quote(&long), long, "too long to quote: sent as it is");
    }

    #[test]
    fn srv_reads_data_or_either_content_form() {
        let record = |content: &str, priority: Option<u64>, data: Option<Value>| CfRecord {
            id: "1".into(),
            name: "_minecraft._tcp.MC.example.com.".into(),
            kind: "srv".into(),
            content: content.into(),
            ttl: 300,
            proxied: false,
            priority,
            data,
        };
        let want = "0 5 25565 mc.example.com";
        let from_data = record(
            "",
            None,
            Some(json!({"priority": 0, "weight": 5, "port": 25565, "target": "MC.example.com."})),
        );
        assert_eq!(from_data.zone_content(), want);
        assert_eq!(
            record("5 25565 mc.example.com", Some(0), None).zone_content(),
            want
        );
        assert_eq!(
            record("0 5 25565 mc.example.com.", None, None).zone_content(),
            want
        );
        assert_eq!(from_data.name(), "_minecraft._tcp.mc.example.com");
    }

    #[test]
    fn plan_keeps_what_is_right_and_replaces_the_rest() {
        let rec = |id: &str, kind: &str, content: &str, ttl: u32| CfRecord {
            id: id.into(),
            name: "mc.example.com".into(),
            kind: kind.into(),
            content: content.into(),
            ttl,
            proxied: false,
            priority: None,
            data: None,
        };
        let current = [
            rec("a1", "A", "203.0.113.10", 300),
            rec("a2", "A", "203.0.113.11", 300),
            rec("t1", "TXT", "\"hello\"", 300),
        ];
        let changes = [
            Change::Upsert(RecordSet {
                name: "mc.example.com".into(),
                record_type: "A".into(),
                ttl: 300,
                contents: vec!["203.0.113.10".into(), "203.0.113.12".into()],
            }),
            Change::Delete {
                name: "MC.example.com".into(),
                record_type: "txt".into(),
            },
        ];
        let (deletes, posts) = plan(&current, &changes).expect("plan");
        assert_eq!(deletes, ["a2", "t1"]);
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0]["content"], "203.0.113.12");
        assert_eq!(posts[0]["proxied"], false);
        assert_eq!(posts[0]["comment"], COMMENT);
        let srv = body("_mc._tcp.example.com", "SRV", "1 2 3 t.example.com", 60).expect("srv");
        assert_eq!(srv["data"]["port"], 3);
        assert!(body("_mc._tcp.example.com", "SRV", "1 2 t", 60).is_err());
    }
}
