//! `config.files` of real corpus eggs applied to small hand-written config files shaped
//! like the real ones (`tests/fixtures/config_files/`). The `find` maps are read from the
//! egg JSON in `shared/egg-corpus`, so these tests prove the real entries work.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use shardlyn_agent::instances::config_files::{Placeholders, apply};
use shardlyn_proto::instance::ConfigFileSpec;

/// Read at run time: a test binary built from another clone sharing the target
/// directory must read this clone's files.
fn crate_path(relative: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
        .join(relative)
}

/// An egg's `config.files` (a JSON string in PTDL_v2 exports, or an object).
fn egg_files(egg: &Path) -> Vec<ConfigFileSpec> {
    let text = fs::read_to_string(egg).unwrap_or_else(|e| panic!("{}: {e}", egg.display()));
    let egg_json: serde_json::Value = serde_json::from_str(&text).expect("egg json");
    let files = &egg_json["config"]["files"];
    let files: serde_json::Value = match files {
        serde_json::Value::String(s) => serde_json::from_str(s).expect("config.files json"),
        other => other.clone(),
    };
    let Some(files) = files.as_object() else {
        return Vec::new();
    };
    files
        .iter()
        .map(|(path, spec)| ConfigFileSpec {
            path: path.clone(),
            parser: spec["parser"].as_str().expect("parser").to_owned(),
            find: serde_json::from_value(spec["find"].clone()).expect("find"),
        })
        .collect()
}

fn corpus_egg(relative: &str) -> Vec<ConfigFileSpec> {
    egg_files(&crate_path("../../shared/egg-corpus").join(relative))
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn placeholders(env: &[(&str, &str)]) -> Placeholders {
    Placeholders {
        env: map(env),
        default_ip: "203.0.113.7".into(),
        default_port: 27000,
        memory_mb: 2048,
        config: map(&[("docker.interface", "172.18.0.1")]),
    }
}

/// A server root holding `fixture` copied to `dest`.
fn root_with(fixture: &str, dest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join(dest);
    fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
    fs::copy(
        crate_path("tests/fixtures/config_files").join(fixture),
        &target,
    )
    .expect("copy fixture");
    dir
}

fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn properties_paper_server_properties() {
    let files = corpus_egg("pterodactyl-panel/ptero-panel_egg-paper.json");
    assert_eq!(files[0].parser, "properties");
    let root = root_with("paper/server.properties", "server.properties");
    let path = root.path().join("server.properties");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");

    let messages = apply(root.path(), &files, &placeholders(&[]));
    assert!(messages.is_empty(), "{messages:?}");

    let expected = fs::read_to_string(
        crate_path("tests/fixtures/config_files").join("paper/server.properties"),
    )
    .expect("fixture")
    .replace("server-ip=\n", "server-ip=0.0.0.0\n")
    .replace("server-port=25565", "server-port=27000")
    .replace("query.port=25565", "query.port=27000");
    assert_eq!(read(root.path(), "server.properties"), expected);
    let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "permissions kept");
}

#[test]
fn yaml_bungeecord_wildcard_array_and_regex_condition() {
    let files = corpus_egg("pterodactyl-panel/ptero-panel_egg-bungeecord.json");
    assert_eq!(files[0].parser, "yaml");
    let root = root_with("bungeecord/config.yml", "config.yml");

    let messages = apply(root.path(), &files, &placeholders(&[]));
    assert!(messages.is_empty(), "{messages:?}");

    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&read(root.path(), "config.yml")).expect("valid yaml");
    let listener = &doc["listeners"][0];
    assert_eq!(listener["host"].as_str(), Some("0.0.0.0:27000"));
    // Was a number, stays a number.
    assert_eq!(listener["query_port"].as_u64(), Some(27000));
    assert_eq!(listener["query_enabled"].as_bool(), Some(false));
    let servers = &doc["servers"];
    // Local addresses point at the Docker interface, keeping their port...
    assert_eq!(
        servers["lobby"]["address"].as_str(),
        Some("172.18.0.1:25565")
    );
    assert_eq!(
        servers["survival"]["address"].as_str(),
        Some("172.18.0.1:25566")
    );
    assert_eq!(servers["hub"]["address"].as_str(), Some("172.18.0.1"));
    // ...and a real remote host does not match the regex, so it is left alone.
    assert_eq!(
        servers["remote"]["address"].as_str(),
        Some("play.example.com:25565")
    );
    assert_eq!(servers["remote"]["restricted"].as_bool(), Some(true));
    // Key order is kept.
    let keys: Vec<_> = doc
        .as_mapping()
        .expect("map")
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "server_connect_timeout",
            "online_mode",
            "player_limit",
            "permissions",
            "servers",
            "listeners",
            "ip_forward"
        ]
    );
}

