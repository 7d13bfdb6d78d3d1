//! Egg import/export against the real-egg corpus in `shared/egg-corpus`, plus PTDL_v1,
//! malformed input and fuzzing of `parse_egg`.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};
use shardlyn_proto::egg::{
    Egg, EggErrorKind, Parser, StopCommand, export_egg, export_egg_json, parse_egg,
};

const CORPUS_EGGS: usize = 278;
const CORPUS_NON_EGGS: usize = 8;

fn corpus_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
        .join("../../shared/egg-corpus");
    assert!(
        dir.is_dir(),
        "egg corpus not found at {} (expected <workspace>/../shared/egg-corpus)",
        dir.display()
    );
    dir
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// Every egg of the corpus, parsed, with its path; asserts the egg/non-egg counts.
fn corpus() -> Vec<(PathBuf, Egg)> {
    let mut files = Vec::new();
    json_files(&corpus_dir(), &mut files);
    files.sort();
    let mut eggs = Vec::new();
    let mut non_eggs = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        match parse_egg(&text) {
            Ok(egg) => eggs.push((path, egg)),
            Err(e) if e.kind == EggErrorKind::NotAnEgg => non_eggs += 1,
            Err(e) => panic!("{} failed to import: {e}", path.display()),
        }
    }
    assert_eq!(eggs.len(), CORPUS_EGGS, "eggs parsed");
    assert_eq!(non_eggs, CORPUS_NON_EGGS, "non-egg .json files skipped");
    eggs
}

#[test]
fn every_corpus_egg_imports() {
    let eggs = corpus();
    let parsers: usize = eggs.iter().map(|(_, e)| e.config.files.len()).sum();
    assert!(parsers > 100, "config files were decoded");
    let signals = eggs
        .iter()
        .filter(|(_, e)| matches!(e.config.stop, Some(StopCommand::Signal(_))))
        .count();
    assert!(signals > 100 && signals < CORPUS_EGGS);
    assert!(eggs.iter().all(|(_, e)| !e.images.is_empty()));
}

