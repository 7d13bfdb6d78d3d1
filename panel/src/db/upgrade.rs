//! `shardlyn migrate --check`: what an upgrade will do to a database, read without
//! changing it. Compares the migrations this binary carries with the ones the database
//! records (`_sqlx_migrations`): applied, pending (each expand or contract, see
//! [`super::contract`]), and the ones that make the binary unfit for the database
//! (applied by a newer release, edited since applied, or left half-done).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::contract::{self, Kind};
use super::{Backend, Db};

/// Exit code of `migrate --check`: the database is up to date.
pub const EXIT_UP_TO_DATE: u8 = 0;
/// Exit code: pending migrations, all expand (safe while old replicas serve).
pub const EXIT_PENDING_EXPAND: u8 = 10;
/// Exit code: pending migrations, at least one contract (stop old replicas first).
pub const EXIT_PENDING_CONTRACT: u8 = 11;
/// Exit code: this binary must not migrate or serve this database (a contract migration
/// of a newer release, a checksum that differs, or a failed migration).
pub const EXIT_INCOMPATIBLE: u8 = 12;
/// Exit code: a newer release expanded the database (only expand migrations this binary
/// does not know, after all of its own): this binary serves it as is, a replica of the
/// old version during a rolling upgrade, and migrates nothing.
pub const EXIT_NEWER_EXPAND: u8 = 13;

/// One migration of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub version: i64,
    pub description: String,
    pub kind: Kind,
}

/// What `migrate --check` found.
#[derive(Debug, Clone)]
pub struct Report {
    pub backend: Backend,
    /// Applied and known to this binary, oldest first.
    pub applied: Vec<Step>,
    /// Known to this binary, not applied yet, in the order they will run.
    pub pending: Vec<Step>,
    /// Applied, but not among this binary's migrations: the database is newer.
    pub unknown: Vec<(i64, String)>,
    /// Applied with a checksum other than this binary's copy.
    pub mismatched: Vec<i64>,
    /// Recorded as failed (left half-applied).
    pub failed: Vec<i64>,
}

#[derive(sqlx::FromRow)]
struct AppliedRow {
    version: i64,
    description: String,
    success: i64,
    checksum: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct Count {
    n: i64,
}

impl Db {
    /// Reads the database's migration table and compares it with this binary's
    /// migrations. Reads only: a database without the table has everything pending.
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn upgrade_report(&self) -> anyhow::Result<Report> {
        let exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master \
                 WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) AS n FROM information_schema.tables \
                 WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()"
            }
        };
        let table: Count = sqlx::query_as(exists).fetch_one(&self.pool).await?;
        let rows: Vec<AppliedRow> = if table.n == 0 {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT version, description, \
                 CASE WHEN success THEN 1 ELSE 0 END AS success, checksum \
                 FROM _sqlx_migrations ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await?
        };
        Ok(Report::compare(self.backend, &rows))
    }

    /// The report for a database that does not exist yet (a SQLite file not made).
    #[must_use]
    pub fn report_for_empty(backend: Backend) -> Report {
        Report::compare(backend, &[])
    }
}

