//! The PowerDNS Authoritative provider: its HTTP API (`{api_url}/api/v1/servers/
//! {server_id}`, header `X-API-Key`). Provider layer: it knows PowerDNS' wire format and
//! nothing of the panel's records.
//!
//! - zones: `GET .../zones` (one call).
//! - records: `GET .../zones/{zone id}`, whose answer holds every RRset of the zone
//!   (one call, whatever the zone's size). Names lose their trailing dot and are lower
//!   cased, so do the targets of CNAME, NS, PTR, DNAME, MX and SRV; TXT is unquoted
//!   (its character-strings joined, `\"`, `\\` and `\DDD` undone). Disabled records do
//!   not answer queries and are left out (a set whose records are all disabled is
//!   absent). SOA and NS sets are returned like the others.
//! - apply: one `PATCH .../zones/{zone id}` holding every change, an RRset with
//!   `changetype: REPLACE` (its records converted back: targets get their trailing dot,
//!   TXT is quoted, split in 255-byte strings and escaped) or `DELETE`. PowerDNS applies
//!   a PATCH in one backend transaction: all or nothing.
//!
//! Errors: a transport failure, the outbound guard or a 502/503/504 are
//! [`ProviderError::Unreachable`]; a 404 or "Could not find domain" is
//! [`ProviderError::NoZone`]; any other answer than 2xx is [`ProviderError::Refused`]
//! with its status and PowerDNS' `error` text (or the start of its body: a wrong key
//! answers a bare `Unauthorized`). The zone id goes into paths percent-encoded.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::provider::{Change, Context, DnsProvider, ProviderError, RecordSet, Zone};
use crate::credentials::providers::Parts;
use crate::error::{AppError, AppResult};

const PROVIDER: &str = "powerdns";
/// The server id when the credential names none (PowerDNS has only this one).
const DEFAULT_SERVER_ID: &str = "localhost";
/// The most bytes of one TXT character-string (RFC 1035).
const TXT_STRING_MAX: usize = 255;
/// Types whose content is one domain name.
const NAME_TYPES: &[&str] = &["CNAME", "NS", "PTR", "DNAME"];
/// Characters of an error body kept in a message when it is not PowerDNS' JSON.
const BODY_MAX: usize = 200;

/// A PowerDNS API client for one credential.
pub struct Client {
    ctx: Context,
    /// `api_url` as given, without trailing slash (what the outbound guard checks).
    base: String,
    key: String,
    server_id: String,
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl Client {
    /// Builds the client from a credential's fields (`api_url`, `api_key`, optional
    /// `server_id`).
    ///
    /// # Errors
    /// 400 naming the credential field at fault.
    pub fn new(ctx: Context, parts: &Parts, _config: &crate::config::Config) -> AppResult<Self> {
        check_fields(parts)?;
        let base = text(&parts.public, "api_url").ok_or_else(|| {
            AppError::invalid_field(
                "config.api_url",
                "the PowerDNS credential has no API address",
            )
        })?;
        let key = text(&parts.secrets, "api_key").ok_or_else(|| {
            AppError::invalid_field("config.api_key", "the PowerDNS credential has no API key")
        })?;
        Ok(Self {
            ctx,
            base: base.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
            server_id: text(&parts.public, "server_id")
                .unwrap_or(DEFAULT_SERVER_ID)
                .to_owned(),
        })
    }

    /// The URL of `.../servers/{server_id}/zones[/{zone id}]`, each segment encoded.
    fn url(&self, zone_id: Option<&str>) -> Result<reqwest::Url, ProviderError> {
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| unreachable(format!("the PowerDNS API address is invalid: {e}")))?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| unreachable("the PowerDNS API address cannot hold a path"))?;
            segments.pop_if_empty();
            segments.extend(["api", "v1", "servers", self.server_id.as_str(), "zones"]);
            if let Some(id) = zone_id {
                segments.push(id);
            }
        }
        Ok(url)
    }

    /// An HTTP client pinned to the addresses the outbound guard allowed for `api_url`.
    async fn http(&self) -> Result<reqwest::Client, ProviderError> {
        let checked = self
            .ctx
            .outbound
            .resolve_url(&self.base)
            .await
            .map_err(|e| unreachable(format!("the PowerDNS API address is refused: {e}")))?;
        checked
            .pin(reqwest::Client::builder())
            .timeout(self.ctx.timeout)
            .user_agent(concat!("Shardlyn/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| unreachable(format!("http client: {e}")))
    }

    /// One request; the body of a 2xx answer. `zone` names the zone a 404 is about.
    async fn send(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        body: Option<&Value>,
        zone: Option<&Zone>,
    ) -> Result<String, ProviderError> {
        let http = self.http().await?;
        let mut request = http
            .request(method, url)
            .header("X-API-Key", &self.key)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            unreachable(if e.is_timeout() {
                "PowerDNS did not answer in time".to_owned()
            } else {
                format!("could not connect to PowerDNS ({})", self.base)
            })
        })?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|_| unreachable("the connection to PowerDNS broke mid-answer"))?;
        if (200..300).contains(&status) {
            return Ok(text);
        }
        let message = error_text(&text);
        if let Some(zone) = zone
            && (status == 404 || message.contains("Could not find domain"))
        {
            return Err(ProviderError::NoZone {
                provider: PROVIDER,
                zone: zone.name.clone(),
            });
        }
        if matches!(status, 502..=504) {
            return Err(unreachable(format!(
                "PowerDNS' address answered {status}: {message}"
            )));
        }
        Err(ProviderError::Refused {
            provider: PROVIDER,
            status: Some(status),
            message,
        })
    }
}