#[test]
fn every_corpus_egg_round_trips() {
    for (path, egg) in corpus() {
        let text = export_egg_json(&egg);
        let again = parse_egg(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(again, egg, "{} (ordered JSON export)", path.display());

        // A `Value` has sorted object keys, so only the image order may differ.
        let value = export_egg(&egg);
        assert_eq!(value["meta"]["version"], "PTDL_v2");
        assert!(value["config"]["files"].is_string());
        let mut again = parse_egg(&value.to_string()).expect("value export imports");
        let mut expected = egg.clone();
        again.images.sort_by(|a, b| a.label.cmp(&b.label));
        expected.images.sort_by(|a, b| a.label.cmp(&b.label));
        assert_eq!(again, expected, "{} (Value export)", path.display());
    }
}

/// Corpus defaults that fail their own rules. Laravel rejects them too, so these are egg bugs
/// (placeholders the admin must replace, or a case mismatch), not validator bugs.
const KNOWN_BAD_DEFAULTS: &[(&str, &str, &str)] = &[
    // `required|digits_between:17,18`: a placeholder asking for a Discord user id.
    ("egg-j-music-bot.json", "BOT_OWNER", "digits_between"),
    // `in:,Moon,Mars,…` with default `moon`: `in` is case-sensitive in Laravel.
    ("egg-stationeers--bep-in-ex.json", "WORLD_NAME", "in"),
    ("egg-stationeers.json", "WORLD_NAME", "in"),
];

#[test]
fn corpus_defaults_satisfy_their_own_rules() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (path, egg) in corpus() {
        for var in &egg.variables {
            if var.default_value.is_empty() {
                continue;
            }
            checked += 1;
            if let Err(e) = var.validate(Some(&var.default_value)) {
                let file = path
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or_default();
                assert_eq!(e.field, var.env_variable);
                assert!(e.message.contains(&var.name), "{}", e.message);
                failures.push((
                    file.to_owned(),
                    var.env_variable.clone(),
                    e.rule.clone(),
                    e.message,
                ));
            }
        }
    }
    assert!(checked > 1000, "checked {checked} defaults");
    let got: Vec<(&str, &str, &str)> = failures
        .iter()
        .map(|(f, v, r, _)| (f.as_str(), v.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        got, KNOWN_BAD_DEFAULTS,
        "defaults failing their rules: {failures:#?}"
    );
}

const V1_EGG: &str = r##"{
    "_comment": "DO NOT EDIT: FILE GENERATED AUTOMATICALLY BY PTERODACTYL PANEL - PTERODACTYL.IO",
    "meta": {"version": "PTDL_v1"},
    "exported_at": "2019-12-01T12:00:00+00:00",
    "name": "Vanilla Minecraft",
    "author": "support@pterodactyl.io",
    "description": "Minecraft is a game about placing blocks.",
    "image": "quay.io/pterodactyl/core:java",
    "startup": "java -Xms128M -Xmx{{SERVER_MEMORY}}M -jar {{SERVER_JARFILE}}",
    "config": {
        "files": "{\r\n    \"server.properties\": {\r\n        \"parser\": \"properties\",\r\n        \"find\": {\r\n            \"server-ip\": \"0.0.0.0\",\r\n            \"server-port\": \"{{server.build.default.port}}\"\r\n        }\r\n    }\r\n}",
        "startup": "{\r\n    \"done\": \")! For help, type \",\r\n    \"userInteraction\": [\r\n        \"Go to eula.txt for more info.\"\r\n    ]\r\n}",
        "logs": "{\r\n    \"custom\": false,\r\n    \"location\": \"logs/latest.log\"\r\n}",
        "stop": "stop"
    },
    "scripts": {
        "installation": {
            "script": "#!/bin/ash\ncd /mnt/server",
            "container": "alpine:3.10",
            "entrypoint": "ash"
        }
    },
    "variables": [
        {
            "name": "Server Jar File",
            "description": "The name of the server jarfile to run the server with.",
            "env_variable": "SERVER_JARFILE",
            "default_value": "server.jar",
            "user_viewable": 1,
            "user_editable": 1,
            "rules": "required|regex:/^([\\w\\d._-]+)(\\.jar)$/"
        },
        {
            "name": "Max Players",
            "description": "",
            "env_variable": "MAX_PLAYERS",
            "default_value": 20,
            "user_viewable": "1",
            "user_editable": 0,
            "rules": "required|integer|between:1,100"
        },
        {
            "name": "Seed",
            "description": null,
            "env_variable": "LEVEL_SEED",
            "default_value": null,
            "user_viewable": true,
            "user_editable": false,
            "rules": "nullable|string"
        }
    ]
}"##;

#[test]
fn ptdl_v1_egg_imports() {
    let egg = parse_egg(V1_EGG).expect("v1 egg imports");
    assert_eq!(egg.images.len(), 1);
    assert_eq!(egg.images[0].image, "quay.io/pterodactyl/core:java");
    assert_eq!(egg.config.files.len(), 1);
    let file = &egg.config.files[0];
    assert_eq!(
        (file.path.as_str(), &file.parser),
        ("server.properties", &Parser::Properties)
    );
    assert_eq!(
        file.find["server-port"],
        json!("{{server.build.default.port}}")
    );
    assert_eq!(
        egg.config.startup.done,
        vec![")! For help, type ".to_owned()]
    );
    assert_eq!(egg.config.startup.user_interaction.len(), 1);
    assert_eq!(egg.config.logs.location.as_deref(), Some("logs/latest.log"));
    assert_eq!(
        egg.config.stop,
        Some(StopCommand::Command("stop".to_owned()))
    );
    assert_eq!(egg.install.entrypoint, "ash");
    let [jar, players, seed] = egg.variables.as_slice() else {
        panic!("three variables");
    };
    assert!(jar.user_viewable && jar.user_editable);
    assert_eq!(players.default_value, "20");
    assert!(players.user_viewable && !players.user_editable);
    assert_eq!(
        (seed.default_value.as_str(), seed.description.as_str()),
        ("", "")
    );
    assert_eq!(jar.field_type, "text");
    assert!(jar.validate(Some("paper.jar")).is_ok());
    assert!(jar.validate(Some("paper.zip")).is_err());
    assert!(seed.validate(Some("")).is_ok());

    let exported = export_egg(&egg);
    assert_eq!(exported["meta"]["version"], "PTDL_v2");
    assert_eq!(
        exported["docker_images"],
        json!({"quay.io/pterodactyl/core:java": "quay.io/pterodactyl/core:java"})
    );
    assert_eq!(parse_egg(&exported.to_string()).expect("re-imports"), egg);
}

