//! A private MariaDB (Debian's `mariadb-server`, installed by `scripts/dev-services`) per
//! test, loaded with the part of Pterodactyl's schema the database-mode import reads
//! (`support/pterodactyl_schema.sql`) and a dataset whose encrypted values are made by
//! Laravel's own encrypter (`support/laravel_encrypt.php`).
//!
//! The server listens on a free loopback port; the import logs in as `ptero_ro`, which
//! has `SELECT` on the `panel` database and nothing else; `ptero_none` can log in but
//! has no rights. Killed (and its data directory removed) on drop.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::agent::free_port;

/// The database the dataset lives in.
pub const DATABASE: &str = "panel";
/// The read-only login.
pub const READ_ONLY_USER: &str = "ptero_ro";
/// A login with no rights at all.
pub const NO_RIGHTS_USER: &str = "ptero_none";

/// A running MariaDB holding a Pterodactyl schema.
pub struct PteroDb {
    child: Child,
    dir: tempfile::TempDir,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: String,
    /// The panel's `APP_KEY` (`base64:` of 32 random bytes), fresh per database.
    pub app_key: String,
}

impl Drop for PteroDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh `APP_KEY` as `php artisan key:generate` writes it.
#[must_use]
pub fn random_app_key() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "base64:{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// What Laravel's encrypter and PHP's bcrypt made, in the order asked.
#[derive(Debug, Clone, Default)]
pub struct PhpMade {
    /// `encrypt()` payloads (serialized first, as Pterodactyl stores them).
    pub encrypt: Vec<String>,
    /// `encryptString()` payloads.
    pub encrypt_string: Vec<String>,
    /// `$2y$10$...` hashes.
    pub bcrypt: Vec<String>,
}

/// Runs `support/laravel_encrypt.php` with `app_key`.
///
/// # Panics
/// When PHP or Debian's php-laravel-framework is missing (run `scripts/dev-services`).
pub async fn php(
    app_key: &str,
    encrypt: &[&str],
    encrypt_string: &[&str],
    bcrypt: &[&str],
) -> PhpMade {
    let input = json!({
        "app_key": app_key,
        "encrypt": encrypt,
        "encrypt_string": encrypt_string,
        "bcrypt": bcrypt,
    });
    let out = run_with_stdin(
        tokio::process::Command::new("php").arg(crate::crate_path("support/laravel_encrypt.php")),
        input.to_string().as_bytes(),
    )
    .await
    .unwrap_or_else(|e| {
        panic!("php support/laravel_encrypt.php failed ({e}); run scripts/dev-services")
    });
    let v: Value = serde_json::from_slice(&out).expect("the PHP script answers JSON");
    let list = |k: &str| -> Vec<String> {
        v[k].as_array()
            .expect("list")
            .iter()
            .map(|s| s.as_str().expect("string").to_owned())
            .collect()
    };
    PhpMade {
        encrypt: list("encrypt"),
        encrypt_string: list("encrypt_string"),
        bcrypt: list("bcrypt"),
    }
}