#[test]
fn yml_gomint_alias() {
    let files = corpus_egg("game_eggs/minecraft/bedrock/gomint/egg-go-mint.json");
    assert_eq!(files[0].parser, "yml");
    let root = tempfile::tempdir().expect("tempdir");
    fs::write(
        root.path().join("server.yml"),
        "listener:\n  port: 19132\n  ip: 0.0.0.0\n",
    )
    .expect("write");
    let messages = apply(root.path(), &files, &placeholders(&[]));
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(
        read(root.path(), "server.yml"),
        "listener:\n  port: 27000\n  ip: 0.0.0.0\n"
    );
}

#[test]
fn json_arma_reforger_keeps_types_and_layout() {
    let files = corpus_egg("game_eggs/steamcmd_servers/arma/arma_reforger/egg-arma-reforger.json");
    assert_eq!(files[0].parser, "json");
    let root = root_with("arma_reforger/config.json", "config.json");
    let env = [
        ("SERVER_NAME", "Ünïcode \"quoted\" server"),
        ("SERVER_PASS", "1234"),
        ("ADMIN_PASS", "hunter2"),
        ("SCENARIO_ID", "{59AD59368755F41A}Missions/21_GM_Eden.conf"),
        ("MAX_PLAYERS", "64"),
    ];

    let messages = apply(root.path(), &files, &placeholders(&env));
    assert!(messages.is_empty(), "{messages:?}");

    let text = read(root.path(), "config.json");
    assert!(
        text.starts_with("{\n    \"bindAddress\": \"0.0.0.0\",\n    \"bindPort\": 27000,"),
        "{text}"
    );
    let doc: serde_json::Value = serde_json::from_str(&text).expect("valid json");
    assert_eq!(doc["publicAddress"], "203.0.113.7");
    assert_eq!(doc["publicPort"], 27000);
    assert_eq!(doc["a2s"]["port"], 17777);
    let game = &doc["game"];
    assert_eq!(game["name"], "Ünïcode \"quoted\" server");
    // A numeric password stays a string because the file had a string there.
    assert_eq!(game["password"], "1234");
    assert_eq!(game["passwordAdmin"], "hunter2");
    assert_eq!(game["maxPlayers"], 64);
    assert_eq!(
        game["scenarioId"],
        "{59AD59368755F41A}Missions/21_GM_Eden.conf"
    );
    // The egg's own `true` is a JSON boolean.
    assert_eq!(game["gameProperties"]["fastValidation"], true);
    assert_eq!(game["gameProperties"]["battlEye"], true);
    assert_eq!(game["mods"], serde_json::json!([]));
}

#[test]
fn ini_openttd_sections_and_numeric_find_value() {
    let files = corpus_egg("game_eggs/tycoon_games/openttd/egg-open-t-t-d-server.json");
    assert_eq!(files[0].parser, "ini");
    let root = root_with("openttd/openttd.cfg", "openttd.cfg");
    let env = [("srv_name", "My OpenTTD"), ("srv_advertise", "true")];

    let messages = apply(root.path(), &files, &placeholders(&env));
    assert!(messages.is_empty(), "{messages:?}");

    let expected =
        fs::read_to_string(crate_path("tests/fixtures/config_files").join("openttd/openttd.cfg"))
            .expect("fixture")
            .replace("server_port = 3979", "server_port = 27000")
            .replace("server_name = Unnamed Server", "server_name = My OpenTTD")
            .replace("lan_internet = 1", "lan_internet = 0")
            .replace("server_advertise = false", "server_advertise = true");
    assert_eq!(read(root.path(), "openttd.cfg"), expected);
}

