//! Hetzner's live prices: with an organization's Hetzner credential (its default, else
//! its first), `GET {hetzner_api_url}/pricing` (prices per server type and location, net
//! of VAT, in the project's currency) and `GET {hetzner_api_url}/server_types` (cores,
//! memory, disk, architecture) through the outbound guard, made into a [`PriceTable`]
//! and kept in `planner_prices` for an hour (the panel's clock). Any failure falls back
//! to the bundled table with a note saying why.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;

use super::catalog::{self, InstanceType, PriceTable, Region, RegionPrice};
use crate::state::AppState;

/// How long a table read from the API is served before it is read again.
pub const TTL_MS: i64 = 60 * 60 * 1000;

/// A table and where it came from.
#[derive(Debug, Clone)]
pub struct Sourced {
    pub table: PriceTable,
    /// `bundled` or `hetzner_api`.
    pub origin: &'static str,
    /// When it was read from the API.
    pub refreshed_at: Option<i64>,
    /// Why the bundled table is served although a credential exists.
    pub note: Option<String>,
}

impl Sourced {
    fn bundled(provider: &str, note: Option<String>) -> Option<Self> {
        Some(Self {
            table: catalog::bundled_table(provider)?.clone(),
            origin: "bundled",
            refreshed_at: None,
            note,
        })
    }
}