impl Report {
    fn compare(backend: Backend, rows: &[AppliedRow]) -> Self {
        let known: BTreeMap<i64, &sqlx::migrate::Migration> = super::migrator(backend)
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m))
            .collect();
        let mut report = Self {
            backend,
            applied: Vec::new(),
            pending: Vec::new(),
            unknown: Vec::new(),
            mismatched: Vec::new(),
            failed: Vec::new(),
        };
        for row in rows {
            if row.success == 0 {
                report.failed.push(row.version);
            }
            match known.get(&row.version) {
                None => report.unknown.push((row.version, row.description.clone())),
                Some(m) => {
                    if *m.checksum != *row.checksum {
                        report.mismatched.push(row.version);
                    }
                    report.applied.push(step(m));
                }
            }
        }
        report.pending = known
            .values()
            .filter(|m| !rows.iter().any(|r| r.version == m.version))
            .map(|m| step(m))
            .collect();
        report
    }

    /// Whether this binary may migrate and serve the database.
    #[must_use]
    pub fn compatible(&self) -> bool {
        self.unknown.is_empty() && self.mismatched.is_empty() && self.failed.is_empty()
    }

    /// Whether a newer release expanded the database and nothing else: every one of this
    /// binary's migrations is applied as this binary has it, and the ones it does not
    /// know come after them and are all named expand ([`contract::named_contract`]).
    /// Such a database is served, never migrated, by this binary.
    #[must_use]
    pub fn newer_expand_only(&self) -> bool {
        let newest_known = self.applied.iter().map(|s| s.version).max().unwrap_or(0);
        !self.unknown.is_empty()
            && self.pending.is_empty()
            && self.mismatched.is_empty()
            && self.failed.is_empty()
            && self
                .unknown
                .iter()
                .all(|(v, d)| *v > newest_known && !contract::named_contract(d))
    }

    /// The exit code of `migrate --check` (see the `EXIT_*` constants).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        if self.newer_expand_only() {
            EXIT_NEWER_EXPAND
        } else if !self.compatible() {
            EXIT_INCOMPATIBLE
        } else if self.pending.is_empty() {
            EXIT_UP_TO_DATE
        } else if self.pending.iter().all(|s| s.kind.safe_with_old_replicas()) {
            EXIT_PENDING_EXPAND
        } else {
            EXIT_PENDING_CONTRACT
        }
    }

    /// The report as `migrate --check` prints it.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "database: {} (this binary: shardlyn {}, baseline {:04})",
            self.backend.name(),
            env!("CARGO_PKG_VERSION"),
            contract::BASELINE
        );
        let _ = writeln!(out, "applied: {}", self.applied.len());
        for s in &self.applied {
            let _ = writeln!(out, "  {:04} {}", s.version, s.description);
        }
        let _ = writeln!(out, "pending: {}", self.pending.len());
        for s in &self.pending {
            let note = match s.kind {
                Kind::Expand => "safe while old replicas serve",
                Kind::Contract => "stop every replica of the old version first",
                Kind::Baseline => "from before the baseline: stop every replica first",
            };
            let _ = writeln!(
                out,
                "  {:04} {:<40} {:<8} {note}",
                s.version,
                s.description,
                s.kind.label()
            );
        }
        for (version, description) in &self.unknown {
            let kind = if contract::named_contract(description) {
                "contract"
            } else {
                "expand"
            };
            let _ = writeln!(
                out,
                "unknown: {version:04} {description} ({kind}, applied by a newer shardlyn)"
            );
        }
        for version in &self.mismatched {
            let _ = writeln!(
                out,
                "checksum mismatch: {version:04} (the applied migration differs from this binary's copy)"
            );
        }
        for version in &self.failed {
            let _ = writeln!(out, "failed: {version:04} (recorded as not completed)");
        }
        let verdict = match self.exit_code() {
            EXIT_UP_TO_DATE => "up to date".to_string(),
            EXIT_PENDING_EXPAND => format!(
                "{} pending, all expand: run `shardlyn migrate` (or start the new version) \
                 while old replicas keep serving",
                self.pending.len()
            ),
            EXIT_PENDING_CONTRACT => format!(
                "{} pending, contract among them: stop every replica of the old version, \
                 then run `shardlyn migrate`",
                self.pending.len()
            ),
            EXIT_NEWER_EXPAND => format!(
                "a newer shardlyn expanded the database ({} expand migration(s)); this \
                 binary ({}) serves it as it is, as an old replica during a rolling \
                 upgrade: do not migrate with it",
                self.unknown.len(),
                env!("CARGO_PKG_VERSION")
            ),
            _ if !self.unknown.is_empty() => format!(
                "refused: the database has {} migration(s) this binary does not know; it was \
                 migrated by a newer shardlyn than {}: run that version (or newer)",
                self.unknown.len(),
                env!("CARGO_PKG_VERSION")
            ),
            _ => "refused: the recorded migrations do not match this binary's \
                  (edited or failed migrations); restore the backup taken before the upgrade"
                .to_string(),
        };
        let _ = writeln!(out, "verdict: {verdict}");
        out
    }
}

