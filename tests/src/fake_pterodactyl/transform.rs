//! The fake's answers, shaped as Pterodactyl's application transformers
//! (`app/Transformers/Api/Application/*`) and its fractal serializer shape them: an item
//! is `{"object": name, "attributes": {...}}`, a list `{"object": "list", "data": [...]}`
//! with `meta.pagination` when paged, included relationships sit in
//! `attributes.relationships`, and a missing one is `{"object": "null_resource",
//! "attributes": null}`. Config sections are decoded as PHP's `json_decode($x, true)`
//! does (`{}` becomes `[]`).

use serde_json::{Map, Value, json};

use super::dataset::{Dataset, Egg, Images, Server, Variable};

/// The time every row was created and updated at.
const AT: &str = "2024-01-01T00:00:00+00:00";

pub(super) fn item(object: &str, attributes: Value) -> Value {
    let mut out = Map::new();
    out.insert("object".into(), object.into());
    out.insert("attributes".into(), attributes);
    out.into()
}

fn list(object: &str, items: Vec<Value>) -> Value {
    json!({
        "object": "list",
        "data": items.into_iter().map(|a| item(object, a)).collect::<Vec<_>>(),
    })
}

fn null_resource() -> Value {
    json!({"object": "null_resource", "attributes": null})
}

/// `json_decode($text, true)` re-encoded: null stays null, an empty object is `[]`.
fn php_decoded(text: Option<&str>) -> Value {
    match text.map(serde_json::from_str::<Value>) {
        None | Some(Err(_)) => Value::Null,
        Some(Ok(Value::Object(map))) if map.is_empty() => json!([]),
        Some(Ok(v)) => v,
    }
}

pub(super) fn location(d: &Dataset, id: i64) -> Option<Value> {
    let l = d.locations.iter().find(|l| l.id == id)?;
    Some(json!({"id": l.id, "short": l.short, "long": l.long, "updated_at": AT, "created_at": AT}))
}

pub(super) fn node(d: &Dataset, id: i64) -> Option<Value> {
    let n = d.nodes.iter().find(|n| n.id == id)?;
    let on = d.servers.iter().filter(|s| s.node_id == id);
    let (memory, disk) = on.fold((0, 0), |(m, k), s| (m + s.memory, k + s.disk));
    Some(json!({
        "id": n.id, "uuid": n.uuid, "public": true, "name": n.name, "description": null,
        "location_id": n.location_id, "fqdn": n.fqdn, "scheme": n.scheme,
        "behind_proxy": false, "maintenance_mode": false, "memory": n.memory,
        "memory_overallocate": 0, "disk": n.disk, "disk_overallocate": 0,
        "upload_size": 100, "daemon_listen": n.daemon_listen, "daemon_sftp": n.daemon_sftp,
        "daemon_base": "/var/lib/pterodactyl/volumes", "created_at": AT, "updated_at": AT,
        "allocated_resources": {"memory": memory, "disk": disk},
    }))
}

pub(super) fn nest(d: &Dataset, id: i64) -> Option<Value> {
    let n = d.nests.iter().find(|n| n.id == id)?;
    Some(json!({
        "id": n.id, "uuid": n.uuid, "author": n.author, "name": n.name,
        "description": n.description, "created_at": AT, "updated_at": AT,
    }))
}