#[test]
fn ini_humanitz_bracketed_sections_crlf_and_added_keys() {
    let files = corpus_egg("game_eggs/steamcmd_servers/humanitz/egg-humanit-z.json");
    let root = root_with(
        "humanitz/GameServerSettings.ini",
        "TSSGame/GameServerSettings.ini",
    );
    let env = [
        ("SERVER_NAME", "Zeds"),
        ("MAX_PLAYERS", "32"),
        ("PVP", "1"),
        ("DAY_DUR", "60"),
    ];

    let messages = apply(root.path(), &files, &placeholders(&env));
    assert!(messages.is_empty(), "{messages:?}");

    let text = read(root.path(), "TSSGame/GameServerSettings.ini");
    assert!(
        text.starts_with("[Host Settings]\r\nServerName=Zeds\r\nPassword=\r\nMaxPlayers=32\r\n"),
        "{text}"
    );
    assert!(
        text.contains("[World Settings]\r\nPVP=1\r\nDayDur=60\r\n"),
        "{text}"
    );
    // Keys the file lacked are added inside their own section, before the next one.
    let world = text.find("[World Settings]").expect("world");
    let extra = text.find("[Extra]").expect("extra");
    let host_added = text.find("OnlyAllowedPlayers=").expect("added host key");
    let world_added = text.find("FakeBuildingCleanup=").expect("added world key");
    assert!(host_added < world, "{text}");
    assert!(world < world_added && world_added < extra, "{text}");
    assert!(text.ends_with("[Extra]\r\nKeep=me\r\n"), "{text}");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "line endings stay CRLF"
    );
}