async fn run_with_stdin(
    cmd: &mut tokio::process::Command,
    input: &[u8],
) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncWriteExt;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
    });
    let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
    let _ = writer.await;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A SQL string literal (MariaDB's default mode: backslash escapes).
#[must_use]
pub fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `q(s)` or `NULL`.
#[must_use]
pub fn q_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".to_owned(), q)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PteroDb {
    /// Installs a data directory, starts `mariadbd` on a free loopback port, creates the
    /// `panel` database with the schema and the two logins.
    ///
    /// # Panics
    /// When MariaDB is not installed or does not start within 60 s.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // Each server its own temporary directory: bootstraps running side by side in
        // the shared /tmp trip over each other's temporary tables.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmpdir");
        let root = running_as_root();
        let mut install = tokio::process::Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ]);
        if root {
            install.arg("--user=root");
        }
        let out = install
            .output()
            .await
            .expect("mariadb-install-db runs (scripts/dev-services installs mariadb-server)");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!(
                "--log-error={}",
                dir.path().join("error.log").display()
            ))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if root {
            cmd.arg("--user=root");
        }
        let child = cmd.spawn().expect("mariadbd starts");
        let password = format!("ro-{}", uuid::Uuid::new_v4().simple());
        let db = Self {
            child,
            dir,
            host: "127.0.0.1".into(),
            port,
            database: DATABASE.into(),
            username: READ_ONLY_USER.into(),
            password,
            app_key: random_app_key(),
        };
        db.wait_ready().await;
        let schema = std::fs::read_to_string(crate::crate_path("support/pterodactyl_schema.sql"))
            .expect("support/pterodactyl_schema.sql");
        db.run_root(
            None,
            &format!(
                "CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n\
             USE {DATABASE};\n{schema}\n\
             CREATE USER '{READ_ONLY_USER}'@'%' IDENTIFIED BY {pw};\n\
             GRANT SELECT ON {DATABASE}.* TO '{READ_ONLY_USER}'@'%';\n\
             CREATE USER '{NO_RIGHTS_USER}'@'%' IDENTIFIED BY {pw};\n",
                pw = q(&db.password),
            ),
        )
        .await;
        db
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn client(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("mariadb");
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "--batch", "--skip-column-names"]);
        cmd
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self
                .client()
                .args(["-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start within 60 s: {}",
                std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs SQL as root (through the socket) in the `panel` database; returns the output
    /// (tab-separated, no headers).
    ///
    /// # Panics
    /// When the SQL fails.
    pub async fn root_sql(&self, sql: &str) -> String {
        self.run_root(Some(DATABASE), sql).await
    }

    async fn run_root(&self, database: Option<&str>, sql: &str) -> String {
        let mut cmd = self.client();
        cmd.args(database);
        let out = run_with_stdin(&mut cmd, sql.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("SQL failed: {e}"));
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The body of `POST /v1/pterodactyl/validate` (and `servers`, `import`) for this
    /// database.
    #[must_use]
    pub fn body(&self) -> Value {
        json!({
            "mode": "database",
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.username,
            "password": self.password,
            "app_key": self.app_key,
        })
    }

    /// The connection fields alone (`DbConnection`'s shape).
    #[must_use]
    pub fn connection(&self) -> Value {
        json!({
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "username": self.username,
            "password": self.password,
        })
    }

    /// Encrypts with this panel's `APP_KEY` through Laravel.
    pub async fn encrypt(&self, values: &[&str]) -> Vec<String> {
        php(&self.app_key, values, &[], &[]).await.encrypt
    }
}

/// The dataset [`PteroDb::load_sample`] loads, with the plaintexts a test compares to.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Node id → daemon token id and plaintext token.
    pub node_tokens: Vec<(i64, String, String)>,
    /// User id → (email, plaintext password, bcrypt hash as stored).
    pub passwords: Vec<(i64, String, String, String)>,
    /// The TOTP secret of user 1 (`use_totp` on).
    pub totp_secret: String,
    /// User 3 started 2FA setup but never confirmed it: a secret stored, `use_totp` off.
    pub unconfirmed_totp_user: i64,
    /// Server uuids by id.
    pub servers: Vec<(i64, String)>,
}

impl Sample {
    /// A node's plaintext daemon token.
    #[must_use]
    pub fn token(&self, node_id: i64) -> &str {
        &self
            .node_tokens
            .iter()
            .find(|t| t.0 == node_id)
            .expect("node")
            .2
    }
}

/// The Paper egg's config files, as Pterodactyl stores them (a JSON string).
const PAPER_FILES: &str = "{\r\n    \"server.properties\": {\r\n        \"parser\": \"properties\",\r\n        \"find\": {\r\n            \"server-ip\": \"0.0.0.0\",\r\n            \"server-port\": \"{{server.build.default.port}}\"\r\n        }\r\n    }\r\n}";
const PAPER_STARTUP: &str = "{\r\n    \"done\": \")! For help, type \"\r\n}";
const PAPER_INSTALL: &str =
    "#!/bin/ash\r\ncd /mnt/server\r\necho \"installing paper ${MINECRAFT_VERSION}\"\r\n";

impl PteroDb {
    /// Loads a small panel: one location; two nodes with encrypted daemon tokens; three
    /// users (a root admin with TOTP on, a customer, a helper with an unconfirmed TOTP
    /// secret) with bcrypt passwords; one nest with a Paper egg and a Forge egg that takes
    /// its config (`config_from`) and install script (`copy_script_from`) from Paper and
    /// still has 1.x's list of images; three servers (one suspended) with allocations and
    /// variables (one set, one left to its default); a subuser; two schedules with tasks
    /// stored out of sequence.
    ///
    /// # Panics
    /// When PHP or the SQL fails.
    pub async fn load_sample(&self) -> Sample {
        let tokens = [
            "k1Q0r3dT0k3nF0rW1ngsN0d3OneAbCdEfGhIjKlMnOpQrStUvWxYz0123456789Z",
            "Second-node-token/with+symbols=and-length-64-xxxxxxxxxxxxxxxxxxx",
        ];
        let totp = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        let unconfirmed = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        let passwords = ["root-admin-password", "alice-password-1", "bob pässword"];
        let made = php(
            &self.app_key,
            &[tokens[0], tokens[1], totp, unconfirmed],
            &[],
            &passwords,
        )
        .await;
        let token_ids = ["aaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaa2"];
        let emails = ["root@example.com", "alice@example.com", "bob@example.com"];
        let servers = [
            (1, "2b0a6d3e-1111-4a6e-9a39-5d7f0f6f0a01"),
            (2, "9c3e5b21-2222-4f7d-8e21-0b6c9d2a4b02"),
            (3, "f1e2d3c4-3333-4b5a-9687-a1b2c3d4e503"),
        ];
        let mut sql = String::new();
        sql.push_str(
            "INSERT INTO locations (id, short, `long`) VALUES (1, 'fsn1', 'Falkenstein, DE');\n",
        );
        for (i, (id, fqdn)) in [(1, "wings1.example.com"), (2, "wings2.example.com")]
            .into_iter()
            .enumerate()
        {
            let _ = writeln!(
                sql,
                "INSERT INTO nodes (id, uuid, public, name, location_id, fqdn, scheme, memory, \
                 disk, daemon_token_id, daemon_token, daemonListen, daemonSFTP) VALUES \
                 ({id}, {uuid}, 1, 'node-{id}', 1, {fqdn}, 'https', 16384, 200000, {tid}, {tok}, \
                 8080, {sftp});",
                uuid = q(&format!("0e9f6c2a-0000-4000-8000-00000000000{id}")),
                fqdn = q(fqdn),
                tid = q(token_ids[i]),
                tok = q(&made.encrypt[i]),
                sftp = 2022 + i,
            );
        }
        let users = [
            (1, "root", 1, 1, Some(&made.encrypt[2])),
            (2, "alice", 0, 0, None),
            (3, "bob", 0, 0, Some(&made.encrypt[3])),
        ];
        for (i, (id, name, admin, use_totp, secret)) in users.into_iter().enumerate() {
            let _ = writeln!(
                sql,
                "INSERT INTO users (id, uuid, username, email, name_first, name_last, password, \
                 root_admin, use_totp, totp_secret) VALUES ({id}, {uuid}, {name}, {email}, \
                 {first}, 'Example', {pw}, {admin}, {use_totp}, {secret});",
                uuid = q(&format!("5a1d0c9e-0000-4000-8000-00000000000{id}")),
                name = q(name),
                email = q(emails[i]),
                first = q(&name.to_uppercase()),
                pw = q(&made.bcrypt[i]),
                secret = q_opt(secret.map(String::as_str)),
            );
        }
        sql.push_str(
            "INSERT INTO nests (id, uuid, author, name, description) VALUES \
             (1, '7f1e0000-0000-4000-8000-000000000001', 'support@pterodactyl.io', 'Minecraft', \
             'Minecraft - the classic game from Mojang.');\n",
        );
        let _ = writeln!(
            sql,
            "INSERT INTO eggs (id, uuid, nest_id, author, name, description, features, \
             docker_images, file_denylist, update_url, config_files, config_startup, \
             config_logs, config_stop, config_from, startup, script_container, \
             copy_script_from, script_entry, script_install) VALUES \
             (1, 'e9900000-0000-4000-8000-000000000001', 1, 'parker@pterodactyl.io', 'Paper', \
             'High performance Spigot fork.', '[\"eula\", \"java_version\"]', \
             '{{\"Java 21\": \"ghcr.io/pterodactyl/yolks:java_21\", \"Java 17\": \"ghcr.io/pterodactyl/yolks:java_17\"}}', \
             '[]', NULL, {files}, {startup}, '{{}}', 'stop', NULL, \
             'java -Xms128M -jar {{{{SERVER_JARFILE}}}}', 'ghcr.io/pterodactyl/installers:alpine', \
             NULL, 'ash', {install}),\n\
             (2, 'e9900000-0000-4000-8000-000000000002', 1, 'parker@pterodactyl.io', \
             'Forge (inherits Paper)', NULL, NULL, '[\"ghcr.io/pterodactyl/yolks:java_17\"]', \
             NULL, NULL, NULL, NULL, NULL, NULL, 1, 'java -jar {{{{SERVER_JARFILE}}}} nogui', \
             'ghcr.io/pterodactyl/installers:debian', 1, 'bash', NULL);",
            files = q(PAPER_FILES),
            startup = q(PAPER_STARTUP),
            install = q(PAPER_INSTALL),
        );
        sql.push_str(
            "INSERT INTO egg_variables (id, egg_id, name, description, env_variable, \
             default_value, user_viewable, user_editable, rules) VALUES \
             (1, 1, 'Minecraft Version', 'The version.', 'MINECRAFT_VERSION', 'latest', 1, 1, \
             'nullable|string|max:20'), \
             (2, 1, 'Server Jar File', 'The jar.', 'SERVER_JARFILE', 'server.jar', 1, 1, \
             'required|regex:/^([\\\\w\\\\d._-]+)(\\\\.jar)$/'), \
             (3, 2, 'Server Jar File', 'The jar.', 'SERVER_JARFILE', 'forge.jar', 1, 0, \
             'required|string|max:40');\n",
        );
        let server_rows = [
            // id, owner, node, egg, status, memory, allocation
            (1, 2, 1, 1, "NULL", 4096, 11),
            (2, 2, 1, 2, "'suspended'", 2048, 13),
            (3, 1, 2, 1, "NULL", 1024, 21),
        ];
        for (i, (id, owner, node, egg, status, memory, alloc)) in
            server_rows.into_iter().enumerate()
        {
            let _ = writeln!(
                sql,
                "INSERT INTO servers (id, uuid, uuidShort, node_id, name, description, status, \
                 owner_id, memory, swap, disk, io, cpu, threads, oom_disabled, allocation_id, \
                 nest_id, egg_id, startup, image, backup_limit) VALUES ({id}, {uuid}, {short}, \
                 {node}, 'Server {id}', 'Sample server {id}', {status}, {owner}, {memory}, 0, \
                 10240, 500, {cpu}, {threads}, {oom}, {alloc}, 1, {egg}, \
                 'java -Xms128M -Xmx{memory}M -jar {{{{SERVER_JARFILE}}}}', \
                 'ghcr.io/pterodactyl/yolks:java_17', {backups});",
                uuid = q(servers[i].1),
                short = q(&servers[i].1[..8]),
                cpu = 100 * (i + 1),
                threads = if i == 0 { "'0-1'" } else { "NULL" },
                oom = i64::from(i == 1),
                backups = 2 + i,
            );
        }
        sql.push_str(
            "INSERT INTO allocations (id, node_id, ip, ip_alias, port, server_id) VALUES \
             (11, 1, '10.0.0.10', 'mc.example.com', 25565, 1), \
             (12, 1, '10.0.0.10', NULL, 25575, 1), \
             (13, 1, '10.0.0.10', NULL, 25566, 2), \
             (14, 1, '10.0.0.10', NULL, 25567, NULL), \
             (21, 2, '10.0.0.20', NULL, 25565, 3);\n\
             INSERT INTO server_variables (id, server_id, variable_id, variable_value) VALUES \
             (1, 1, 2, 'paper-1.20.4.jar'), (2, 2, 3, ''), (3, 3, 1, '1.20.1');\n\
             INSERT INTO subusers (id, user_id, server_id, permissions) VALUES \
             (1, 3, 1, '[\"control.console\", \"control.start\", \"file.read\"]');\n\
             INSERT INTO schedules (id, server_id, name, cron_day_of_week, cron_month, \
             cron_day_of_month, cron_hour, cron_minute, is_active, is_processing, \
             only_when_online) VALUES \
             (1, 1, 'Nightly restart', '*', '*', '*', '4', '0', 1, 0, 1), \
             (2, 3, 'Weekly backup', '0', '*', '*', '3', '30', 0, 0, 0);\n\
             INSERT INTO tasks (id, schedule_id, sequence_id, action, payload, time_offset, \
             is_queued, continue_on_failure) VALUES \
             (1, 1, 3, 'power', 'start', 10, 0, 0), \
             (2, 1, 1, 'command', 'say Restarting in 60 seconds', 0, 0, 1), \
             (3, 1, 2, 'power', 'restart', 60, 0, 0), \
             (4, 2, 1, 'backup', '', 0, 0, 0);\n",
        );
        self.root_sql(&sql).await;
        Sample {
            node_tokens: (0..2)
                .map(|i| {
                    (
                        i64::try_from(i + 1).expect("id"),
                        token_ids[i].to_owned(),
                        tokens[i].to_owned(),
                    )
                })
                .collect(),
            passwords: (0..3)
                .map(|i| {
                    (
                        i64::try_from(i + 1).expect("id"),
                        emails[i].to_owned(),
                        passwords[i].to_owned(),
                        made.bcrypt[i].clone(),
                    )
                })
                .collect(),
            totp_secret: totp.into(),
            unconfirmed_totp_user: 3,
            servers: servers.iter().map(|(i, u)| (*i, (*u).to_owned())).collect(),
        }
    }

    /// [`Self::load_sample`] and `n` more servers (ids from 1001) for benchmarks: one
    /// owner per five servers (all with the password `bench-password`), each server with
    /// two allocations and a variable set, every tenth with a subuser, every fifth with a
    /// schedule of two tasks.
    ///
    /// # Panics
    /// When PHP or the SQL fails.
    pub async fn load_many(&self, n: usize) -> Sample {
        let sample = self.load_sample().await;
        let hash = php(&self.app_key, &[], &[], &["bench-password"])
            .await
            .bcrypt[0]
            .clone();
        let mut users = Vec::new();
        let mut servers = Vec::new();
        let mut allocations = Vec::new();
        let mut variables = Vec::new();
        let mut subusers = Vec::new();
        let mut schedules = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..n {
            let id = 1001 + i;
            let owner = 1001 + i / 5;
            if i % 5 == 0 {
                users.push(format!(
                    "({owner}, '{uuid}', 'bench{owner}', 'bench{owner}@example.com', 'Bench', \
                     '{owner}', {hash}, 0, 0, NULL)",
                    uuid = uuid::Uuid::new_v4(),
                    hash = q(&hash),
                ));
            }
            let uuid = uuid::Uuid::new_v4().to_string();
            servers.push(format!(
                "({id}, '{uuid}', '{short}', 1, 'Bench {id}', '', NULL, {owner}, 1024, 0, 5120, \
                 500, 100, NULL, 0, {a}, 1, 1, 'java -jar {{{{SERVER_JARFILE}}}}', \
                 'ghcr.io/pterodactyl/yolks:java_17', 1)",
                short = &uuid[..8],
                a = 2 * id,
            ));
            let port = 30000 + 2 * i;
            allocations.push(format!("({}, 1, '10.0.1.1', NULL, {port}, {id})", 2 * id));
            allocations.push(format!(
                "({}, 1, '10.0.1.1', NULL, {}, {id})",
                2 * id + 1,
                port + 1
            ));
            variables.push(format!("({id}, {id}, 2, 'bench-{id}.jar')"));
            if i % 10 == 0 {
                subusers.push(format!("({id}, 3, {id}, '[\"control.console\"]')"));
            }
            if i % 5 == 0 {
                schedules.push(format!(
                    "({id}, {id}, 'Bench {id}', '*', '*', '*', '*/6', '0', 1, 0, 0)"
                ));
                tasks.push(format!(
                    "({}, {id}, 1, 'command', 'save-all', 0, 0, 0)",
                    2 * id
                ));
                tasks.push(format!(
                    "({}, {id}, 2, 'power', 'restart', 30, 0, 0)",
                    2 * id + 1
                ));
            }
        }
        let mut sql = String::new();
        let mut insert = |head: &str, rows: &[String]| {
            for chunk in rows.chunks(200) {
                let _ = writeln!(sql, "{head} VALUES {};", chunk.join(",\n"));
            }
        };
        insert(
            "INSERT INTO users (id, uuid, username, email, name_first, name_last, password, \
             root_admin, use_totp, totp_secret)",
            &users,
        );
        insert(
            "INSERT INTO servers (id, uuid, uuidShort, node_id, name, description, status, \
             owner_id, memory, swap, disk, io, cpu, threads, oom_disabled, allocation_id, \
             nest_id, egg_id, startup, image, backup_limit)",
            &servers,
        );
        insert(
            "INSERT INTO allocations (id, node_id, ip, ip_alias, port, server_id)",
            &allocations,
        );
        insert(
            "INSERT INTO server_variables (id, server_id, variable_id, variable_value)",
            &variables,
        );
        insert(
            "INSERT INTO subusers (id, user_id, server_id, permissions)",
            &subusers,
        );
        insert(
            "INSERT INTO schedules (id, server_id, name, cron_day_of_week, cron_month, \
             cron_day_of_month, cron_hour, cron_minute, is_active, is_processing, \
             only_when_online)",
            &schedules,
        );
        insert(
            "INSERT INTO tasks (id, schedule_id, sequence_id, action, payload, time_offset, \
             is_queued, continue_on_failure)",
            &tasks,
        );
        self.root_sql(&sql).await;
        sample
    }
}
