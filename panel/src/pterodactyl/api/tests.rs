//! Unit tests of the API reader's parsing: list envelopes, lenient fields, egg
//! inheritance and image shapes, servers' variables and allocations. The reader against
//! a served API is tested in `tests/tests/api/fake_pterodactyl.rs`.

use serde_json::{Value, json};

use super::egg::{RawEgg, resolve};
use super::fields::Attrs;
use super::{list_envelope, server, subusers, user};
use crate::pterodactyl::model::SourceError;

fn raw(egg: &Value) -> RawEgg {
    RawEgg::parse(&Attrs::new(egg, "egg"), 1, "Minecraft").expect("egg parses")
}

fn egg_json(id: i64, name: &str) -> Value {
    json!({
        "id": id,
        "uuid": format!("00000000-0000-0000-0000-00000000000{id}"),
        "name": name,
        "nest": 1,
        "author": "a@example.com",
        "description": null,
        "docker_images": {"Java 17": "ghcr.io/pterodactyl/yolks:java_17"},
        "config": {
            "files": {"server.properties": {"parser": "properties", "find": {"server-port": "{{server.build.default.port}}"}}},
            "startup": {"done": ")! For help, type "},
            "stop": "stop",
            "logs": [],
            "file_denylist": [],
            "extends": null
        },
        "startup": "java -jar {{SERVER_JARFILE}}",
        "script": {
            "privileged": true,
            "install": "#!/bin/ash\necho hi",
            "entry": "ash",
            "container": "ghcr.io/pterodactyl/installers:alpine",
            "extends": null
        },
        "relationships": {"variables": {"object": "list", "data": [
            {"object": "egg_variable", "attributes": {
                "id": 1, "egg_id": id, "name": "Jar", "description": "The jar",
                "env_variable": "SERVER_JARFILE", "default_value": "server.jar",
                "user_viewable": 1, "user_editable": "1", "rules": "required|string|max:20",
                "created_at": "2024-01-01T00:00:00+00:00", "updated_at": null
            }}
        ]}}
    })
}

fn parse_ptdl(ptdl: &Value) -> shardlyn_proto::egg::Egg {
    shardlyn_proto::egg::parse_egg(&ptdl.to_string()).unwrap_or_else(|e| panic!("{e:?}: {ptdl:#}"))
}

#[test]
fn a_plain_egg_becomes_an_export_document_the_importer_takes() {
    let (eggs, problems) = resolve(&[raw(&egg_json(1, "Paper"))]);
    assert!(problems.is_empty(), "{problems:?}");
    let egg = parse_ptdl(&eggs[0].ptdl);
    assert_eq!(egg.name, "Paper");
    assert_eq!(egg.images[0].image, "ghcr.io/pterodactyl/yolks:java_17");
    assert_eq!(egg.images[0].label, "Java 17");
    assert_eq!(egg.config.files[0].path, "server.properties");
    assert_eq!(
        egg.config.startup.done,
        vec![")! For help, type ".to_owned()]
    );
    assert_eq!(egg.install.entrypoint, "ash");
    assert_eq!(egg.variables[0].env_variable, "SERVER_JARFILE");
    assert!(egg.variables[0].user_viewable && egg.variables[0].user_editable);
    // config sections are JSON text, as in an export.
    assert!(eggs[0].ptdl["config"]["files"].is_string());
    assert_eq!(eggs[0].ptdl["config"]["logs"], "{}");
}

#[test]
fn a_07_docker_image_and_an_early_1x_image_list_are_read() {
    let mut old = egg_json(1, "Old");
    let attrs = old.as_object_mut().expect("object");
    attrs.remove("docker_images");
    attrs.insert(
        "docker_image".into(),
        "quay.io/pterodactyl/core:java".into(),
    );
    let mut list = egg_json(2, "List");
    list["docker_images"] = json!(["ghcr.io/a:1", "ghcr.io/a:2"]);
    let (eggs, problems) = resolve(&[raw(&old), raw(&list)]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        eggs[0].ptdl["docker_images"],
        json!({"quay.io/pterodactyl/core:java": "quay.io/pterodactyl/core:java"})
    );
    assert_eq!(parse_ptdl(&eggs[1].ptdl).images.len(), 2);
}

#[test]
fn inherited_fields_come_from_the_whole_chain_field_by_field() {
    let grand = egg_json(1, "Grand");
    let mut parent = egg_json(2, "Parent");
    parent["config"]["files"] = Value::Null;
    parent["config"]["extends"] = json!(1);
    parent["config"]["stop"] = json!("^C");
    let mut child = egg_json(3, "Child");
    child["config"] =
        json!({"files": null, "startup": null, "stop": null, "logs": null, "extends": "2"});
    child["script"] = json!({"privileged": false, "install": null, "entry": null, "container": null, "extends": 1});
    let (eggs, problems) = resolve(&[raw(&child), raw(&parent), raw(&grand)]);
    assert!(problems.is_empty(), "{problems:?}");
    let child = eggs.iter().find(|e| e.id == 3).expect("child kept");
    let parsed = parse_ptdl(&child.ptdl);
    // files from the grandparent, stop from the parent, script from egg 1.
    assert_eq!(parsed.config.files[0].path, "server.properties");
    assert_eq!(child.ptdl["config"]["stop"], "^C");
    assert_eq!(parsed.install.script, "#!/bin/ash\necho hi");
    assert_eq!(
        parsed.install.container,
        "ghcr.io/pterodactyl/installers:alpine"
    );
    // Its own images and variables stay its own.
    assert_eq!(parsed.variables.len(), 1);
}