#[test]
fn v1_images_list_and_signal_stop() {
    let mut doc: Value = serde_json::from_str(V1_EGG).expect("json");
    doc["images"] = json!(["a:1", "b:2"]);
    doc["config"]["stop"] = json!("^^C");
    let egg = parse_egg(&doc.to_string()).expect("imports");
    assert_eq!(egg.images.len(), 2);
    assert_eq!(egg.images[1].label, "b:2");
    assert_eq!(
        egg.config.stop.as_ref().and_then(StopCommand::signal_name),
        Some("SIGINT")
    );
    assert_eq!(StopCommand::from_egg("^X").signal_name(), None);
}

/// Applies `edit` to the v1 sample and returns the import error's field and message.
fn error_for(edit: impl FnOnce(&mut Value)) -> (String, String) {
    let mut doc: Value = serde_json::from_str(V1_EGG).expect("json");
    edit(&mut doc);
    let err = parse_egg(&doc.to_string()).expect_err("import fails");
    assert_eq!(err.kind, EggErrorKind::Invalid, "{err}");
    (err.field, err.message)
}

#[test]
fn bad_input_reports_the_field() {
    let err = parse_egg("{\n  \"meta\": ,\n}").expect_err("invalid JSON");
    assert_eq!(
        err.kind,
        EggErrorKind::Syntax {
            line: 2,
            column: 11
        }
    );
    assert!(err.message.contains("line 2"), "{}", err.message);

    let err = parse_egg(r#"{"meta": {}}"#).expect_err("no version");
    assert_eq!(
        (err.kind, err.field.as_str()),
        (EggErrorKind::UnsupportedVersion, "meta.version")
    );
    let err = parse_egg(r#"{"meta": {"version": "PTDL_v3"}}"#).expect_err("v3");
    assert!(err.message.contains("PTDL_v3"));
    let err = parse_egg(r#"{"token": "x"}"#).expect_err("not an egg");
    assert_eq!(err.kind, EggErrorKind::NotAnEgg);
    assert_eq!(
        parse_egg("[1]").expect_err("array").kind,
        EggErrorKind::NotAnEgg
    );

    type Edit = fn(&mut Value);
    let cases: &[(&str, &str, Edit)] = &[
        ("variables[1].env_variable", "required", |d| {
            d["variables"][1]["env_variable"] = Value::Null;
        }),
        ("variables[2].env_variable", "LEVEL-SEED", |d| {
            d["variables"][2]["env_variable"] = json!("LEVEL-SEED");
        }),
        ("variables[0].env_variable", "must be a string", |d| {
            d["variables"][0]["env_variable"] = json!(5);
        }),
        ("variables[1].rules", "unknown rule `frobnicate`", |d| {
            d["variables"][1]["rules"] = json!("required|frobnicate");
        }),
        ("variables[1].rules", "Max Players", |d| {
            d["variables"][1]["rules"] = json!("max:ten");
        }),
        ("variables[0].user_editable", "boolean", |d| {
            d["variables"][0]["user_editable"] = json!(7);
        }),
        ("variables[0].default_value", "found an array", |d| {
            d["variables"][0]["default_value"] = json!([1]);
        }),
        ("variables", "must be a list", |d| {
            d["variables"] = json!({});
        }),
        ("variables[0]", "must be an object", |d| {
            d["variables"][0] = json!("x");
        }),
        ("config.files", "not valid JSON", |d| {
            d["config"]["files"] = json!("{not json");
        }),
        ("config.files", "must encode a JSON object", |d| {
            d["config"]["files"] = json!("[]");
        }),
        ("config.files[\"a.yml\"].parser", "required", |d| {
            d["config"]["files"] = json!(r#"{"a.yml": {"find": {}}}"#);
        }),
        ("config.files[\"a.yml\"].find", "object", |d| {
            d["config"]["files"] = json!(r#"{"a.yml": {"parser": "yaml", "find": []}}"#);
        }),
        ("config.startup.done", "list of strings", |d| {
            d["config"]["startup"] = json!("{\"done\": 5}");
        }),
        ("config.logs", "JSON object", |d| {
            d["config"]["logs"] = json!(3);
        }),
        ("config.stop", "must be a string", |d| {
            d["config"]["stop"] = json!(["stop"]);
        }),
        ("config", "must be an object", |d| d["config"] = json!("x")),
        ("name", "required", |d| d["name"] = Value::Null),
        ("name", "must be a string", |d| d["name"] = json!(3)),
        ("features[0]", "must be a string", |d| {
            d["features"] = json!([1]);
        }),
        ("scripts.installation.script", "string", |d| {
            d["scripts"]["installation"]["script"] = json!(false);
        }),
        ("docker_images", "no Docker image", |d| {
            d["image"] = Value::Null;
        }),
        ("docker_images[\"Java\"]", "image name", |d| {
            d["docker_images"] = json!({"Java": 17});
        }),
        ("docker_images", "label", |d| {
            d["docker_images"] = json!(["a"]);
        }),
    ];
    for (field, needle, edit) in cases {
        let (got_field, message) = error_for(*edit);
        assert_eq!(got_field, *field, "{message}");
        assert!(
            message.contains(needle),
            "{field}: {message:?} lacks {needle:?}"
        );
    }
}

#[test]
fn export_keeps_image_and_file_order() {
    let mut doc: Value = serde_json::from_str(V1_EGG).expect("json");
    doc["docker_images"] = json!({"Java 8": "j:8", "Java 17": "j:17"});
    let text = doc.to_string().replace(
        r#""Java 17":"j:17","Java 8":"j:8""#,
        r#""Java 8":"j:8","Java 17":"j:17""#,
    );
    let egg = parse_egg(&text).expect("imports");
    assert_eq!(egg.images[0].label, "Java 8");
    let exported = export_egg_json(&egg);
    assert!(exported.find("Java 8").expect("8") < exported.find("Java 17").expect("17"));
    assert_eq!(parse_egg(&exported).expect("re-imports"), egg);
}

proptest! {
    #[test]
    fn parse_egg_never_panics(input in ".{0,200}") {
        let _ = parse_egg(&input);
    }

    #[test]
    fn parse_egg_never_panics_on_egg_like_json(
        version in prop_oneof![Just("PTDL_v1".to_owned()), Just("PTDL_v2".to_owned()), ".{0,8}"],
        files in ".{0,40}",
        rules in "[a-z_:|,0-9/()^$.*\\-]{0,40}",
        default in prop_oneof![Just(json!(null)), Just(json!(3)), ".{0,10}".prop_map(Value::from)],
    ) {
        let doc = json!({
            "meta": {"version": version},
            "name": "x",
            "docker_images": {"a": "b"},
            "config": {"files": files, "startup": files, "logs": "{}", "stop": "^C"},
            "variables": [{"name": "V", "env_variable": "V", "rules": rules, "default_value": default}],
        });
        if let Ok(egg) = parse_egg(&doc.to_string()) {
            let again = parse_egg(&export_egg_json(&egg)).expect("export re-imports");
            prop_assert_eq!(again, egg);
        }
    }
}
