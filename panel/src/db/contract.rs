//! Expand or contract: which migrations an old replica survives. A migration after the
//! [`BASELINE`] is *expand* (it only adds: tables, nullable columns or columns with a
//! default, indexes), so replicas of the previous version keep serving on the migrated
//! schema during a rolling upgrade; or it is *contract* (it drops, renames or narrows
//! something the previous version still reads or writes) and says so on a line of its
//! own:
//!
//! ```sql
//! -- shardlyn: contract
//! ```
//!
//! A contract migration runs only once every replica of the previous version is gone.
//! [`findings`] reads a migration's SQL for statements that break old replicas; the
//! lint in this module's tests fails for an unmarked one after the baseline. A finding
//! that is in fact safe (a SQLite table rebuild keeping every column, say) is waived
//! with `-- shardlyn: expand <why it is safe>`.

/// The last migration of the schema tagged as the upgrade baseline (`0040_deployments`):
/// databases of every later release migrate forward from it, and the rules above bind
/// the migrations after it. Migrations up to it predate the rules and count as contract.
pub const BASELINE: i64 = 40;

/// The marker line of a contract migration.
pub const CONTRACT_MARKER: &str = "-- shardlyn: contract";
/// The marker line waiving findings of a migration that is safe after all (with a reason).
pub const EXPAND_MARKER: &str = "-- shardlyn: expand";

/// What a migration does to replicas of the previous version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// At or before the [`BASELINE`]: not classified; treated as contract.
    Baseline,
    /// Only adds: safe while old replicas serve.
    Expand,
    /// Drops, renames or narrows: every old replica must be gone first.
    Contract,
}

impl Kind {
    /// Whether replicas of the previous version may keep serving while it runs.
    #[must_use]
    pub fn safe_with_old_replicas(self) -> bool {
        self == Self::Expand
    }

    /// The word `migrate --check` prints.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Expand => "expand",
            Self::Contract => "contract",
        }
    }
}

/// The marker lines of `sql`: `(contract, expand waiver with a reason)`.
fn markers(sql: &str) -> (bool, bool) {
    let mut contract = false;
    let mut waived = false;
    for line in sql.lines().map(str::trim) {
        if line.eq_ignore_ascii_case(CONTRACT_MARKER) {
            contract = true;
        } else if line.len() > EXPAND_MARKER.len()
            && line[..EXPAND_MARKER.len()].eq_ignore_ascii_case(EXPAND_MARKER)
            && !line[EXPAND_MARKER.len()..].trim().is_empty()
        {
            waived = true;
        }
    }
    (contract, waived)
}

/// The kind of migration `version` with this SQL, as marked.
#[must_use]
pub fn kind(version: i64, sql: &str) -> Kind {
    if version <= BASELINE {
        Kind::Baseline
    } else if markers(sql).0 {
        Kind::Contract
    } else {
        Kind::Expand
    }
}

/// `sql` without comments, lower-cased, whitespace collapsed, split into statements.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    code.split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// The statements of `sql` that break replicas of the previous version, each with why.
#[must_use]
pub fn findings(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for statement in statements(sql) {
        let why = if statement.starts_with("drop table") {
            Some("drops a table")
        } else if statement.starts_with("drop view") {
            Some("drops a view")
        } else if statement.contains(" drop column ") {
            Some("drops a column")
        } else if statement.contains(" rename column ") || statement.contains(" rename to ") {
            Some("renames a column or table")
        } else if statement.starts_with("alter table") && statement.contains(" rename ") {
            Some("renames a column")
        } else if statement.contains(" set not null") {
            Some("makes a column NOT NULL")
        } else if statement.contains(" alter column ") && statement.contains(" type ") {
            Some("changes a column's type")
        } else if statement.contains(" add column ")
            && statement.contains(" not null")
            && !statement.contains(" default ")
        {
            Some("adds a NOT NULL column without a default")
        } else {
            None
        };
        if let Some(why) = why {
            let short: String = statement.chars().take(100).collect();
            out.push(format!("{why}: {short}"));
        }
    }
    out
}

/// Whether a migration's description (its file name after the version, underscores as
/// spaces) names it a contract: `0045_contract_drop_nodes_location.sql`. The name is
/// what `_sqlx_migrations` records, so a replica of an older release, which lacks the
/// file, still tells a newer contract migration from an expand one
/// ([`super::upgrade::Report::newer_expand_only`]).
#[must_use]
pub fn named_contract(description: &str) -> bool {
    description
        .split_whitespace()
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("contract"))
}

