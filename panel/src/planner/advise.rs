//! What to buy when the fleet is full: for each provider (or the one asked), the cheapest
//! instance type that holds the copies the fleet could not, priced from the provider's
//! table (`refresh::table`). ARM types are listed apart as unavailable (no ARM agent
//! build yet). A demand larger than every type of the providers asked is 422
//! `NO_INSTANCE_TYPE_FITS`, naming the resource that is too large.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::catalog::{self, InstanceType, NO_ARM};
use super::fit::Demand;
use super::refresh;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Memory a node keeps for its system and the agent; a type offers the rest.
pub const SYSTEM_RESERVE_MB: i64 = 512;

/// An instance type that would hold the demand, and what it costs.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TypeOption {
    pub provider: String,
    pub region: String,
    pub instance_type: String,
    pub vcpus: u32,
    pub memory_mb: i64,
    pub disk_gb: Option<i64>,
    /// `x86` or `arm64`.
    pub architecture: String,
    /// Whether the panel can provision it now (`false`: see `unavailable_reason`).
    pub available: bool,
    pub unavailable_reason: Option<String>,
    pub currency: String,
    /// One node's price per hour and per month (decimal strings).
    pub hourly: String,
    pub monthly: String,
    /// How many copies of the demand one node holds.
    pub copies_per_node: i64,
    /// Nodes of this type needed for the copies the fleet could not hold.
    pub nodes_needed: i64,
    /// `nodes_needed` nodes per hour and per month.
    pub total_hourly: String,
    pub total_monthly: String,
    /// `bundled` or `hetzner_api`.
    pub price_source: String,
    /// The price table's version.
    pub price_version: String,
}

/// The options for one demand.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The cheapest available type per provider, in provider order.
    pub options: Vec<TypeOption>,
    /// ARM types that would fit, cheapest first.
    pub unavailable: Vec<TypeOption>,
    /// Providers left out and why (too small, a region they lack, a price table note).
    pub notes: Vec<String>,
}

/// How many copies of `d` fit on `t` (0 when one does not).
fn copies(t: &InstanceType, d: &Demand) -> i64 {
    let usable = t.memory_mb - SYSTEM_RESERVE_MB;
    let mut n = if d.memory_mb > 0 {
        usable / d.memory_mb
    } else {
        i64::MAX
    };
    if d.cpu_millis > 0 {
        n = n.min(i64::from(t.vcpus) * 1000 / d.cpu_millis);
    }
    if let Some(disk) = t.disk_gb
        && d.disk_mb > 0
    {
        n = n.min(disk * 1024 / d.disk_mb);
    }
    n.max(0)
}

fn cores(millis: i64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "millicores")]
    let c = millis as f64 / 1000.0;
    format!("{c}")
}

/// Why no type of `provider` holds one copy of `d`: the first resource beyond the
/// largest type, else the combination.
fn too_large(provider: &str, types: &[&InstanceType], d: &Demand) -> String {
    let largest_by = |key: fn(&InstanceType) -> i64| types.iter().copied().max_by_key(|t| key(t));
    if let Some(t) = largest_by(|t| t.memory_mb)
        && d.memory_mb > t.memory_mb - SYSTEM_RESERVE_MB
    {
        return format!(
            "memory_mb {} exceeds the largest {provider} type ({}, {} MB, {} MB usable)",
            d.memory_mb,
            t.name,
            t.memory_mb,
            t.memory_mb - SYSTEM_RESERVE_MB
        );
    }
    if let Some(t) = largest_by(|t| i64::from(t.vcpus))
        && d.cpu_millis > i64::from(t.vcpus) * 1000
    {
        return format!(
            "cpu {} exceeds the largest {provider} type ({}, {} vCPUs)",
            cores(d.cpu_millis),
            t.name,
            t.vcpus
        );
    }
    if types.iter().all(|t| t.disk_gb.is_some())
        && let Some(t) = largest_by(|t| t.disk_gb.unwrap_or(0))
        && d.disk_mb > t.disk_gb.unwrap_or(0) * 1024
    {
        return format!(
            "disk_mb {} exceeds the largest {provider} type ({}, {} GB)",
            d.disk_mb,
            t.name,
            t.disk_gb.unwrap_or(0)
        );
    }
    format!(
        "no {provider} type has {} MB of memory, {} cores and {} MB of disk together",
        d.memory_mb,
        cores(d.cpu_millis),
        d.disk_mb
    )
}

