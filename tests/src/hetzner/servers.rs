//! The fake's servers: list, create (with the `on_server_created` hooks), update,
//! delete, and their actions (power, `change_type` only when stopped), all finishing at once.

use super::*;

pub(super) async fn servers_list(State(s): State<Shared>, Query(q): Q) -> Answer {
    let inner = s.lock();
    let all = inner
        .servers
        .keys()
        .filter_map(|id| inner.render_server(*id));
    list("servers", &by_name(all, &q))
}

pub(super) async fn server_get(State(s): State<Shared>, Path(id): Path<u64>) -> Answer {
    let inner = s.lock();
    let server = inner
        .render_server(id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    ok(200, &json!({"server": server}))
}

#[expect(
    clippy::too_many_lines,
    reason = "one documented request body, checked field by field"
)]
pub(super) async fn server_create(State(s): State<Shared>, body: Bytes) -> Answer {
    let body = parse(&body)?;
    let name = required_str(&body, "name")?.to_string();
    let type_name = required_str(&body, "server_type")?;
    let image_name = required_str(&body, "image")?;
    let location_name = body["location"].as_str().unwrap_or("fsn1");
    let labels = labels_of(&body)?;
    let server_type = catalog_server_type(type_name)
        .ok_or_else(|| ApiError::invalid(format!("server type {type_name} not found")))?;
    let location = catalog_location(location_name)
        .ok_or_else(|| ApiError::invalid(format!("location {location_name} not found")))?;
    if !server_type["prices"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| p["location"] == location_name))
    {
        return Err(ApiError::new(
            412,
            "resource_unavailable",
            format!("server type {type_name} is not available in {location_name}"),
        ));
    }
    let user_data = body["user_data"].clone();
    if user_data.as_str().is_some_and(|u| u.len() > 32 * 1024) {
        return Err(ApiError::invalid("user_data is limited to 32 KiB"));
    }
    let enable_ipv4 = body["public_net"]["enable_ipv4"].as_bool().unwrap_or(true);
    let enable_ipv6 = body["public_net"]["enable_ipv6"].as_bool().unwrap_or(true);
    let start = body["start_after_create"].as_bool().unwrap_or(true);
    let (rendered, hooks) = {
        let mut inner = s.lock();
        if inner.servers.values().any(|v| v["name"] == name.as_str()) {
            return Err(ApiError::new(
                409,
                "uniqueness_error",
                "server name is already used",
            ));
        }
        let mut key_ids = Vec::new();
        for key in body["ssh_keys"].as_array().into_iter().flatten() {
            let found = inner.ssh_keys.values().find(|k| {
                key.as_u64().is_some_and(|id| k["id"] == id)
                    || key.as_str().is_some_and(|n| {
                        k["name"] == n || n.parse::<u64>().is_ok_and(|id| k["id"] == id)
                    })
            });
            let found =
                found.ok_or_else(|| ApiError::invalid(format!("ssh key {key} not found")))?;
            key_ids.push(found["id"].clone());
        }
        let mut firewall_ids = Vec::new();
        for fw in body["firewalls"].as_array().into_iter().flatten() {
            let id = fw["firewall"]
                .as_u64()
                .ok_or_else(|| ApiError::invalid("invalid input in field 'firewalls'"))?;
            if !inner.firewalls.contains_key(&id) {
                return Err(ApiError::invalid(format!("firewall {id} not found")));
            }
            firewall_ids.push(id);
        }
        let id = inner.id();
        let octet = id % 250 + 1;
        let server = json!({
            "id": id,
            "name": name,
            "status": if start { "running" } else { "off" },
            "created": now_rfc3339(),
            "public_net": {
                "ipv4": if enable_ipv4 {
                    json!({"id": id + 500_000, "ip": format!("203.0.113.{octet}"), "blocked": false,
                           "dns_ptr": format!("static.{octet}.113.0.203.clients.your-server.de")})
                } else { Value::Null },
                "ipv6": if enable_ipv6 {
                    json!({"id": id + 600_000, "ip": format!("2001:db8:{id:x}::/64"), "blocked": false, "dns_ptr": []})
                } else { Value::Null },
                "floating_ips": [],
                "firewalls": [],
            },
            "private_net": [],
            "server_type": server_type,
            // `datacenter` is deprecated in favour of `location`; the API shows both for now.
            "location": location,
            "datacenter": datacenter(&location),
            "image": image(image_name),
            "iso": null,
            "rescue_enabled": false,
            "locked": false,
            "backup_window": null,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": 21_990_232_555_520_u64,
            "protection": {"delete": false, "rebuild": false},
            "labels": labels,
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": server_type["disk"],
            "placement_group": null,
        });
        inner.servers.insert(id, server);
        inner.user_data.insert(id, user_data.clone());
        for fw in &firewall_ids {
            if let Some(f) = inner.firewalls.get_mut(fw) {
                push_applied(f, id);
            }
        }
        let action = inner.action("create_server", &[(id, "server")]);
        let next: Vec<Value> = if start {
            vec![inner.action("start_server", &[(id, "server")])]
        } else {
            Vec::new()
        };
        let server = inner.render_server(id).unwrap_or(Value::Null);
        let answer = json!({"server": server, "action": action, "next_actions": next, "root_password": null});
        (answer, inner.hooks.clone())
    };
    if !hooks.is_empty() {
        let mut seen = rendered["server"].clone();
        seen["user_data"] = user_data;
        for hook in hooks {
            hook(&seen);
        }
    }
    ok(201, &rendered)
}

