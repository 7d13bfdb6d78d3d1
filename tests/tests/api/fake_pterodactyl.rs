//! The fake Pterodactyl Application API (`shardlyn_tests::fake_pterodactyl`), checked by
//! PyPI's `py-dactyl` (`tests/support/pydactyl_check.py`), and the panel's API-mode reader
//! (`shardlyn_panel::pterodactyl::api`) run against it: what it reads, how it pages,
//! inheritance and image shapes, and each way a source can fail.

use shardlyn_net::outbound::Outbound;
use shardlyn_panel::pterodactyl::api::{self, ApiRead};
use shardlyn_panel::pterodactyl::model::SourceError;
use shardlyn_panel::workloads::input::parse_egg_text;
use shardlyn_tests::fake_pterodactyl::{API_KEY, Dataset, FakePterodactyl};

fn venv_python() -> std::path::PathBuf {
    let home = std::env::var("HOME").expect("HOME");
    std::path::Path::new(&home).join(".cache/shardlyn/venv/bin/python")
}

/// Runs `pydactyl_check.py` with `args`; fails on a non-zero exit or an answer but "ok".
async fn pydactyl_check(args: Vec<String>) {
    let script = shardlyn_tests::crate_path("support/pydactyl_check.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(venv_python())
            .arg(script)
            .args(args)
            .output()
            .expect("the venv's python runs (scripts/dev-services installs py-dactyl)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "pydactyl_check.py failed:\n{stdout}\n{stderr}"
    );
}

fn loopback() -> Outbound {
    Outbound::new(shardlyn_tests::loopback_allow()).expect("allow list")
}

async fn read(fake: &FakePterodactyl) -> ApiRead {
    api::read_with_problems(&loopback(), &fake.url, API_KEY)
        .await
        .expect("the fake panel reads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_dactyl_reads_the_fake_panel_pages_it_and_is_refused_a_wrong_key() {
    let sample = FakePterodactyl::start(Dataset::sample()).await;
    pydactyl_check(vec!["sample".into(), sample.url.clone(), API_KEY.into()]).await;
    pydactyl_check(vec!["badkey".into(), sample.url.clone()]).await;

    let many = FakePterodactyl::start(Dataset::many(120)).await;
    pydactyl_check(vec![
        "many".into(),
        many.url.clone(),
        API_KEY.into(),
        "120".into(),
    ])
    .await;
}

#[tokio::test]
async fn read_takes_everything_the_application_api_gives() {
    let fake = FakePterodactyl::start(Dataset::sample()).await;
    let ApiRead { snapshot, problems } = read(&fake).await;
    assert!(problems.is_empty(), "{problems:?}");
    let counts = snapshot.counts();
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
        (2, 2, 3, 3, 4, 1, 0)
    );

    let node = &snapshot.nodes[0];
    assert_eq!(
        (node.fqdn.as_str(), node.daemon_sftp, node.location_id),
        ("wings1.example.com", 2022, 1)
    );
    assert!(!node.uuid.is_empty() && node.daemon_token.is_none());

    // Every egg is a document the workload importer takes.
    for egg in &snapshot.eggs {
        parse_egg_text(&egg.ptdl.to_string()).unwrap_or_else(|e| panic!("{e:?}: {:#}", egg.ptdl));
        assert_eq!((egg.nest_id, egg.nest_name.as_str()), (1, "Minecraft"));
    }
    let egg = |id: i64| {
        let e = snapshot.eggs.iter().find(|e| e.id == id).expect("egg");
        (
            e,
            parse_egg_text(&e.ptdl.to_string()).expect("importable egg"),
        )
    };
    // The 0.7 `docker_image` egg and the `docker_images` map egg.
    let (_, vanilla) = egg(1);
    assert_eq!(vanilla.images.len(), 1);
    assert_eq!(vanilla.images[0].image, "quay.io/pterodactyl/core:java");
    let (_, paper) = egg(2);
    let mut images: Vec<_> = paper
        .images
        .iter()
        .map(|i| (i.label.as_str(), i.image.as_str()))
        .collect();
    images.sort_unstable();
    assert_eq!(
        images,
        vec![
            ("Java 17", "ghcr.io/pterodactyl/yolks:java_17"),
            ("Java 21", "ghcr.io/pterodactyl/yolks:java_21")
        ]
    );
    // Purpur inherits its configuration from Paper and its script from Vanilla.
    let (purpur_raw, purpur) = egg(3);
    assert_eq!(purpur.config.files[0].path, "server.properties");
    assert_eq!(purpur.config.startup.done, paper.config.startup.done);
    assert_eq!(purpur.config.stop, paper.config.stop);
    assert!(
        purpur.install.script.contains("echo vanilla"),
        "{purpur_raw:?}"
    );
    assert_eq!(purpur.install.container, "alpine:3.4");
    assert_eq!(purpur.variables.len(), 2);

    let admin = &snapshot.users[0];
    assert!(admin.root_admin && !admin.use_totp && admin.password_hash.is_none());
    let bob = &snapshot.users[2];
    assert!(bob.use_totp && bob.totp_secret.is_none() && !bob.root_admin);
    assert_eq!(bob.email, "bob@example.com");

    let survival = snapshot
        .servers
        .iter()
        .find(|s| s.id == 2)
        .expect("server 2");
    assert_eq!(survival.identifier, &survival.uuid[..8]);
    assert_eq!(
        (survival.owner_id, survival.node_id, survival.egg_id),
        (2, 1, 2)
    );
    assert_eq!(
        (survival.memory_mb, survival.cpu, survival.backup_limit),
        (2048, 200, 3)
    );
    assert_eq!(survival.threads.as_deref(), Some("0-1"));
    assert_eq!(survival.variables["SERVER_JARFILE"], "paper.jar");
    assert_eq!(survival.variables["MINECRAFT_VERSION"], "1.21.1");
    assert_eq!(
        survival.variables["BUILD_NUMBER"], "latest",
        "the egg's default"
    );
    assert_eq!(survival.variables.len(), 3);
    let ports: Vec<_> = survival
        .allocations
        .iter()
        .map(|a| (a.port, a.primary, a.alias.as_deref()))
        .collect();
    assert_eq!(
        ports,
        vec![(25566, true, None), (25575, false, Some("mc.example.com"))]
    );
    let modded = snapshot
        .servers
        .iter()
        .find(|s| s.id == 4)
        .expect("server 4");
    assert!(modded.suspended && modded.status.as_deref() == Some("suspended"));
    let sub = &snapshot.subusers[0];
    assert_eq!((sub.server_id, sub.user_id), (2, 3));
    assert_eq!(
        sub.permissions,
        vec!["control.console", "control.start", "file.read"]
    );

    // It asked for the includes it reads.
    let log = fake.requests();
    assert!(
        log.iter()
            .any(|r| r.starts_with("/api/application/nests/1/eggs?")
                && r.contains("include=variables")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|r| r.starts_with("/api/application/servers?")
                && r.contains("include=allocations%2Cvariables%2Csubusers")),
        "{log:?}"
    );
}

#[tokio::test]
async fn read_pages_through_long_lists() {
    let fake = FakePterodactyl::start(Dataset::many(250)).await;
    let ApiRead { snapshot, problems } = read(&fake).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(snapshot.servers.len(), 250);
    assert_eq!(snapshot.users.len(), 51);
    assert_eq!(snapshot.subusers.len(), 25);
    let mut ids: Vec<_> = snapshot.servers.iter().map(|s| s.id).collect();
    ids.dedup();
    assert_eq!(ids, (1..=250).collect::<Vec<_>>());
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("/api/application/servers?"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    for (n, r) in pages.iter().enumerate() {
        assert!(r.contains(&format!("page={}&per_page=100", n + 1)), "{r}");
    }
}

#[tokio::test]
async fn an_egg_whose_parent_is_missing_or_loops_is_left_out_and_reported() {
    let fake = FakePterodactyl::start(Dataset::sample()).await;
    fake.edit(|d| {
        d.eggs[2].config_from = Some(99);
    });
    let ApiRead { snapshot, problems } = read(&fake).await;
    assert_eq!(
        snapshot.eggs.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("Purpur") && problems[0].contains("egg 99"),
        "{problems:?}"
    );
    // The server on it is still read; the importer reports it.
    assert!(snapshot.servers.iter().any(|s| s.egg_id == 3));

    fake.edit(|d| {
        d.eggs[2].config_from = Some(2);
        d.eggs[0].copy_script_from = Some(3);
    });
    let ApiRead { snapshot, problems } = read(&fake).await;
    assert_eq!(
        snapshot.eggs.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![2]
    );
    assert!(problems.iter().all(|p| p.contains("loops")), "{problems:?}");

    // `read` leaves them out the same way.
    let eggs = api::read(&loopback(), &fake.url, API_KEY)
        .await
        .expect("read")
        .eggs;
    assert_eq!(eggs.len(), 1);
}

#[tokio::test]
async fn a_wrong_key_or_a_missing_permission_is_a_credentials_error_naming_the_endpoint() {
    let fake = FakePterodactyl::start(Dataset::sample()).await;
    let err = api::read(&loopback(), &fake.url, "ptla_wrong")
        .await
        .expect_err("a wrong key");
    assert!(
        matches!(&err, SourceError::Credentials(m) if m.contains("GET /api/application/locations") && m.contains("401")),
        "{err:?}"
    );
    assert!(!err.to_string().contains("ptla_wrong"));

    fake.deny("/servers");
    let err = api::read(&loopback(), &fake.url, API_KEY)
        .await
        .expect_err("no servers permission");
    assert!(
        matches!(&err, SourceError::Credentials(m) if m.contains("/api/application/servers") && m.contains("403")),
        "{err:?}"
    );
    let err = api::read(&loopback(), &fake.url, "  ")
        .await
        .expect_err("empty key");
    assert!(matches!(err, SourceError::Credentials(_)), "{err:?}");
}

#[tokio::test]
async fn a_closed_port_or_a_refused_address_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let err = api::read(&loopback(), &format!("http://127.0.0.1:{port}"), API_KEY)
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, SourceError::Unreachable(_)), "{err:?}");

    // The outbound guard refuses loopback unless allowed.
    let fake = FakePterodactyl::start(Dataset::sample()).await;
    let err = api::read(&Outbound::default(), &fake.url, API_KEY)
        .await
        .expect_err("loopback refused");
    assert!(
        matches!(&err, SourceError::Unreachable(m) if m.contains("refusing")),
        "{err:?}"
    );
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());

    let err = api::read(&loopback(), "ftp://127.0.0.1/", API_KEY)
        .await
        .expect_err("not http");
    assert!(matches!(err, SourceError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn an_answer_that_is_not_the_application_api_is_a_protocol_error() {
    let fake = FakePterodactyl::start(Dataset::sample()).await;
    fake.set_garbage(true);
    let err = api::read(&loopback(), &fake.url, API_KEY)
        .await
        .expect_err("HTML");
    assert!(
        matches!(&err, SourceError::Protocol(m) if m.contains("did not answer JSON")),
        "{err:?}"
    );
    fake.set_garbage(false);

    // A path below the panel (not its address) answers 404.
    let err = api::read(&loopback(), &format!("{}/panel", fake.url), API_KEY)
        .await
        .expect_err("wrong path");
    assert!(matches!(err, SourceError::Protocol(_)), "{err:?}");

    // JSON, but not the Application API's envelope (another service on that address).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let other = axum::Router::new()
        .fallback(|| async { axum::Json(serde_json::json!({"status": "ok", "data": 1})) });
    let server = tokio::spawn(async move { axum::serve(listener, other).await });
    let err = api::read(&loopback(), &url, API_KEY)
        .await
        .expect_err("another service");
    assert!(
        matches!(&err, SourceError::Protocol(m) if m.contains("not answer a Pterodactyl list")),
        "{err:?}"
    );
    server.abort();
}