fn unreachable(message: impl Into<String>) -> ProviderError {
    ProviderError::Unreachable {
        provider: PROVIDER,
        message: message.into(),
    }
}

/// PowerDNS' `{"error": "..."}`, else the start of the body (or a word for none).
fn error_text(body: &str) -> String {
    let json: Option<Value> = serde_json::from_str(body).ok();
    if let Some(error) = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
    {
        return error.to_owned();
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        "an empty answer".to_owned()
    } else {
        trimmed.chars().take(BODY_MAX).collect()
    }
}

/// A zone of `GET .../zones`.
#[derive(Debug, Deserialize)]
struct PdnsZone {
    id: String,
    name: String,
    #[serde(default)]
    rrsets: Vec<PdnsRrset>,
}

#[derive(Debug, Deserialize)]
struct PdnsRrset {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    records: Vec<PdnsRecord>,
}

#[derive(Debug, Deserialize)]
struct PdnsRecord {
    content: String,
    #[serde(default)]
    disabled: bool,
}

fn bad_answer(what: &str, e: &serde_json::Error) -> ProviderError {
    ProviderError::Refused {
        provider: PROVIDER,
        status: None,
        message: format!("PowerDNS answered {what} that is not its API's JSON: {e}"),
    }
}

impl DnsProvider for Client {
    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        let url = self.url(None)?;
        self.ctx.calls.zone_list();
        let body = self.send(reqwest::Method::GET, url, None, None).await?;
        let zones: Vec<PdnsZone> =
            serde_json::from_str(&body).map_err(|e| bad_answer("a zone list", &e))?;
        let mut zones: Vec<Zone> = zones
            .into_iter()
            .map(|z| Zone {
                id: z.id,
                name: plain_name(&z.name),
            })
            .collect();
        zones.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(zones)
    }

    async fn records(&self, zone: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        let url = self.url(Some(&zone.id))?;
        self.ctx.calls.record_list();
        let body = self
            .send(reqwest::Method::GET, url, None, Some(zone))
            .await?;
        let answer: PdnsZone = serde_json::from_str(&body).map_err(|e| bad_answer("a zone", &e))?;
        // PowerDNS answers one RRset per name and type; merged anyway, to be sure.
        let mut sets: BTreeMap<(String, String), RecordSet> = BTreeMap::new();
        for rrset in answer.rrsets {
            let kind = rrset.kind.to_ascii_uppercase();
            let contents: Vec<String> = rrset
                .records
                .iter()
                .filter(|r| !r.disabled)
                .map(|r| from_wire(&kind, &r.content))
                .collect();
            if contents.is_empty() {
                continue;
            }
            let name = plain_name(&rrset.name);
            sets.entry((name.clone(), kind.clone()))
                .or_insert_with(|| RecordSet {
                    name,
                    record_type: kind,
                    ttl: rrset.ttl,
                    contents: Vec::new(),
                })
                .contents
                .extend(contents);
        }
        Ok(sets.into_values().map(RecordSet::normalized).collect())
    }

    async fn apply(&self, zone: &Zone, changes: &[Change]) -> Result<(), ProviderError> {
        if changes.is_empty() {
            return Ok(());
        }
        let body = patch_body(changes);
        let url = self.url(Some(&zone.id))?;
        self.ctx.calls.write();
        self.send(reqwest::Method::PATCH, url, Some(&body), Some(zone))
            .await
            .map(drop)
    }
}

