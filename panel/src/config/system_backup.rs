//! The panel's own backup (`[system_backup]`): when it runs, how many archives are kept,
//! where they go (a directory or an S3 bucket) and the key they are encrypted to. The
//! configuration refuses, at start-up, a schedule without a key or a key that is not one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Secret;

/// `[system_backup]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SystemBackupConfig {
    /// Cron expression (UTC), e.g. `0 3 * * *`; empty: only `shardlyn backup` makes one.
    pub schedule: String,
    /// Archives kept at the destination; older ones are deleted after a successful run.
    pub keep: u32,
    /// Directory the archives are written to when no `s3_bucket` is set; empty:
    /// `<data_dir>/system-backups`.
    pub dir: Option<PathBuf>,
    /// An S3 bucket instead of the directory.
    pub s3_bucket: String,
    /// The S3 endpoint (MinIO, R2...); empty: AWS.
    pub s3_endpoint: String,
    pub s3_region: String,
    /// Key prefix of the archives in the bucket.
    pub s3_prefix: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: Secret,
    /// Encrypts archives to this passphrase (age, scrypt).
    pub passphrase: Secret,
    /// Encrypts archives to these age public keys (`age1...`); the operator keeps the
    /// identities, the panel never sees them.
    pub recipients: Vec<String>,
    /// `pg_dump` to use; empty: the newest under `/usr/lib/postgresql/*/bin`, then `PATH`.
    pub pg_dump: Option<PathBuf>,
}

impl Default for SystemBackupConfig {
    fn default() -> Self {
        Self {
            schedule: String::new(),
            keep: 7,
            dir: None,
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: String::new(),
            s3_prefix: "shardlyn-panel/".into(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: Secret::default(),
            passphrase: Secret::default(),
            recipients: Vec::new(),
            pg_dump: None,
        }
    }
}

impl SystemBackupConfig {
    /// Some key to encrypt to is configured.
    #[must_use]
    pub fn has_key(&self) -> bool {
        !self.passphrase.expose().is_empty() || !self.recipients.is_empty()
    }

    /// The archives' directory (when they do not go to S3).
    #[must_use]
    pub fn dir_or_default(&self, data_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| data_dir.join("system-backups"))
    }

    /// Checks the settings hang together.
    ///
    /// # Errors
    /// A schedule without a key, both kinds of key, a recipient that is not an age public
    /// key, a short passphrase, a bad cron expression or `keep = 0`. (A bucket S3 would
    /// refuse shows as a failed run.)
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.keep >= 1, "system_backup.keep must be at least 1");
        for r in &self.recipients {
            anyhow::ensure!(
                r.trim().parse::<age::x25519::Recipient>().is_ok(),
                "system_backup.recipients: {r:?} is not an age public key (age1...)"
            );
        }
        let passphrase = self.passphrase.expose();
        anyhow::ensure!(
            passphrase.is_empty() || self.recipients.is_empty(),
            "system_backup: set passphrase or recipients, not both (age encrypts a file to one kind)"
        );
        anyhow::ensure!(
            passphrase.is_empty() || passphrase.chars().count() >= 12,
            "system_backup.passphrase must be empty or at least 12 characters"
        );
        if !self.schedule.trim().is_empty() {
            // Five fields, as schedules take them (`schedules::cron`); the configuration
            // is a leaf, so it asks croner itself.
            let expr = self.schedule.trim();
            anyhow::ensure!(
                expr.split_whitespace().count() == 5,
                "system_backup.schedule has 5 fields (minute hour day-of-month month day-of-week)"
            );
            croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Disallowed)
                .year(croner::parser::Year::Disallowed)
                .build()
                .parse(expr)
                .map_err(|e| anyhow::anyhow!("system_backup.schedule `{expr}`: {e}"))?;
            anyhow::ensure!(
                self.has_key(),
                "system_backup.schedule needs system_backup.passphrase or system_backup.recipients: \
                 the panel's backups are always encrypted to a key you hold"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECIPIENT: &str = "age10m0h6vv2t5pwmfu6qylxgp2vlwvjt0j22pp500a340qw2plgdf8qn0fkuu";

    fn refused(settings: &SystemBackupConfig, says: &str) {
        let err = settings.validate().expect_err("refused");
        assert!(err.to_string().contains(says), "{err}");
    }

    #[test]
    fn only_settings_that_can_make_a_backup_pass() {
        let passphrase = Secret("long enough passphrase".into());
        let ok = SystemBackupConfig {
            schedule: "0 3 * * *".into(),
            passphrase,
            ..SystemBackupConfig::default()
        };
        ok.validate().expect("valid");
        SystemBackupConfig::default()
            .validate()
            .expect("no schedule, no key: only the CLI would refuse");
        refused(
            &SystemBackupConfig {
                passphrase: Secret::default(),
                ..ok.clone()
            },
            "needs system_backup.passphrase or system_backup.recipients",
        );
        refused(
            &SystemBackupConfig {
                recipients: vec![RECIPIENT.into()],
                ..ok.clone()
            },
            "not both",
        );
        refused(
            &SystemBackupConfig {
                passphrase: Secret::default(),
                recipients: vec!["age1notakey".into()],
                ..ok.clone()
            },
            "not an age public key",
        );
        refused(
            &SystemBackupConfig {
                passphrase: Secret("short".into()),
                ..ok.clone()
            },
            "at least 12 characters",
        );
        refused(
            &SystemBackupConfig {
                schedule: "0 3 * *".into(),
                ..ok.clone()
            },
            "5 fields",
        );
        refused(
            &SystemBackupConfig {
                schedule: "0 25 * * *".into(),
                ..ok.clone()
            },
            "system_backup.schedule",
        );
        refused(
            &SystemBackupConfig {
                keep: 0,
                ..ok.clone()
            },
            "keep",
        );
        SystemBackupConfig {
            passphrase: Secret::default(),
            recipients: vec![RECIPIENT.into()],
            ..ok
        }
        .validate()
        .expect("a public key instead of the passphrase");
    }
}
