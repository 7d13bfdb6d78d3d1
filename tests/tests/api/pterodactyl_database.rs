//! Pterodactyl database mode (issue 20, `pterodactyl::database` and `pterodactyl::laravel`)
//! against a private MariaDB loaded with Pterodactyl's schema (`support/
//! pterodactyl_schema.sql`), its encrypted values made by Laravel's own encrypter and its
//! password hashes by PHP's bcrypt (`support/laravel_encrypt.php`): everything the import
//! needs is read, the daemon tokens and TOTP secret decrypt to what PHP encrypted,
//! inherited eggs are resolved into documents the egg importer takes; a wrong `APP_KEY`,
//! a wrong password, a login without rights, a closed port and a host the outbound guard
//! refuses each give their own error. The panel's own database is not involved, so these
//! run once, not on both engines.

use std::time::Instant;

use shardlyn_net::outbound::Outbound;
use shardlyn_panel::pterodactyl::database::{DbConnection, read};
use shardlyn_panel::pterodactyl::laravel;
use shardlyn_panel::pterodactyl::model::{Snapshot, SourceError};
use shardlyn_tests::loopback_allow;
use shardlyn_tests::mariadb::{NO_RIGHTS_USER, PteroDb, php, random_app_key};

fn guard() -> Outbound {
    Outbound::new(loopback_allow()).expect("loopback allow list")
}

fn connection(db: &PteroDb) -> DbConnection {
    serde_json::from_value(db.connection()).expect("DbConnection from the test database")
}