#[test]
fn a_missing_parent_or_a_loop_leaves_only_that_egg_out() {
    let fine = egg_json(1, "Fine");
    let mut orphan = egg_json(2, "Orphan");
    orphan["config"]["extends"] = json!(99);
    let mut a = egg_json(3, "A");
    a["script"]["extends"] = json!(4);
    let mut b = egg_json(4, "B");
    b["script"]["extends"] = json!(3);
    let (eggs, problems) = resolve(&[raw(&fine), raw(&orphan), raw(&a), raw(&b)]);
    assert_eq!(eggs.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1]);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("egg 2 \"Orphan\"") && problems[0].contains("egg 99"));
    assert!(problems[1].contains("loops"), "{problems:?}");
}

#[test]
fn list_envelopes_are_checked() {
    let doc = json!({"object": "list", "data": [{"object": "user", "attributes": {"id": 1}}],
        "meta": {"pagination": {"total": 3, "count": 1, "per_page": 1, "current_page": 1,
        "total_pages": 3, "links": {}}}});
    let (items, pages) = list_envelope(doc, "/users").expect("a list");
    assert_eq!((items.len(), pages), (1, 3));
    let (_, pages) = list_envelope(json!({"object": "list", "data": []}), "/nests/1/eggs")
        .expect("no meta is one page");
    assert_eq!(pages, 1);
    for garbage in [
        json!([1, 2]),
        json!({"object": "user", "attributes": {}}),
        json!({"object": "list", "data": [1]}),
        json!({"object": "list"}),
    ] {
        assert!(
            matches!(
                list_envelope(garbage, "/users"),
                Err(SourceError::Protocol(_))
            ),
            "refused"
        );
    }
}

#[test]
fn a_server_reads_limits_allocations_variables_and_subusers() {
    let item = json!({
        "id": 7, "external_id": null, "uuid": "1a7ce997-259b-452e-8b4e-cecc464142ca",
        "identifier": "1a7ce997", "name": "Survival", "description": null,
        "status": null, "suspended": false,
        "limits": {"memory": "2048", "swap": 0, "disk": 10240, "io": 500, "cpu": 200,
            "threads": null, "oom_disabled": true},
        "feature_limits": {"databases": 0, "allocations": 2, "backups": 3},
        "user": 2, "node": 1, "allocation": 11, "nest": 1, "egg": 3,
        "container": {"startup_command": "java -jar {{SERVER_JARFILE}}",
            "image": "ghcr.io/pterodactyl/yolks:java_17", "installed": 1,
            "environment": {"SERVER_JARFILE": "paper.jar", "STARTUP": "x", "P_SERVER_UUID": "u"}},
        "relationships": {
            "allocations": {"object": "list", "data": [
                {"object": "allocation", "attributes": {"id": 10, "ip": "203.0.113.5", "alias": null, "port": 25566, "notes": null, "assigned": true}},
                {"object": "allocation", "attributes": {"id": 11, "ip": "203.0.113.5", "alias": "mc.example.com", "port": 25565, "notes": null, "assigned": true}}
            ]},
            "variables": {"object": "list", "data": [
                {"object": "server_variable", "attributes": {"id": 1, "egg_id": 3, "name": "Jar", "env_variable": "SERVER_JARFILE", "default_value": "server.jar", "server_value": "paper.jar"}},
                {"object": "server_variable", "attributes": {"id": 2, "egg_id": 3, "name": "Build", "env_variable": "BUILD_NUMBER", "default_value": "latest", "server_value": null}}
            ]},
            "subusers": {"object": "list", "data": [
                {"object": "subuser", "attributes": {"id": 1, "user_id": 3, "server_id": 7, "permissions": ["control.console", "file.read"]}}
            ]}
        }
    });
    let attrs = Attrs::new(&item, "server");
    let s = server(&attrs).expect("server");
    assert_eq!(
        (s.memory_mb, s.cpu, s.backup_limit, s.oom_disabled),
        (2048, 200, 3, true)
    );
    assert_eq!(s.identifier, "1a7ce997");
    let primary: Vec<_> = s.allocations.iter().filter(|a| a.primary).collect();
    assert_eq!(primary.len(), 1);
    assert_eq!(
        (primary[0].port, primary[0].alias.as_deref()),
        (25565, Some("mc.example.com"))
    );
    assert_eq!(s.variables["SERVER_JARFILE"], "paper.jar");
    assert_eq!(s.variables["BUILD_NUMBER"], "latest");
    let subs = subusers(&attrs).expect("subusers");
    assert_eq!((subs[0].server_id, subs[0].user_id), (7, 3));
    assert_eq!(subs[0].permissions, vec!["control.console", "file.read"]);

    // Without include=variables, the environment less Pterodactyl's own names.
    let mut bare = item.clone();
    bare.as_object_mut()
        .expect("object")
        .remove("relationships");
    let s = server(&Attrs::new(&bare, "server")).expect("server");
    assert_eq!(
        s.variables.keys().collect::<Vec<_>>(),
        vec!["SERVER_JARFILE"]
    );
    assert!(s.allocations.is_empty());
}

#[test]
fn a_user_reads_its_2fa_flag_and_a_missing_field_names_the_object() {
    let item = json!({"id": 4, "uuid": "u-4", "username": "alice", "email": "a@example.com",
        "first_name": "Alice", "last_name": "A", "root_admin": 1, "2fa": true});
    let u = user(&Attrs::new(&item, "user")).expect("user");
    assert!(u.root_admin && u.use_totp);
    assert!(u.password_hash.is_none() && u.totp_secret.is_none());
    let err = user(&Attrs::new(&json!({"id": 5, "uuid": "u-5"}), "user")).expect_err("no name");
    assert!(
        matches!(&err, SourceError::Protocol(m) if m.contains("user 5") && m.contains("username")),
        "{err:?}"
    );
}
