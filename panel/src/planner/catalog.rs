//! The planner's data: the bundled price tables (`prices/*.json`, one per provider, with
//! the date they were read and where from) and workload templates (`templates.json`).
//! Both are compiled into the binary and parsed once; nothing here touches the network
//! or the database (`refresh.rs` does, for Hetzner).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The providers with a bundled price table, in the order they are answered.
pub const PROVIDERS: &[&str] = &["hetzner", "aws", "gcp", "oci"];

const BUNDLED: &[(&str, &str)] = &[
    ("hetzner", include_str!("prices/hetzner.json")),
    ("aws", include_str!("prices/aws.json")),
    ("gcp", include_str!("prices/gcp.json")),
    ("oci", include_str!("prices/oci.json")),
];

/// Why an ARM type cannot be chosen yet.
pub const NO_ARM: &str = "no ARM agent build yet";

/// One provider's price table.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PriceTable {
    pub provider: String,
    /// The table's version (`YYYY-MM-DD.N` bundled, `api-<ms>` read from the API).
    pub version: String,
    /// The day the prices were read (`YYYY-MM-DD`).
    pub read_on: String,
    /// Where the prices come from (pages read, or the API).
    pub source: String,
    /// ISO 4217 currency of every price.
    pub currency: String,
    /// What the table leaves out or how its numbers were worked out.
    #[serde(default)]
    pub note: String,
    pub regions: Vec<Region>,
    pub types: Vec<InstanceType>,
}

/// A region (a Hetzner location, an AWS region...).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Region {
    pub id: String,
    pub name: String,
}

/// An instance type: its size and its price per region.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceType {
    pub name: String,
    pub vcpus: u32,
    pub memory_mb: i64,
    /// Local disk; `null` when the root volume is sized at launch and priced apart (EBS,
    /// Persistent Disk, Block Volume), so disk never rules the type out.
    pub disk_gb: Option<i64>,
    /// `x86` or `arm64`.
    pub architecture: String,
    /// Region id → price there (regions where the type is not sold are absent).
    pub prices: std::collections::BTreeMap<String, RegionPrice>,
    /// How the numbers were worked out, when not read as such.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A type's price in one region, as decimal strings in the table's currency.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegionPrice {
    pub hourly: String,
    pub monthly: String,
}

/// A price as the provisioning code wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Price {
    pub hourly: String,
    pub monthly: String,
    pub currency: String,
}

impl InstanceType {
    /// Whether the panel can run on it (an agent build exists for its architecture).
    #[must_use]
    pub fn available(&self) -> bool {
        self.architecture == "x86"
    }

    /// The monthly price in `region`, as a number for comparisons.
    #[must_use]
    pub fn monthly_in(&self, region: &str) -> Option<f64> {
        self.prices.get(region)?.monthly.parse().ok()
    }
}

impl PriceTable {
    /// The type named `name`.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<&InstanceType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Whether the table prices anything in `region`.
    #[must_use]
    pub fn has_region(&self, region: &str) -> bool {
        self.regions.iter().any(|r| r.id == region)
    }

    /// The price of `instance_type` in `region`.
    #[must_use]
    pub fn price(&self, region: &str, instance_type: &str) -> Option<Price> {
        let p = self.find(instance_type)?.prices.get(region)?;
        Some(Price {
            hourly: p.hourly.clone(),
            monthly: p.monthly.clone(),
            currency: self.currency.clone(),
        })
    }
}

/// Every bundled table, parsed once.
///
/// # Panics
/// When a bundled file does not parse (a unit test checks they all do).
pub fn bundled() -> &'static [PriceTable] {
    static TABLES: OnceLock<Vec<PriceTable>> = OnceLock::new();
    TABLES.get_or_init(|| {
        BUNDLED
            .iter()
            .map(|(name, text)| {
                serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("planner/prices/{name}.json: {e}"))
            })
            .collect()
    })
}

/// The bundled table of `provider`.
#[must_use]
pub fn bundled_table(provider: &str) -> Option<&'static PriceTable> {
    bundled().iter().find(|t| t.provider == provider)
}

/// A bundled workload template with its recommended size.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Template {
    pub id: String,
    pub name: String,
    /// Memory for `players_included` players (or for the server, without a player count).
    pub memory_mb: i64,
    /// Cores (100% of one core each).
    pub cpu_cores: f64,
    pub disk_gb: i64,
    pub ports: Vec<TemplatePort>,
    /// The players `memory_mb` covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub players_included: Option<u32>,
    /// Memory each player beyond `players_included` adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb_per_extra_player: Option<i64>,
    #[serde(default)]
    pub note: String,
}

/// A port a template's server listens on.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplatePort {
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// The templates file.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Templates {
    pub version: String,
    pub note: String,
    pub templates: Vec<Template>,
}

impl Template {
    /// The memory for `players` players.
    #[must_use]
    pub fn memory_for(&self, players: Option<u32>) -> i64 {
        match (
            players,
            self.players_included,
            self.memory_mb_per_extra_player,
        ) {
            (Some(p), Some(included), Some(per)) if p > included => {
                self.memory_mb + i64::from(p - included) * per
            }
            _ => self.memory_mb,
        }
    }
}

/// The bundled templates, parsed once.
///
/// # Panics
/// When `templates.json` does not parse (a unit test checks it does).
pub fn templates() -> &'static Templates {
    static TEMPLATES: OnceLock<Templates> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        serde_json::from_str(include_str!("templates.json"))
            .unwrap_or_else(|e| panic!("planner/templates.json: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_data_parses_and_is_complete() {
        for provider in PROVIDERS {
            let t = bundled_table(provider).expect("table");
            assert!(!t.types.is_empty(), "{provider}");
            assert_eq!(t.read_on.len(), 10, "{provider}");
            for ty in &t.types {
                assert!(ty.vcpus > 0 && ty.memory_mb > 0, "{}", ty.name);
                for (region, p) in &ty.prices {
                    assert!(t.has_region(region), "{} {region}", ty.name);
                    assert!(p.hourly.parse::<f64>().is_ok() && p.monthly.parse::<f64>().is_ok());
                }
            }
        }
        assert!(templates().templates.len() >= 8);
        let cx23 = bundled_table("hetzner")
            .and_then(|t| t.price("fsn1", "cx23"))
            .expect("cx23");
        assert_eq!(cx23.currency, "EUR");
    }
}
