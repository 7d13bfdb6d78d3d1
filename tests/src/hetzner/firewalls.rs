//! The fake's firewalls: rules checked as the API documents them, applied to servers,
//! and `resource_in_use` when deleting one still applied.

use super::*;

pub(super) fn push_applied(firewall: &mut Value, server_id: u64) {
    if applied_to_server(firewall, server_id) {
        return;
    }
    if let Some(list) = firewall["applied_to"].as_array_mut() {
        list.push(json!({"type": "server", "server": {"id": server_id}}));
    }
}

/// Checks firewall rules as the API documents them; answers them normalised.
pub(super) fn rules_of(value: &Value) -> Result<Value, ApiError> {
    let mut rules = Vec::new();
    for rule in value.as_array().into_iter().flatten() {
        let direction = rule["direction"].as_str().unwrap_or_default();
        let protocol = rule["protocol"].as_str().unwrap_or_default();
        if !matches!(direction, "in" | "out") {
            return Err(ApiError::invalid("invalid input in field 'direction'"));
        }
        if !matches!(protocol, "tcp" | "udp" | "icmp" | "esp" | "gre") {
            return Err(ApiError::invalid("invalid input in field 'protocol'"));
        }
        let port = rule["port"].as_str();
        if matches!(protocol, "tcp" | "udp") == port.is_none() {
            return Err(ApiError::invalid("invalid input in field 'port'"));
        }
        let ips_field = if direction == "in" {
            "source_ips"
        } else {
            "destination_ips"
        };
        if rule[ips_field].as_array().is_none_or(Vec::is_empty) {
            return Err(ApiError::invalid(format!(
                "invalid input in field '{ips_field}'"
            )));
        }
        rules.push(json!({
            "description": rule["description"],
            "direction": direction,
            "protocol": protocol,
            "port": port,
            "source_ips": if direction == "in" { rule["source_ips"].clone() } else { json!([]) },
            "destination_ips": if direction == "out" { rule["destination_ips"].clone() } else { json!([]) },
        }));
    }
    Ok(Value::Array(rules))
}