#[test]
fn xml_space_engineers_dotted_paths() {
    let files =
        corpus_egg("game_eggs/steamcmd_servers/space_engineers/default/egg-space-engineers.json");
    assert!(files.iter().all(|f| f.parser == "xml"));
    let root = root_with(
        "space_engineers/SpaceEngineers-Dedicated.cfg",
        "config/SpaceEngineers-Dedicated.cfg",
    );
    let env = [
        ("SERVER_MODE", "Creative"),
        ("MAX_PLAYERS", "8"),
        ("SAVE_INTERVAL", "10"),
        ("SAVE_ENABLED", "true"),
        ("EXPERIMENTAL_ENABLED", "false"),
        ("INGAMESCRIPTS_ENABLED", "true"),
        ("WORLD_NAME", "World"),
        ("STEAM_PORT", "8767"),
        ("SERVER_NAME", "Engineers & Co"),
        ("SERVER_DESC", "<fun>"),
        ("REMOTEAPI_ENABLE", "false"),
        ("REMOTEAPI_PORT", "8080"),
    ];

    let messages = apply(root.path(), &files, &placeholders(&env));
    assert!(messages.is_empty(), "{messages:?}");

    let text = read(root.path(), "config/SpaceEngineers-Dedicated.cfg");
    for expected in [
        "<?xml version=\"1.0\"?>\n<MyConfigDedicated xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"",
        "    <GameMode>Creative</GameMode>\n    <MaxPlayers>8</MaxPlayers>\n    <AutoSaveInMinutes>10</AutoSaveInMinutes>",
        // Added where it belongs, indented like its siblings.
        "    <ExperimentalMode>false</ExperimentalMode>\n    <EnableIngameScripts>true</EnableIngameScripts>\n  </SessionSettings>",
        "<!-- the world to load -->",
        "<LoadWorld>Z:\\home\\container\\config\\Saves\\World\\Sandbox.sbc</LoadWorld>",
        "<ServerPort>27000</ServerPort>",
        "<ServerName>Engineers &amp; Co</ServerName>",
        "<ServerDescription>&lt;fun&gt;</ServerDescription>",
        "<RemoteApiPort>8080</RemoteApiPort>\n</MyConfigDedicated>\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // The egg's other two files did not exist: they are created with the key's root.
    let sandbox = read(root.path(), "config/Saves/World/Sandbox.sbc");
    assert!(
        sandbox.starts_with(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<MyObjectBuilder_Checkpoint>\n  <Settings>\n    <AutoSaveInMinutes>10</AutoSaveInMinutes>\n"
        ),
        "{sandbox}"
    );
    assert!(
        sandbox.contains("    <GameMode>Creative</GameMode>\n"),
        "{sandbox}"
    );
}

#[test]
fn xml_ragecoop_missing_file_is_created() {
    let files = corpus_egg("game_eggs/gta/ragecoop/egg-rage-c-o-o-p.json");
    let root = tempfile::tempdir().expect("tempdir");
    let messages = apply(root.path(), &files, &placeholders(&[]));
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(
        read(root.path(), "Settings.xml"),
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Settings>\n  <Port>27000</Port>\n</Settings>\n"
    );
}

#[test]
fn file_postgres_line_prefixes() {
    let files = corpus_egg("database/sql/postgres/egg-postgres14.json");
    assert_eq!(files[0].parser, "file");
    let root = root_with("postgres/postgresql.conf", "postgres_db/postgresql.conf");

    let messages = apply(root.path(), &files, &placeholders(&[]));
    assert!(messages.is_empty(), "{messages:?}");

    let expected = fs::read_to_string(
        crate_path("tests/fixtures/config_files").join("postgres/postgresql.conf"),
    )
    .expect("fixture")
    .replace(
        "#port = 5432\t\t\t\t# (change requires restart)",
        "port = 27000",
    )
    .replace(
        "#unix_socket_directories = '/var/run/postgresql'\t# comma-separated list of directories",
        "unix_socket_directories = '/home/container/postgres_db/run/'",
    )
    .replace(
        "#external_pid_file = ''\t\t\t# write an extra PID file",
        "external_pid_file = '/home/container/postgres_db/run/postgres.pid'",
    );
    assert_eq!(read(root.path(), "postgres_db/postgresql.conf"), expected);
}

#[test]
fn missing_files_are_created_except_for_the_file_parser() {
    let root = tempfile::tempdir().expect("tempdir");
    let paper = corpus_egg("pterodactyl-panel/ptero-panel_egg-vanilla-minecraft.json");
    let messages = apply(root.path(), &paper, &placeholders(&[]));
    assert!(messages.is_empty(), "{messages:?}");
    assert_eq!(
        read(root.path(), "server.properties"),
        "query.port=27000\nserver-ip=0.0.0.0\nserver-port=27000\n"
    );

    let postgres = corpus_egg("database/sql/postgres/egg-postgres14.json");
    let messages = apply(root.path(), &postgres, &placeholders(&[]));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with("postgres_db/postgresql.conf: file does not exist"),
        "{messages:?}"
    );
    assert!(
        !root.path().join("postgres_db").exists(),
        "nothing created for `file`"
    );
}