/// The table of `provider` for `org_id`: Hetzner's from its API when the organization has
/// a Hetzner credential (cached an hour), every other the bundled one.
pub async fn table(state: &AppState, org_id: &str, provider: &str) -> Option<Sourced> {
    if provider != "hetzner" {
        return Sourced::bundled(provider, None);
    }
    let pool = &state.db.pool;
    let creds = match crate::credentials::store::list(pool, org_id, Some("hetzner")).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "planner: reading credentials");
            return Sourced::bundled(provider, None);
        }
    };
    let Some(cred) = creds
        .iter()
        .find(|c| c.is_default)
        .or_else(|| creds.first())
    else {
        return Sourced::bundled(provider, None);
    };
    let now = state.clock.now_ms();
    let cached: Option<(String, i64)> = sqlx::query_as(
        "SELECT price_table, read_at FROM planner_prices WHERE org_id = $1 AND provider = $2",
    )
    .bind(org_id)
    .bind(provider)
    .fetch_optional(pool)
    .await
    .ok()
    .flatten();
    if let Some((text, read_at)) = cached
        && now - read_at < TTL_MS
        && let Ok(table) = serde_json::from_str::<PriceTable>(&text)
    {
        return Some(Sourced {
            table,
            origin: "hetzner_api",
            refreshed_at: Some(read_at),
            note: None,
        });
    }
    let token = crate::credentials::open_parts(state, cred)
        .ok()
        .and_then(|p| {
            p.secrets
                .get("token")
                .and_then(|t| t.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    match read_hetzner(state, &token, now).await {
        Ok(table) => {
            if let Ok(text) = serde_json::to_string(&table) {
                let stored = store(state, org_id, provider, &text, now).await;
                if let Err(e) = stored {
                    tracing::warn!(error = %e, "planner: caching Hetzner prices");
                }
            }
            Some(Sourced {
                table,
                origin: "hetzner_api",
                refreshed_at: Some(now),
                note: None,
            })
        }
        Err(why) => Sourced::bundled(
            provider,
            Some(format!(
                "the Hetzner pricing API could not be read with credential {} ({why}): \
                 the bundled table is served",
                cred.name
            )),
        ),
    }
}

async fn store(
    state: &AppState,
    org_id: &str,
    provider: &str,
    text: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("DELETE FROM planner_prices WHERE org_id = $1 AND provider = $2")
        .bind(org_id)
        .bind(provider)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO planner_prices (org_id, provider, price_table, read_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(provider)
    .bind(text)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[derive(Deserialize)]
struct Money {
    net: String,
}

#[derive(Deserialize)]
struct LocationPrice {
    location: String,
    price_hourly: Money,
    price_monthly: Money,
}

#[derive(Deserialize)]
struct TypePrices {
    name: String,
    prices: Vec<LocationPrice>,
}

#[derive(Deserialize)]
struct Pricing {
    currency: String,
    server_types: Vec<TypePrices>,
}

#[derive(Deserialize)]
struct PricingAnswer {
    pricing: Pricing,
}

#[derive(Deserialize)]
struct ServerType {
    name: String,
    cores: u32,
    /// GB.
    memory: f64,
    /// GB.
    disk: i64,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    deprecation: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Pagination {
    next_page: Option<u32>,
}

#[derive(Deserialize)]
struct Meta {
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct ServerTypesAnswer {
    server_types: Vec<ServerType>,
    meta: Option<Meta>,
}

/// `GET {base}{path}` with the token, through the outbound guard; the JSON it answered.
async fn get<T: serde::de::DeserializeOwned>(
    state: &AppState,
    token: &str,
    path: &str,
) -> Result<T, String> {
    let url = format!(
        "{}{path}",
        state.config.cloud.hetzner_api_url.trim_end_matches('/')
    );
    let checked = state
        .config
        .outbound
        .resolve_url(&url)
        .await
        .map_err(|e| format!("refused: {e}"))?;
    let client = checked
        .pin(reqwest::Client::builder())
        .timeout(Duration::from_secs(state.config.cloud.timeout_secs.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Shardlyn/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let response = client
        .get(checked.url.clone())
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "no answer in time".to_owned()
            } else {
                "could not connect".to_owned()
            }
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{path} answered {}", status.as_u16()));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| format!("{path} answered an unexpected body: {e}"))
}

/// Reads Hetzner's prices and server types into a table.
async fn read_hetzner(state: &AppState, token: &str, now: i64) -> Result<PriceTable, String> {
    let pricing: PricingAnswer = get(state, token, "/pricing").await?;
    let mut types: Vec<ServerType> = Vec::new();
    let mut page = 1;
    // 50 per page, at most 10 pages: Hetzner has a few dozen server types.
    for _ in 0..10 {
        let answer: ServerTypesAnswer = get(
            state,
            token,
            &format!("/server_types?per_page=50&page={page}"),
        )
        .await?;
        types.extend(answer.server_types);
        match answer
            .meta
            .and_then(|m| m.pagination)
            .and_then(|p| p.next_page)
        {
            Some(next) if next > page => page = next,
            _ => break,
        }
    }
    let prices: HashMap<&str, &TypePrices> = pricing
        .pricing
        .server_types
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut regions: BTreeMap<String, ()> = BTreeMap::new();
    let mut out = Vec::new();
    for t in types.iter().filter(|t| {
        t.deprecation
            .as_ref()
            .is_none_or(serde_json::Value::is_null)
    }) {
        let Some(p) = prices.get(t.name.as_str()) else {
            continue;
        };
        let by_region: BTreeMap<String, RegionPrice> = p
            .prices
            .iter()
            .map(|lp| {
                regions.insert(lp.location.clone(), ());
                (
                    lp.location.clone(),
                    RegionPrice {
                        hourly: trim_decimal(&lp.price_hourly.net),
                        monthly: trim_decimal(&lp.price_monthly.net),
                    },
                )
            })
            .collect();
        #[expect(clippy::cast_possible_truncation, reason = "GB of memory, small")]
        let memory_mb = (t.memory * 1024.0).round() as i64;
        out.push(InstanceType {
            name: t.name.clone(),
            vcpus: t.cores,
            memory_mb,
            disk_gb: Some(t.disk),
            architecture: match t.architecture.as_deref() {
                Some("arm") => "arm64".to_owned(),
                _ => "x86".to_owned(),
            },
            prices: by_region,
            note: None,
        });
    }
    if out.is_empty() {
        return Err("no priced server type in the answer".into());
    }
    let read_on = chrono::DateTime::from_timestamp_millis(now)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    Ok(PriceTable {
        provider: "hetzner".into(),
        version: format!("api-{now}"),
        read_on,
        source: format!(
            "{}/pricing and /server_types",
            state.config.cloud.hetzner_api_url.trim_end_matches('/')
        ),
        currency: pricing.pricing.currency,
        note: "Net prices (without VAT) in the project's currency, as Hetzner answered.".into(),
        regions: regions
            .into_keys()
            .map(|id| Region {
                name: id.clone(),
                id,
            })
            .collect(),
        types: out,
    })
}

/// `0.0060000000` → `0.006`.
fn trim_decimal(s: &str) -> String {
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t.is_empty() {
            "0".into()
        } else {
            t.to_owned()
        }
    } else {
        s.to_owned()
    }
}