pub(super) fn server_ids_of(inner: &Inner, list: &Value) -> Result<Vec<u64>, ApiError> {
    let mut ids = Vec::new();
    for target in list.as_array().into_iter().flatten() {
        if target["type"] != "server" {
            return Err(ApiError::invalid("only servers can be targets here"));
        }
        let id = target["server"]["id"]
            .as_u64()
            .ok_or_else(|| ApiError::invalid("invalid input in field 'server'"))?;
        if !inner.servers.contains_key(&id) {
            return Err(ApiError::new(
                404,
                "firewall_resource_not_found",
                format!("server {id} not found"),
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

pub(super) async fn firewalls_list(State(s): State<Shared>, Query(q): Q) -> Answer {
    let inner = s.lock();
    list("firewalls", &by_name(inner.firewalls.values().cloned(), &q))
}

pub(super) async fn firewall_get(State(s): State<Shared>, Path(id): Path<u64>) -> Answer {
    let inner = s.lock();
    let fw = inner
        .firewalls
        .get(&id)
        .ok_or_else(|| ApiError::not_found("firewall"))?;
    ok(200, &json!({"firewall": fw}))
}

pub(super) async fn firewall_create(State(s): State<Shared>, body: Bytes) -> Answer {
    let body = parse(&body)?;
    let name = required_str(&body, "name")?.to_string();
    let labels = labels_of(&body)?;
    let rules = rules_of(&body["rules"])?;
    let mut inner = s.lock();
    if inner.firewalls.values().any(|f| f["name"] == name.as_str()) {
        return Err(ApiError::new(
            409,
            "uniqueness_error",
            "firewall name is already used",
        ));
    }
    let servers = server_ids_of(&inner, &body["apply_to"])?;
    let id = inner.id();
    let mut firewall = json!({
        "id": id, "name": name, "labels": labels, "created": now_rfc3339(),
        "rules": rules, "applied_to": [],
    });
    let mut actions = vec![inner.action("set_firewall_rules", &[(id, "firewall")])];
    for server in servers {
        push_applied(&mut firewall, server);
        actions.push(inner.action("apply_firewall", &[(id, "firewall"), (server, "server")]));
    }
    inner.firewalls.insert(id, firewall.clone());
    ok(201, &json!({"firewall": firewall, "actions": actions}))
}

pub(super) async fn firewall_update(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Answer {
    let body = parse(&body)?;
    let labels = (!body["labels"].is_null())
        .then(|| labels_of(&body))
        .transpose()?;
    let mut inner = s.lock();
    if let Some(name) = body["name"].as_str()
        && inner
            .firewalls
            .iter()
            .any(|(k, v)| *k != id && v["name"] == name)
    {
        return Err(ApiError::new(
            409,
            "uniqueness_error",
            "firewall name is already used",
        ));
    }
    let fw = inner
        .firewalls
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("firewall"))?;
    if let Some(name) = body["name"].as_str() {
        fw["name"] = name.into();
    }
    if let Some(labels) = labels {
        fw["labels"] = labels;
    }
    let fw = fw.clone();
    ok(200, &json!({"firewall": fw}))
}

pub(super) async fn firewall_delete(
    State(s): State<Shared>,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    let mut inner = s.lock();
    let fw = inner
        .firewalls
        .get(&id)
        .ok_or_else(|| ApiError::not_found("firewall"))?;
    if fw["applied_to"].as_array().is_some_and(|l| !l.is_empty()) {
        return Err(ApiError::new(
            422,
            "resource_in_use",
            "firewall is still in use",
        ));
    }
    inner.firewalls.remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn firewall_action(
    State(s): State<Shared>,
    Path((id, action)): Path<(u64, String)>,
    body: Bytes,
) -> Answer {
    let body = parse(&body)?;
    let mut inner = s.lock();
    if !inner.firewalls.contains_key(&id) {
        return Err(ApiError::not_found("firewall"));
    }
    let mut actions = Vec::new();
    match action.as_str() {
        "set_rules" => {
            let rules = rules_of(&body["rules"])?;
            if let Some(fw) = inner.firewalls.get_mut(&id) {
                fw["rules"] = rules;
            }
            let servers: Vec<u64> = inner.servers.keys().copied().collect();
            let applied: Vec<u64> = servers
                .into_iter()
                .filter(|s| {
                    inner
                        .firewalls
                        .get(&id)
                        .is_some_and(|f| applied_to_server(f, *s))
                })
                .collect();
            actions.push(inner.action("set_firewall_rules", &[(id, "firewall")]));
            for server in applied {
                actions
                    .push(inner.action("apply_firewall", &[(id, "firewall"), (server, "server")]));
            }
        }
        "apply_to_resources" => {
            let servers = server_ids_of(&inner, &body["apply_to"])?;
            for server in servers {
                if inner
                    .firewalls
                    .get(&id)
                    .is_some_and(|f| applied_to_server(f, server))
                {
                    return Err(ApiError::new(
                        422,
                        "firewall_already_applied",
                        "firewall is already applied",
                    ));
                }
                if let Some(fw) = inner.firewalls.get_mut(&id) {
                    push_applied(fw, server);
                }
                actions
                    .push(inner.action("apply_firewall", &[(id, "firewall"), (server, "server")]));
            }
        }
        "remove_from_resources" => {
            let servers = server_ids_of(&inner, &body["remove_from"])?;
            for server in servers {
                if !inner
                    .firewalls
                    .get(&id)
                    .is_some_and(|f| applied_to_server(f, server))
                {
                    return Err(ApiError::new(
                        422,
                        "firewall_already_removed",
                        "firewall is not applied",
                    ));
                }
                if let Some(list) = inner
                    .firewalls
                    .get_mut(&id)
                    .and_then(|f| f["applied_to"].as_array_mut())
                {
                    list.retain(|a| !(a["type"] == "server" && a["server"]["id"] == server));
                }
                actions
                    .push(inner.action("remove_firewall", &[(id, "firewall"), (server, "server")]));
            }
        }
        _ => return Err(ApiError::not_found("action")),
    }
    ok(201, &json!({"actions": actions}))
}