fn step(m: &sqlx::migrate::Migration) -> Step {
    Step {
        version: m.version,
        description: m.description.to_string(),
        kind: contract::kind(m.version, m.sql.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(backend: Backend, upto: i64) -> Vec<AppliedRow> {
        super::super::migrator(backend)
            .iter()
            .filter(|m| m.version <= upto)
            .map(|m| AppliedRow {
                version: m.version,
                description: m.description.to_string(),
                success: 1,
                checksum: m.checksum.to_vec(),
            })
            .collect()
    }

    #[test]
    fn a_database_at_the_latest_is_up_to_date() {
        let report = Report::compare(Backend::Sqlite, &applied(Backend::Sqlite, i64::MAX));
        assert!(report.pending.is_empty());
        assert_eq!(report.exit_code(), EXIT_UP_TO_DATE);
        assert!(report.render().contains("verdict: up to date"));
    }

    #[test]
    fn a_database_behind_lists_what_is_pending() {
        let report = Report::compare(Backend::Postgres, &applied(Backend::Postgres, BEHIND));
        assert_eq!(report.pending.first().map(|s| s.version), Some(BEHIND + 1));
        assert_eq!(report.pending[0].kind, Kind::Baseline);
        assert_eq!(report.exit_code(), EXIT_PENDING_CONTRACT);
        let text = report.render();
        assert!(text.contains("0040 deployments"), "{text}");
        assert!(text.contains("stop every replica"), "{text}");
        let empty = Db::report_for_empty(Backend::Sqlite);
        assert_eq!(
            empty.pending.len(),
            empty.applied.len() + empty.pending.len()
        );
    }

    const BEHIND: i64 = contract::BASELINE - 1;

    #[test]
    fn a_newer_or_edited_database_is_refused() {
        let mut rows = applied(Backend::Sqlite, i64::MAX);
        rows.push(AppliedRow {
            version: 9_999,
            description: "from the future".into(),
            success: 1,
            checksum: vec![1, 2, 3],
        });
        rows[0].checksum = vec![0];
        let report = Report::compare(Backend::Sqlite, &rows);
        assert_eq!(report.unknown, [(9_999, "from the future".to_string())]);
        assert_eq!(report.mismatched, [1]);
        assert_eq!(report.exit_code(), EXIT_INCOMPATIBLE);
        let text = report.render();
        assert!(text.contains("unknown: 9999 from the future"), "{text}");
        assert!(text.contains("newer shardlyn"), "{text}");
    }

    fn newer(description: &str) -> Report {
        let mut rows = applied(Backend::Sqlite, i64::MAX);
        rows.push(AppliedRow {
            version: 9_999,
            description: description.into(),
            success: 1,
            checksum: vec![1, 2, 3],
        });
        Report::compare(Backend::Sqlite, &rows)
    }

    #[test]
    fn a_newer_expand_only_database_is_served_a_newer_contract_refused() {
        let report = newer("zones");
        assert!(report.newer_expand_only());
        assert_eq!(report.exit_code(), EXIT_NEWER_EXPAND);
        let text = report.render();
        assert!(text.contains("9999 zones (expand"), "{text}");
        assert!(text.contains("serves it as it is"), "{text}");

        let report = newer("contract drop nodes location");
        assert!(!report.newer_expand_only());
        assert_eq!(report.exit_code(), EXIT_INCOMPATIBLE);
        assert!(report.render().contains("(contract, applied"));

        // One of its own migrations missing (a gap): not served, whatever came after.
        let mut rows = applied(Backend::Sqlite, i64::MAX);
        rows.retain(|r| r.version != contract::BASELINE);
        rows.push(AppliedRow {
            version: 9_999,
            description: "zones".into(),
            success: 1,
            checksum: vec![1],
        });
        let report = Report::compare(Backend::Sqlite, &rows);
        assert!(!report.newer_expand_only());
        assert_eq!(report.exit_code(), EXIT_INCOMPATIBLE);
    }
}