pub(super) async fn server_update(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Answer {
    let body = parse(&body)?;
    let mut inner = s.lock();
    if let Some(name) = body["name"].as_str()
        && inner
            .servers
            .iter()
            .any(|(k, v)| *k != id && v["name"] == name)
    {
        return Err(ApiError::new(
            409,
            "uniqueness_error",
            "server name is already used",
        ));
    }
    let labels = (!body["labels"].is_null())
        .then(|| labels_of(&body))
        .transpose()?;
    let server = inner
        .servers
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    if let Some(name) = body["name"].as_str() {
        server["name"] = name.into();
    }
    if let Some(labels) = labels {
        server["labels"] = labels;
    }
    let server = inner.render_server(id).unwrap_or(Value::Null);
    ok(200, &json!({"server": server}))
}

pub(super) async fn server_delete(State(s): State<Shared>, Path(id): Path<u64>) -> Answer {
    let mut inner = s.lock();
    inner
        .servers
        .remove(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    inner.user_data.remove(&id);
    for fw in inner.firewalls.values_mut() {
        if let Some(list) = fw["applied_to"].as_array_mut() {
            list.retain(|a| !(a["type"] == "server" && a["server"]["id"] == id));
        }
    }
    let action = inner.action("delete_server", &[(id, "server")]);
    ok(200, &json!({"action": action}))
}

pub(super) async fn server_actions_list(State(s): State<Shared>, Path(id): Path<u64>) -> Answer {
    let inner = s.lock();
    if !inner.servers.contains_key(&id) {
        return Err(ApiError::not_found("server"));
    }
    let actions: Vec<Value> = inner
        .actions
        .values()
        .filter(|a| {
            a["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["id"] == id && r["type"] == "server"))
        })
        .cloned()
        .collect();
    list("actions", &actions)
}

pub(super) async fn server_action_get(
    State(s): State<Shared>,
    Path((id, action)): Path<(u64, u64)>,
) -> Answer {
    let inner = s.lock();
    let found = inner
        .actions
        .get(&action)
        .filter(|a| {
            a["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["id"] == id && r["type"] == "server"))
        })
        .ok_or_else(|| ApiError::not_found("action"))?;
    ok(200, &json!({"action": found}))
}

pub(super) async fn server_action(
    State(s): State<Shared>,
    Path((id, action)): Path<(u64, String)>,
    body: Bytes,
) -> Answer {
    let body = parse(&body)?;
    let mut inner = s.lock();
    let status = inner
        .servers
        .get(&id)
        .map(|s| s["status"].as_str().unwrap_or_default().to_string())
        .ok_or_else(|| ApiError::not_found("server"))?;
    let (command, new_status) = match action.as_str() {
        "poweron" => ("start_server", "running"),
        "poweroff" => ("stop_server", "off"),
        "shutdown" => ("shutdown_server", "off"),
        "reboot" => ("reboot_server", status.as_str()),
        "change_type" => {
            change_type(&mut inner, id, &status, &body)?;
            ("change_server_type", "off")
        }
        _ => return Err(ApiError::not_found("action")),
    };
    let new_status = new_status.to_string();
    if let Some(server) = inner.servers.get_mut(&id) {
        server["status"] = new_status.into();
    }
    let action = inner.action(command, &[(id, "server")]);
    ok(201, &json!({"action": action}))
}

/// `change_type`: like the real API, only on a stopped server (`server_not_stopped`),
/// and a disk that was upgraded cannot shrink (`invalid_server_type`).
pub(super) fn change_type(
    inner: &mut Inner,
    id: u64,
    status: &str,
    body: &Value,
) -> Result<(), ApiError> {
    let type_name = required_str(body, "server_type")?;
    let upgrade_disk = body["upgrade_disk"]
        .as_bool()
        .ok_or_else(|| ApiError::invalid("invalid input in field 'upgrade_disk'"))?;
    let new_type = catalog_server_type(type_name).ok_or_else(|| {
        ApiError::new(
            422,
            "invalid_server_type",
            format!("server type {type_name} not found"),
        )
    })?;
    if status != "off" {
        return Err(ApiError::new(
            409,
            "server_not_stopped",
            "the action requires a stopped server",
        ));
    }
    let server = inner
        .servers
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("server"))?;
    let disk = server["primary_disk_size"].as_u64().unwrap_or(0);
    let new_disk = new_type["disk"].as_u64().unwrap_or(0);
    if new_disk < disk {
        return Err(ApiError::new(
            422,
            "invalid_server_type",
            format!("server type {type_name} has a smaller disk than the server ({disk} GB)"),
        ));
    }
    if upgrade_disk {
        server["primary_disk_size"] = new_disk.into();
    }
    server["server_type"] = new_type;
    Ok(())
}

pub(super) async fn action_get(State(s): State<Shared>, Path(id): Path<u64>) -> Answer {
    let inner = s.lock();
    let action = inner
        .actions
        .get(&id)
        .ok_or_else(|| ApiError::not_found("action"))?;
    ok(200, &json!({"action": action}))
}