fn times(price: &str, n: i64) -> String {
    price.parse::<f64>().map_or_else(
        |_| price.to_owned(),
        |p| {
            #[expect(clippy::cast_precision_loss, reason = "a few nodes")]
            let total = p * n as f64;
            format!("{total:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        },
    )
}

/// The options for `needed` copies of `d`.
///
/// # Errors
/// 422 `UNKNOWN_PROVIDER` / `UNKNOWN_REGION` for names no table has; 422
/// `NO_INSTANCE_TYPE_FITS` when no type of the providers asked holds one copy.
pub async fn options(
    state: &AppState,
    org_id: &str,
    d: &Demand,
    needed: i64,
    provider: Option<&str>,
    region: Option<&str>,
) -> AppResult<Options> {
    let providers: Vec<&str> = match provider {
        Some(p) if catalog::PROVIDERS.contains(&p) => vec![p],
        Some(p) => return Err(unknown_provider(p)),
        None => catalog::PROVIDERS.to_vec(),
    };
    let mut out = Options::default();
    let mut too_big = Vec::new();
    let mut region_known = region.is_none();
    for p in providers {
        let Some(sourced) = refresh::table(state, org_id, p).await else {
            continue;
        };
        if let Some(n) = &sourced.note {
            out.notes.push(n.clone());
        }
        let table = &sourced.table;
        if let Some(r) = region
            && !table.has_region(r)
        {
            continue;
        }
        region_known = true;
        let mut best: Option<TypeOption> = None;
        let mut arm = Vec::new();
        let mut priced: Vec<&InstanceType> = Vec::new();
        for t in &table.types {
            // The region asked, else the type's cheapest region.
            let Some((reg, price)) = t
                .prices
                .iter()
                .filter(|(r, _)| region.is_none_or(|want| want == r.as_str()))
                .min_by(|a, b| {
                    let m = |p: &catalog::RegionPrice| p.monthly.parse::<f64>().unwrap_or(f64::MAX);
                    m(a.1).total_cmp(&m(b.1))
                })
            else {
                continue;
            };
            if t.available() {
                priced.push(t);
            }
            let per = copies(t, d);
            if per < 1 {
                continue;
            }
            let nodes = (needed + per - 1) / per;
            let option = TypeOption {
                provider: p.to_owned(),
                region: reg.clone(),
                instance_type: t.name.clone(),
                vcpus: t.vcpus,
                memory_mb: t.memory_mb,
                disk_gb: t.disk_gb,
                architecture: t.architecture.clone(),
                available: t.available(),
                unavailable_reason: (!t.available()).then(|| NO_ARM.to_owned()),
                currency: table.currency.clone(),
                hourly: price.hourly.clone(),
                monthly: price.monthly.clone(),
                copies_per_node: per,
                nodes_needed: nodes,
                total_hourly: times(&price.hourly, nodes),
                total_monthly: times(&price.monthly, nodes),
                price_source: sourced.origin.to_owned(),
                price_version: table.version.clone(),
            };
            if !t.available() {
                arm.push(option);
                continue;
            }
            let total = |o: &TypeOption| o.total_monthly.parse::<f64>().unwrap_or(f64::MAX);
            if best.as_ref().is_none_or(|b| {
                total(&option)
                    .total_cmp(&total(b))
                    .then(option.nodes_needed.cmp(&b.nodes_needed))
                    .is_lt()
            }) {
                best = Some(option);
            }
        }
        match best {
            Some(b) => out.options.push(b),
            None if !priced.is_empty() => too_big.push(too_large(p, &priced, d)),
            None => {}
        }
        arm.sort_by(|a, b| {
            let m = |o: &TypeOption| o.total_monthly.parse::<f64>().unwrap_or(f64::MAX);
            m(a).total_cmp(&m(b))
        });
        out.unavailable.extend(arm);
    }
    if !region_known {
        return Err(AppError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNKNOWN_REGION",
            format!(
                "region {} is not in the price table of {}",
                region.unwrap_or_default(),
                provider.unwrap_or("any provider")
            ),
        ));
    }
    if out.options.is_empty() && !too_big.is_empty() {
        return Err(AppError::coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "NO_INSTANCE_TYPE_FITS",
            too_big.join("; "),
        ));
    }
    out.notes.extend(too_big);
    Ok(out)
}

/// 422 `UNKNOWN_PROVIDER`.
pub fn unknown_provider(p: &str) -> AppError {
    AppError::coded(
        StatusCode::UNPROCESSABLE_ENTITY,
        "UNKNOWN_PROVIDER",
        format!(
            "provider {p} has no price table: use one of {}",
            catalog::PROVIDERS.join(", ")
        ),
    )
}