async fn read_sample(db: &PteroDb) -> Snapshot {
    read(&guard(), &connection(db), &db.app_key)
        .await
        .expect("database mode reads the sample")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn laravel_payloads_made_by_php_decrypt() {
    let key = random_app_key();
    let values = [
        "JBSWY3DPEHPK3PXP",
        "",
        "héllo wörld ✓ with \"quotes\" and ; semicolons",
        &"x".repeat(1000),
    ];
    let made = php(&key, &values, &values, &[]).await;
    for (i, v) in values.iter().enumerate() {
        assert_eq!(
            laravel::decrypt_string(&key, &made.encrypt[i]).unwrap(),
            *v,
            "encrypt() #{i}"
        );
        assert_eq!(
            laravel::decrypt_string(&key, &made.encrypt_string[i]).unwrap(),
            *v,
            "encryptString() #{i}"
        );
        // encrypt() serializes: the raw plaintext is PHP's `s:N:"...";`.
        let raw = laravel::decrypt(&key, &made.encrypt[i]).unwrap();
        assert_eq!(raw, format!("s:{}:\"{v}\";", v.len()).into_bytes());
    }
    let other = random_app_key();
    assert_eq!(
        laravel::decrypt(&other, &made.encrypt[0]),
        Err(laravel::LaravelError::Mac)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_mode_reads_a_pterodactyl_panel() {
    let db = PteroDb::start().await;
    let sample = db.load_sample().await;
    let snap = read_sample(&db).await;

    let counts = snap.counts();
    assert_eq!(
        (
            counts.locations,
            counts.nodes,
            counts.eggs,
            counts.users,
            counts.servers,
            counts.subusers,
            counts.schedules
        ),
        (1, 2, 2, 3, 3, 1, 2),
        "{counts:?}"
    );
    assert_eq!(snap.locations[0].long, "Falkenstein, DE");

    // Daemon tokens: what PHP's encrypter was given.
    for (id, token_id, token) in &sample.node_tokens {
        let node = snap.nodes.iter().find(|n| n.id == *id).expect("node");
        assert_eq!(node.daemon_token.as_deref(), Some(token.as_str()));
        assert_eq!(node.daemon_token_id.as_deref(), Some(token_id.as_str()));
        assert_eq!(node.daemon_listen, 8080);
    }
    assert_eq!(snap.nodes[1].daemon_sftp, 2023);
    assert_eq!(sample.token(1).len(), 64);

    // Users: bcrypt hashes carried as stored, the confirmed TOTP secret decrypted, the
    // unconfirmed one left behind.
    for (id, email, _password, hash) in &sample.passwords {
        let user = snap.users.iter().find(|u| u.id == *id).expect("user");
        assert_eq!(&user.email, email);
        assert_eq!(user.password_hash.as_deref(), Some(hash.as_str()));
        assert!(hash.starts_with("$2y$10$"), "{hash}");
    }
    let root = snap.users.iter().find(|u| u.id == 1).expect("root");
    assert!(root.root_admin && root.use_totp);
    assert_eq!(
        root.totp_secret.as_deref(),
        Some(sample.totp_secret.as_str())
    );
    let bob = snap
        .users
        .iter()
        .find(|u| u.id == sample.unconfirmed_totp_user)
        .expect("bob");
    assert!(!bob.root_admin && !bob.use_totp);
    assert_eq!(bob.totp_secret, None);

    // Eggs: Forge takes Paper's config and install script, keeps its own startup, and its
    // 1.x list of images became a map; both documents import.
    let paper = snap.eggs.iter().find(|e| e.id == 1).expect("paper");
    let forge = snap.eggs.iter().find(|e| e.id == 2).expect("forge");
    assert_eq!(paper.nest_name, "Minecraft");
    assert_eq!(forge.ptdl["meta"]["version"], "PTDL_v2");
    assert_eq!(forge.ptdl["config"]["files"], paper.ptdl["config"]["files"]);
    assert_eq!(
        forge.ptdl["config"]["startup"],
        paper.ptdl["config"]["startup"]
    );
    assert_eq!(forge.ptdl["config"]["stop"], "stop");
    assert_eq!(
        forge.ptdl["scripts"]["installation"]["script"],
        paper.ptdl["scripts"]["installation"]["script"]
    );
    assert_eq!(forge.ptdl["scripts"]["installation"]["entrypoint"], "bash");
    assert_eq!(forge.ptdl["startup"], "java -jar {{SERVER_JARFILE}} nogui");
    assert_eq!(
        forge.ptdl["docker_images"],
        serde_json::json!({"ghcr.io/pterodactyl/yolks:java_17": "ghcr.io/pterodactyl/yolks:java_17"})
    );
    for egg in &snap.eggs {
        let parsed = shardlyn_panel::workloads::input::parse_egg_text(&egg.ptdl.to_string())
            .unwrap_or_else(|e| panic!("egg {} does not import: {e:?}", egg.name));
        assert_eq!(parsed.config.files.len(), 1, "{}", egg.name);
        assert!(
            parsed.install.script.contains("installing paper"),
            "{}",
            egg.name
        );
    }
    let paper_egg =
        shardlyn_panel::workloads::input::parse_egg_text(&paper.ptdl.to_string()).unwrap();
    assert_eq!(paper_egg.images.len(), 2);
    assert_eq!(paper_egg.features, ["eula", "java_version"]);
    assert_eq!(paper_egg.variables.len(), 2);

    // Servers: limits, allocations (primary marked), variables set or defaulted.
    let s1 = snap.servers.iter().find(|s| s.id == 1).expect("server 1");
    assert_eq!(s1.uuid, sample.servers[0].1);
    assert_eq!(s1.identifier, &sample.servers[0].1[..8]);
    assert_eq!((s1.owner_id, s1.node_id, s1.egg_id), (2, 1, 1));
    assert_eq!((s1.memory_mb, s1.disk_mb, s1.cpu), (4096, 10240, 100));
    assert_eq!(s1.threads.as_deref(), Some("0-1"));
    assert_eq!(s1.backup_limit, 2);
    assert!(!s1.suspended);
    assert_eq!(s1.allocations.len(), 2);
    let primary: Vec<_> = s1.allocations.iter().filter(|a| a.primary).collect();
    assert_eq!(primary.len(), 1);
    assert_eq!(primary[0].port, 25565);
    assert_eq!(primary[0].alias.as_deref(), Some("mc.example.com"));
    assert_eq!(s1.variables["SERVER_JARFILE"], "paper-1.20.4.jar");
    assert_eq!(s1.variables["MINECRAFT_VERSION"], "latest");
    let s2 = snap.servers.iter().find(|s| s.id == 2).expect("server 2");
    assert!(s2.suspended && s2.oom_disabled);
    assert_eq!(s2.status.as_deref(), Some("suspended"));
    assert_eq!(s2.variables.len(), 1);
    assert_eq!(
        s2.variables["SERVER_JARFILE"], "",
        "a value set to empty stays empty"
    );
    let s3 = snap.servers.iter().find(|s| s.id == 3).expect("server 3");
    assert_eq!(s3.variables["MINECRAFT_VERSION"], "1.20.1");
    assert_eq!(s3.variables["SERVER_JARFILE"], "server.jar");
    assert!(
        snap.servers
            .iter()
            .all(|s| s.allocations.iter().all(|a| a.port != 25567))
    );

    // Subusers and schedules, tasks in sequence.
    assert_eq!(snap.subusers[0].user_id, 3);
    assert_eq!(snap.subusers[0].server_id, 1);
    assert_eq!(
        snap.subusers[0].permissions,
        ["control.console", "control.start", "file.read"]
    );
    let nightly = snap.schedules.iter().find(|s| s.id == 1).expect("schedule");
    assert!(nightly.is_active && nightly.only_when_online);
    assert_eq!(
        (nightly.cron_minute.as_str(), nightly.cron_hour.as_str()),
        ("0", "4")
    );
    let seq: Vec<_> = nightly
        .tasks
        .iter()
        .map(|t| (t.sequence_id, t.action.as_str(), t.payload.as_str()))
        .collect();
    assert_eq!(
        seq,
        [
            (1, "command", "say Restarting in 60 seconds"),
            (2, "power", "restart"),
            (3, "power", "start")
        ]
    );
    assert!(nightly.tasks[0].continue_on_failure);
    assert_eq!(nightly.tasks[1].time_offset, 60);
    let weekly = snap.schedules.iter().find(|s| s.id == 2).expect("schedule");
    assert!(!weekly.is_active);
    assert_eq!(weekly.tasks[0].action, "backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_app_key_or_login_is_refused_with_its_reason() {
    let db = PteroDb::start().await;
    db.load_sample().await;

    let wrong = random_app_key();
    let err = read(&guard(), &connection(&db), &wrong).await.unwrap_err();
    assert!(matches!(err, SourceError::AppKey(_)), "{err:?}");
    assert!(err.to_string().contains("nodes.daemon_token"), "{err}");
    let err = read(&guard(), &connection(&db), "base64:bm90LTMyLWJ5dGVz")
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::AppKey(_)), "{err:?}");

    let mut bad = connection(&db);
    bad.password = "not-the-password".into();
    let err = read(&guard(), &bad, &db.app_key).await.unwrap_err();
    assert!(matches!(err, SourceError::Credentials(_)), "{err:?}");
    assert!(!format!("{bad:?}").contains("not-the-password"));

    let mut none = connection(&db);
    none.username = NO_RIGHTS_USER.into();
    let err = read(&guard(), &none, &db.app_key).await.unwrap_err();
    assert!(matches!(err, SourceError::Credentials(_)), "{err:?}");

    // SELECT on one table only: connecting works, reading does not.
    db.root_sql(&format!(
        "GRANT SELECT ON panel.users TO '{NO_RIGHTS_USER}'@'%';"
    ))
    .await;
    let err = read(&guard(), &none, &db.app_key).await.unwrap_err();
    assert!(
        matches!(err, SourceError::Protocol(_) | SourceError::Credentials(_)),
        "{err:?}"
    );

    // The read-only login reads; the key was only ever checked, never stored.
    read_sample(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_refused_host_is_unreachable() {
    let closed = shardlyn_tests::agent::free_port();
    let conn = DbConnection {
        host: "127.0.0.1".into(),
        port: closed,
        database: "panel".into(),
        username: "ptero_ro".into(),
        password: "x".into(),
    };
    let key = random_app_key();
    let err = read(&guard(), &conn, &key).await.unwrap_err();
    assert!(matches!(err, SourceError::Unreachable(_)), "{err:?}");

    // Loopback is refused by a guard that does not allow it: nothing is dialled.
    let strict = Outbound::new(Vec::new()).expect("empty allow list");
    let err = read(&strict, &conn, &key).await.unwrap_err();
    assert!(matches!(err, SourceError::Unreachable(_)), "{err:?}");
    assert!(err.to_string().contains("refusing"), "{err}");
}

/// Benchmark input for issue 20: the database side of importing 500 servers' records.
/// Reports the time and the number of queries the read sent (MariaDB's own counter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_500_servers_in_a_few_batched_queries() {
    let db = PteroDb::start().await;
    db.load_many(500).await;
    let selects = |out: String| -> i64 {
        out.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("Com_select")
    };
    let before = selects(db.root_sql("SHOW GLOBAL STATUS LIKE 'Com_select'").await);
    let started = Instant::now();
    let snap = read_sample(&db).await;
    let elapsed = started.elapsed();
    let after = selects(db.root_sql("SHOW GLOBAL STATUS LIKE 'Com_select'").await);
    // The status query itself counts once.
    let queries = after - before - 1;
    assert_eq!(snap.servers.len(), 503);
    assert_eq!(snap.users.len(), 3 + 100);
    assert_eq!(snap.schedules.len(), 2 + 100);
    // 1,004 allocations: the second page of that table was read too.
    assert!(snap.servers.iter().all(|s| !s.allocations.is_empty()));
    let allocations: usize = snap.servers.iter().map(|s| s.allocations.len()).sum();
    assert_eq!(allocations, 4 + 2 * 500);
    println!(
        "pterodactyl database read: {} servers in {} ms, {queries} SELECT queries",
        snap.servers.len(),
        elapsed.as_millis()
    );
    assert!(queries <= 25, "{queries} queries");
}