fn variable(egg_id: i64, v: &Variable) -> Map<String, Value> {
    let value = json!({
        "id": v.id, "egg_id": egg_id, "name": v.name, "description": v.description,
        "env_variable": v.env_variable, "default_value": v.default_value,
        "user_viewable": v.user_viewable, "user_editable": v.user_editable,
        "rules": v.rules, "created_at": AT, "updated_at": AT,
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// An egg: the 0.7 transformer's shape for a `docker_image` egg, 1.x's for the others.
pub(super) fn egg(d: &Dataset, e: &Egg, includes: &[&str]) -> Value {
    let mut config = json!({
        "files": php_decoded(e.config_files.as_deref()),
        "startup": php_decoded(e.config_startup.as_deref()),
        "stop": e.config_stop,
        "logs": php_decoded(e.config_logs.as_deref()),
        "extends": e.config_from,
    });
    let mut out = json!({
        "id": e.id, "uuid": e.uuid, "name": e.name, "nest": e.nest_id, "author": e.author,
        "description": e.description,
        "config": null,
        "startup": e.startup,
        "script": {
            "privileged": e.script_is_privileged, "install": e.script_install,
            "entry": e.script_entry, "container": e.script_container,
            "extends": e.copy_script_from,
        },
        "created_at": AT, "updated_at": AT,
    });
    match &e.images {
        Images::Single(image) => out["docker_image"] = image.clone().into(),
        Images::Map(map) => {
            out["docker_image"] = map
                .first()
                .map(|(_, i)| i.clone())
                .unwrap_or_default()
                .into();
            out["docker_images"] = map
                .iter()
                .map(|(l, i)| (l.clone(), Value::String(i.clone())))
                .collect::<Map<_, _>>()
                .into();
            config["file_denylist"] = json!([]);
        }
    }
    out["config"] = config;
    let mut rels = Map::new();
    if includes.contains(&"variables") {
        let vars = e
            .variables
            .iter()
            .map(|v| variable(e.id, v).into())
            .collect();
        rels.insert("variables".into(), list("egg_variable", vars));
    }
    let parent = |id: Option<i64>| id.and_then(|id| d.eggs.iter().find(|p| p.id == id));
    if includes.contains(&"config") {
        // One level, as the panel's inherit_* accessors.
        let rel = match parent(e.config_from) {
            None => null_resource(),
            Some(p) => json!({"object": null, "attributes": {
                "files": php_decoded(e.config_files.as_deref().or(p.config_files.as_deref())),
                "startup": php_decoded(e.config_startup.as_deref().or(p.config_startup.as_deref())),
                "stop": e.config_stop.as_ref().or(p.config_stop.as_ref()),
                "logs": php_decoded(e.config_logs.as_deref().or(p.config_logs.as_deref())),
            }}),
        };
        rels.insert("config".into(), rel);
    }
    if includes.contains(&"script") {
        let rel = match parent(e.copy_script_from) {
            None => null_resource(),
            Some(p) => json!({"object": null, "attributes": {
                "privileged": e.script_is_privileged,
                "install": e.script_install.as_ref().or(p.script_install.as_ref()),
                "entry": e.script_entry.as_ref().or(p.script_entry.as_ref()),
                "container": e.script_container.as_ref().or(p.script_container.as_ref()),
            }}),
        };
        rels.insert("script".into(), rel);
    }
    if includes.contains(&"nest") {
        let rel = nest(d, e.nest_id).map_or_else(null_resource, |n| item("nest", n));
        rels.insert("nest".into(), rel);
    }
    if !rels.is_empty() {
        out["relationships"] = rels.into();
    }
    out
}

pub(super) fn user(d: &Dataset, id: i64) -> Option<Value> {
    let u = d.users.iter().find(|u| u.id == id)?;
    Some(json!({
        "id": u.id, "external_id": null, "uuid": u.uuid, "username": u.username,
        "email": u.email, "first_name": u.name_first, "last_name": u.name_last,
        "language": "en", "root_admin": u.root_admin, "2fa": u.use_totp,
        "created_at": AT, "updated_at": AT,
    }))
}

/// The variables' values as the panel computes `container.environment`.
fn environment(d: &Dataset, s: &Server) -> Map<String, Value> {
    let mut env = Map::new();
    if let Some(egg) = d.eggs.iter().find(|e| e.id == s.egg_id) {
        for v in &egg.variables {
            let value = s.values.get(&v.env_variable).unwrap_or(&v.default_value);
            env.insert(v.env_variable.clone(), value.clone().into());
        }
    }
    env.insert("STARTUP".into(), s.startup.clone().into());
    let location = d.nodes.iter().find(|n| n.id == s.node_id).and_then(|n| {
        d.locations
            .iter()
            .find(|l| l.id == n.location_id)
            .map(|l| l.short.clone())
    });
    env.insert("P_SERVER_LOCATION".into(), location.into());
    env.insert("P_SERVER_UUID".into(), s.uuid.clone().into());
    env.insert(
        "P_SERVER_ALLOCATION_LIMIT".into(),
        s.allocation_limit.into(),
    );
    env
}

pub(super) fn server(d: &Dataset, s: &Server, includes: &[&str]) -> Value {
    let mut out = json!({
        "id": s.id, "external_id": null, "uuid": s.uuid, "identifier": s.identifier(),
        "name": s.name, "description": s.description, "status": s.status,
        "suspended": s.status.as_deref() == Some("suspended"),
        "limits": {
            "memory": s.memory, "swap": s.swap, "disk": s.disk, "io": s.io, "cpu": s.cpu,
            "threads": s.threads, "oom_disabled": s.oom_disabled,
        },
        "feature_limits": {
            "databases": s.database_limit, "allocations": s.allocation_limit,
            "backups": s.backup_limit,
        },
        "user": s.owner_id, "node": s.node_id, "allocation": s.allocation_id,
        "nest": s.nest_id, "egg": s.egg_id,
        "container": {
            "startup_command": s.startup, "image": s.image,
            "installed": i32::from(s.status.as_deref() != Some("installing")),
            "environment": environment(d, s),
        },
        "updated_at": AT, "created_at": AT,
    });
    let mut rels = Map::new();
    if includes.contains(&"allocations") {
        let allocs = s
            .allocations
            .iter()
            .map(|a| {
                json!({"id": a.id, "ip": a.ip, "alias": a.alias, "port": a.port,
                    "notes": null, "assigned": true})
            })
            .collect();
        rels.insert("allocations".into(), list("allocation", allocs));
    }
    if includes.contains(&"variables") {
        let vars = d
            .eggs
            .iter()
            .find(|e| e.id == s.egg_id)
            .map(|e| {
                e.variables
                    .iter()
                    .map(|v| {
                        let mut attrs = variable(e.id, v);
                        attrs.insert(
                            "server_value".into(),
                            s.values.get(&v.env_variable).cloned().into(),
                        );
                        attrs.into()
                    })
                    .collect()
            })
            .unwrap_or_default();
        rels.insert("variables".into(), list("server_variable", vars));
    }
    if includes.contains(&"subusers") {
        let subs = d
            .subusers
            .iter()
            .filter(|u| u.server_id == s.id)
            .map(|u| {
                json!({"id": u.id, "user_id": u.user_id, "server_id": u.server_id,
                    "permissions": u.permissions, "created_at": AT, "updated_at": AT})
            })
            .collect();
        rels.insert("subusers".into(), list("subuser", subs));
    }
    if includes.contains(&"user") {
        let rel = user(d, s.owner_id).map_or_else(null_resource, |u| item("user", u));
        rels.insert("user".into(), rel);
    }
    if includes.contains(&"node") {
        let rel = node(d, s.node_id).map_or_else(null_resource, |n| item("node", n));
        rels.insert("node".into(), rel);
    }
    if !rels.is_empty() {
        out["relationships"] = rels.into();
    }
    out
}

/// The unpaginated list of a nest's eggs (Pterodactyl does not page it).
pub(super) fn eggs_of(d: &Dataset, nest_id: i64, includes: &[&str]) -> Value {
    let eggs = d
        .eggs
        .iter()
        .filter(|e| e.nest_id == nest_id)
        .map(|e| egg(d, e, includes))
        .collect();
    list("egg", eggs)
}