#[test]
fn traversal_and_symlinks_are_refused() {
    let outside = tempfile::tempdir().expect("outside");
    let victim = outside.path().join("victim.properties");
    fs::write(&victim, "secret=1\n").expect("write");
    let root = tempfile::tempdir().expect("root");
    std::os::unix::fs::symlink(&victim, root.path().join("server.properties")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), root.path().join("cfg")).expect("symlink");
    let spec = |path: &str| ConfigFileSpec {
        path: path.into(),
        parser: "properties".into(),
        find: [("secret".to_owned(), serde_json::json!("pwned"))].into(),
    };
    let depth = Path::new(outside.path()).components().count();
    let escape = format!("{}{}", "../".repeat(depth + 2), victim.display());
    let files = vec![
        spec("server.properties"),
        spec("cfg/victim.properties"),
        spec("cfg/new/dir.properties"),
        spec("../victim.properties"),
        spec(&escape),
    ];
    let messages = apply(root.path(), &files, &placeholders(&[]));
    assert_eq!(messages.len(), files.len(), "{messages:?}");
    for message in &messages {
        assert!(message.contains("refusing unsafe path"), "{message}");
    }
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "secret=1\n");
    assert!(!outside.path().join("new").exists());
    let outside_entries: Vec<PathBuf> = fs::read_dir(outside.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(outside_entries, vec![victim]);
}

#[test]
fn malformed_files_give_a_message_and_stay_untouched() {
    let root = tempfile::tempdir().expect("tempdir");
    let broken_yaml = "listeners:\n- host: [unclosed\n  query_port: 1\n";
    fs::write(root.path().join("config.yml"), broken_yaml).expect("write");
    let files = corpus_egg("pterodactyl-panel/ptero-panel_egg-bungeecord.json");
    let messages = apply(root.path(), &files, &placeholders(&[]));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with("config.yml: malformed yaml file"),
        "{messages:?}"
    );
    assert_eq!(read(root.path(), "config.yml"), broken_yaml);

    fs::write(root.path().join("config.json"), "{\"bindPort\": 1,,}").expect("write");
    fs::write(
        root.path().join("not-utf8.properties"),
        [0xff, 0xfe, b'=', b'\n'],
    )
    .expect("write");
    let mut files =
        corpus_egg("game_eggs/steamcmd_servers/arma/arma_reforger/egg-arma-reforger.json");
    files.push(ConfigFileSpec {
        path: "not-utf8.properties".into(),
        parser: "properties".into(),
        find: [("a".to_owned(), serde_json::json!("b"))].into(),
    });
    let messages = apply(root.path(), &files, &placeholders(&[]));
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].starts_with("config.json: malformed json file"),
        "{messages:?}"
    );
    assert!(messages[1].contains("not valid UTF-8"), "{messages:?}");
    assert_eq!(read(root.path(), "config.json"), "{\"bindPort\": 1,,}");
}

/// Every egg in the corpus: applied to an empty server directory it creates its files
/// (or reports a missing `file`-parser file), and applying it again changes nothing.
#[test]
fn every_corpus_egg_applies_cleanly_and_idempotently() {
    let mut eggs = Vec::new();
    collect_json(&crate_path("../../shared/egg-corpus"), &mut eggs);
    let mut applied = 0;
    for egg in eggs {
        let files = egg_files(&egg);
        if files.is_empty() {
            continue;
        }
        applied += 1;
        let root = tempfile::tempdir().expect("tempdir");
        let env = [("SERVER_NAME", "Name"), ("MAX_PLAYERS", "10")];
        let first = apply(root.path(), &files, &placeholders(&env));
        let text_files = files.iter().filter(|f| f.parser == "file").count();
        assert_eq!(first.len(), text_files, "{}: {first:?}", egg.display());
        assert!(
            first.iter().all(|m| m.contains("file does not exist")),
            "{}: {first:?}",
            egg.display()
        );
        let snapshot = snapshot(root.path());
        let second = apply(root.path(), &files, &placeholders(&env));
        assert_eq!(first, second, "{}", egg.display());
        assert_eq!(
            snapshot,
            self::snapshot(root.path()),
            "{} not idempotent",
            egg.display()
        );
    }
    assert!(applied > 150, "only {applied} eggs with config.files found");
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("corpus dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_json(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            let is_egg = fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .is_some_and(|v| v["meta"]["version"] == "PTDL_v2");
            if is_egg {
                out.push(path);
            }
        }
    }
    out.sort();
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).expect("read");
            (p, text)
        })
        .collect()
}