/// The PATCH body of `changes`: one RRset per name and type, the last change of a
/// name and type winning (PowerDNS refuses a PATCH naming an RRset twice).
fn patch_body(changes: &[Change]) -> Value {
    let mut last: BTreeMap<(String, String), &Change> = BTreeMap::new();
    for change in changes {
        let (name, kind) = change.key();
        last.insert((plain_name(name), kind.to_ascii_uppercase()), change);
    }
    let rrsets: Vec<Value> = last
        .into_iter()
        .map(|((name, kind), change)| match change {
            Change::Upsert(set) if !set.contents.is_empty() => json!({
                "name": wire_name(&name),
                "type": kind,
                "ttl": set.ttl,
                "changetype": "REPLACE",
                "records": set.contents.iter()
                    .map(|c| json!({"content": to_wire(&kind, c), "disabled": false}))
                    .collect::<Vec<_>>(),
            }),
            // A set without records is no set.
            Change::Upsert(_) | Change::Delete { .. } => json!({
                "name": wire_name(&name),
                "type": kind,
                "changetype": "DELETE",
            }),
        })
        .collect();
    json!({ "rrsets": rrsets })
}

/// A name as the panel writes it: lower case, no trailing dot.
fn plain_name(name: &str) -> String {
    let name = name.trim();
    if name == "." {
        return String::new();
    }
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// A name as PowerDNS wants it: lower case, with the trailing dot.
fn wire_name(name: &str) -> String {
    format!("{}.", plain_name(name))
}

/// Where in a record of `kind` its target name is: the whole content, or the field at
/// this index (MX: the second, SRV: the fourth).
fn target_field(kind: &str) -> Option<usize> {
    match kind {
        k if NAME_TYPES.contains(&k) => Some(0),
        "MX" => Some(1),
        "SRV" => Some(3),
        _ => None,
    }
}

/// Rewrites the target field of a `kind` record with `f` (other fields kept as is,
/// single spaces between them).
fn map_target(kind: &str, content: &str, f: impl Fn(&str) -> String) -> String {
    let Some(index) = target_field(kind) else {
        return content.to_owned();
    };
    let mut fields: Vec<String> = content.split_whitespace().map(str::to_owned).collect();
    if let Some(target) = fields.get_mut(index) {
        *target = f(target);
        fields.join(" ")
    } else {
        content.to_owned()
    }
}

/// A record's content as PowerDNS answers it → as the panel holds it.
fn from_wire(kind: &str, content: &str) -> String {
    if kind == "TXT" || kind == "SPF" {
        return unquote_txt(content);
    }
    map_target(kind, content, |target| {
        if target == "." {
            ".".to_owned()
        } else {
            plain_name(target)
        }
    })
}

/// A record's content as the panel holds it → as PowerDNS wants it.
fn to_wire(kind: &str, content: &str) -> String {
    if kind == "TXT" || kind == "SPF" {
        return quote_txt(content);
    }
    map_target(kind, content, |target| {
        if target.ends_with('.') {
            target.to_owned()
        } else {
            format!("{target}.")
        }
    })
}

/// TXT text → PowerDNS' content: quoted character-strings of at most 255 bytes, `"`
/// and `\` escaped, bytes outside printable ASCII as `\DDD`.
fn quote_txt(text: &str) -> String {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return "\"\"".to_owned();
    }
    let strings: Vec<String> = bytes
        .chunks(TXT_STRING_MAX)
        .map(|chunk| {
            let mut out = String::with_capacity(chunk.len() + 2);
            out.push('"');
            for &b in chunk {
                match b {
                    b'"' => out.push_str("\\\""),
                    b'\\' => out.push_str("\\\\"),
                    0x20..=0x7e => out.push(char::from(b)),
                    _ => out.push_str(&format!("\\{b:03}")),
                }
            }
            out.push('"');
            out
        })
        .collect();
    strings.join(" ")
}