/// What is wrong with migration `version` described as `description` (`name` for
/// messages): findings in an unmarked migration after the baseline, and a contract
/// marker and a file name that disagree.
#[must_use]
pub fn lint(name: &str, version: i64, description: &str, sql: &str) -> Vec<String> {
    if version <= BASELINE {
        return Vec::new();
    }
    let (contract, waived) = markers(sql);
    if contract != named_contract(description) {
        return vec![format!(
            "{name}: a contract migration is marked `{CONTRACT_MARKER}` and named \
             `NNNN_contract_...`; this one has {} (older replicas read the kind of a newer \
             migration from its recorded name)",
            if contract {
                "the marker only"
            } else {
                "the name only"
            }
        )];
    }
    if contract || waived {
        return Vec::new();
    }
    findings(sql)
        .into_iter()
        .map(|f| {
            format!(
                "{name}: {f} (mark it `{CONTRACT_MARKER}`, or waive with `{EXPAND_MARKER} <why>`)"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaking_statements_are_found() {
        for (sql, why) in [
            ("DROP TABLE old_things;", "drops a table"),
            ("ALTER TABLE nodes DROP COLUMN location;", "drops a column"),
            (
                "alter table nodes\n  rename column location to place;",
                "renames",
            ),
            ("ALTER TABLE nodes RENAME TO machines;", "renames"),
            (
                "ALTER TABLE nodes ALTER COLUMN name SET NOT NULL;",
                "NOT NULL",
            ),
            ("ALTER TABLE nodes ALTER COLUMN port TYPE TEXT;", "type"),
            (
                "ALTER TABLE nodes ADD COLUMN zone TEXT NOT NULL;",
                "without a default",
            ),
        ] {
            let found = findings(sql);
            assert_eq!(found.len(), 1, "{sql}: {found:?}");
            assert!(found[0].contains(why), "{sql}: {found:?}");
        }
    }

    #[test]
    fn additive_statements_pass() {
        let sql = "-- a comment that says DROP TABLE x;\n\
                   CREATE TABLE zones (id TEXT PRIMARY KEY, name TEXT NOT NULL);\n\
                   ALTER TABLE nodes ADD COLUMN zone TEXT;\n\
                   ALTER TABLE nodes ADD COLUMN weight BIGINT NOT NULL DEFAULT 1;\n\
                   CREATE INDEX nodes_zone ON nodes (zone);\n\
                   DROP INDEX IF EXISTS nodes_old;";
        assert_eq!(findings(sql), Vec::<String>::new());
        assert!(lint("0041_zones.sql", 41, "zones", sql).is_empty());
        assert_eq!(kind(41, sql), Kind::Expand);
    }

    #[test]
    fn markers_decide_the_lint_and_the_kind() {
        let drop = "ALTER TABLE nodes DROP COLUMN location;";
        assert_eq!(lint("0041_x.sql", 41, "x", drop).len(), 1);
        // Baseline migrations are exempt, and count as contract when pending.
        assert!(lint("0040_x.sql", BASELINE, "x", drop).is_empty());
        assert_eq!(kind(BASELINE, drop), Kind::Baseline);
        assert!(!Kind::Baseline.safe_with_old_replicas());

        let marked = format!("{CONTRACT_MARKER}\n{drop}");
        assert!(lint("0041_contract_x.sql", 41, "contract x", &marked).is_empty());
        // The marker and the name go together.
        assert_eq!(lint("0041_x.sql", 41, "x", &marked).len(), 1);
        assert_eq!(lint("0041_contract_x.sql", 41, "contract x", drop).len(), 1);
        assert!(named_contract("Contract drop location"));
        assert!(!named_contract("contracts"));
        assert!(!named_contract("drop contract"));
        assert_eq!(kind(41, &marked), Kind::Contract);

        let waived = format!("{EXPAND_MARKER} the rebuild keeps every column\n{drop}");
        assert!(lint("0041_x.sql", 41, "x", &waived).is_empty());
        assert_eq!(kind(41, &waived), Kind::Expand);
        // A waiver needs its reason.
        assert_eq!(
            lint("0041_x.sql", 41, "x", &format!("{EXPAND_MARKER}\n{drop}")).len(),
            1
        );
    }

    /// The lint over the real migrations: every migration after the baseline that
    /// breaks old replicas is marked, and both engines' copies agree on versions,
    /// descriptions and kinds.
    #[test]
    fn migrations_after_the_baseline_are_expand_or_marked_contract() {
        let sqlite = super::super::migrator(super::super::Backend::Sqlite);
        let postgres = super::super::migrator(super::super::Backend::Postgres);
        assert!(
            sqlite.iter().any(|m| m.version == BASELINE),
            "the baseline {BASELINE} is not a migration"
        );
        let mut problems = Vec::new();
        for (engine, migrator) in [("sqlite", sqlite), ("postgres", postgres)] {
            for m in migrator.iter() {
                let name = format!("{engine}/{:04}_{}", m.version, m.description);
                problems.extend(lint(&name, m.version, &m.description, m.sql.as_str()));
            }
        }
        let shape = |m: &sqlx::migrate::Migrator| {
            m.iter()
                .map(|m| {
                    (
                        m.version,
                        m.description.to_string(),
                        kind(m.version, m.sql.as_str()),
                    )
                })
                .collect::<Vec<_>>()
        };
        if shape(sqlite) != shape(postgres) {
            problems.push(format!(
                "the engines' migrations differ:\nsqlite   {:?}\npostgres {:?}",
                shape(sqlite),
                shape(postgres)
            ));
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