/// PowerDNS' TXT content → its text: the character-strings joined, escapes undone.
/// Content that is not quoted is taken as it is.
fn unquote_txt(content: &str) -> String {
    let content = content.trim();
    if !content.starts_with('"') {
        return content.to_owned();
    }
    let bytes = content.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut quoted = false;
    while i < bytes.len() {
        let b = bytes[i];
        if !quoted {
            if b == b'"' {
                quoted = true;
            }
            // Blanks between strings are dropped.
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                quoted = false;
                i += 1;
            }
            b'\\' if i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit) => {
                let value = bytes[i + 1..i + 4]
                    .iter()
                    .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            b'\\' if i + 1 < bytes.len() => {
                out.push(bytes[i + 1]);
                i += 2;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a credential's fields before it is saved: `api_url` an http(s) URL with a
/// host (no query or fragment), `server_id` letters, digits, `-` and `_`.
///
/// # Errors
/// 400 naming the field (`config.<name>`).
pub fn check_fields(parts: &Parts) -> AppResult<()> {
    if let Some(raw) = text(&parts.public, "api_url") {
        let url = reqwest::Url::parse(raw).map_err(|e| {
            AppError::invalid_field(
                "config.api_url",
                format!("the API address must be an http(s) URL such as http://ns1.example.net:8081 ({e})"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(AppError::invalid_field(
                "config.api_url",
                "the API address must be an http or https URL",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(AppError::invalid_field(
                "config.api_url",
                "the API address has no host",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
            return Err(AppError::invalid_field(
                "config.api_url",
                "the API address must be the server's base URL, without query or fragment",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(AppError::invalid_field(
                "config.api_url",
                "the API address must not hold a user or password (the API key is its own field)",
            ));
        }
    }
    if let Some(id) = text(&parts.public, "server_id")
        && !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(AppError::invalid_field(
            "config.server_id",
            "the server id may hold only letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_round_trips_through_quoting() {
        for text in [
            "",
            "heritage=shardlyn,owner=org,type=A",
            "say \"hi\" \\ there",
            "caf\u{e9} \u{1f600}",
            &"x".repeat(600),
        ] {
            assert_eq!(unquote_txt(&quote_txt(text)), text, "{text}");
        }
        assert_eq!(quote_txt("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote_txt(&"y".repeat(256)).matches('"').count(), 4);
        assert_eq!(unquote_txt("\"ab\" \"cd\""), "abcd");
        assert_eq!(unquote_txt("\"\\195\\169\""), "\u{e9}");
        assert_eq!(unquote_txt("plain"), "plain");
    }

    #[test]
    fn targets_lose_and_regain_their_dot() {
        assert_eq!(from_wire("CNAME", "MC.Example.com."), "mc.example.com");
        assert_eq!(
            from_wire("SRV", "0 5 25565 mc.example.com."),
            "0 5 25565 mc.example.com"
        );
        assert_eq!(
            from_wire("MX", "10 mail.example.com."),
            "10 mail.example.com"
        );
        assert_eq!(from_wire("SRV", "0 0 0 ."), "0 0 0 .");
        assert_eq!(from_wire("A", "192.0.2.1"), "192.0.2.1");
        assert_eq!(
            to_wire("SRV", "0 5 25565 mc.example.com"),
            "0 5 25565 mc.example.com."
        );
        assert_eq!(to_wire("CNAME", "a.example.com."), "a.example.com.");
        assert_eq!(to_wire("NS", "ns1.example.com"), "ns1.example.com.");
        assert_eq!(to_wire("AAAA", "2001:db8::1"), "2001:db8::1");
    }

    #[test]
    fn patch_body_keeps_the_last_change_of_a_set() {
        let set = |c: &str| RecordSet {
            name: "MC.example.com".into(),
            record_type: "A".into(),
            ttl: 60,
            contents: vec![c.into()],
        };
        let body = patch_body(&[
            Change::Upsert(set("192.0.2.1")),
            Change::Upsert(set("192.0.2.2")),
            Change::Delete {
                name: "old.example.com".into(),
                record_type: "TXT".into(),
            },
        ]);
        let rrsets = body["rrsets"].as_array().expect("rrsets");
        assert_eq!(rrsets.len(), 2);
        assert_eq!(rrsets[0]["name"], "mc.example.com.");
        assert_eq!(rrsets[0]["records"][0]["content"], "192.0.2.2");
        assert_eq!(rrsets[1]["changetype"], "DELETE");
    }

    #[test]
    fn fields_are_checked() {
        let parts = |url: &str, server: &str| {
            let mut p = Parts::default();
            p.public.insert("api_url".into(), url.into());
            p.public.insert("server_id".into(), server.into());
            p
        };
        assert!(check_fields(&parts("http://ns1.example.net:8081", "localhost")).is_ok());
        assert!(check_fields(&parts("https://ns1.example.net/pdns/", "")).is_ok());
        for bad in [
            "ftp://ns1.example.net",
            "ns1.example.net:8081",
            "http://",
            "http://h/?a=b",
        ] {
            let e = check_fields(&parts(bad, "localhost")).expect_err(bad);
            assert!(format!("{e:?}").contains("config.api_url"), "{bad}: {e:?}");
        }
        let e = check_fields(&parts("http://h", "../x")).expect_err("server id");
        assert!(format!("{e:?}").contains("config.server_id"), "{e:?}");
    }
}
