//! The fake's SSH keys: unique by name and fingerprint.

use super::*;

/// A stand-in for the MD5 fingerprint the real API computes: 16 colon-separated hex
/// bytes derived from the key (the shape is what clients read; no MD5 crate for a fake).
pub(super) fn fingerprint(public_key: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut bytes = Vec::with_capacity(16);
    for salt in 0..2_u8 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, public_key).hash(&mut h);
        bytes.extend_from_slice(&h.finish().to_be_bytes());
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(super) async fn ssh_keys_list(State(s): State<Shared>, Query(q): Q) -> Answer {
    let inner = s.lock();
    let keys: Vec<Value> = by_name(inner.ssh_keys.values().cloned(), &q)
        .into_iter()
        .filter(|k| {
            q.get("fingerprint")
                .is_none_or(|f| k["fingerprint"] == f.as_str())
        })
        .collect();
    list("ssh_keys", &keys)
}

pub(super) async fn ssh_key_get(State(s): State<Shared>, Path(id): Path<u64>) -> Answer {
    let inner = s.lock();
    let key = inner
        .ssh_keys
        .get(&id)
        .ok_or_else(|| ApiError::not_found("ssh key"))?;
    ok(200, &json!({"ssh_key": key}))
}

pub(super) async fn ssh_key_create(State(s): State<Shared>, body: Bytes) -> Answer {
    let body = parse(&body)?;
    let name = required_str(&body, "name")?.to_string();
    let public_key = required_str(&body, "public_key")?.trim().to_string();
    let labels = labels_of(&body)?;
    let mut parts = public_key.split_whitespace();
    let (Some(kind), Some(_blob)) = (parts.next(), parts.next()) else {
        return Err(ApiError::invalid("invalid input in field 'public_key'"));
    };
    if !kind.starts_with("ssh-") && !kind.starts_with("ecdsa-") && !kind.starts_with("sk-") {
        return Err(ApiError::invalid("invalid input in field 'public_key'"));
    }
    let mut inner = s.lock();
    let fp = fingerprint(&public_key);
    if inner
        .ssh_keys
        .values()
        .any(|k| k["name"] == name.as_str() || k["fingerprint"] == fp.as_str())
    {
        return Err(ApiError::new(
            409,
            "uniqueness_error",
            "SSH key with the same name or fingerprint already exists",
        ));
    }
    let id = inner.id();
    let key = json!({
        "id": id, "name": name, "fingerprint": fp, "public_key": public_key,
        "labels": labels, "created": now_rfc3339(),
    });
    inner.ssh_keys.insert(id, key.clone());
    ok(201, &json!({"ssh_key": key}))
}

pub(super) async fn ssh_key_update(
    State(s): State<Shared>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Answer {
    let body = parse(&body)?;
    let labels = (!body["labels"].is_null())
        .then(|| labels_of(&body))
        .transpose()?;
    let mut inner = s.lock();
    let key = inner
        .ssh_keys
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found("ssh key"))?;
    if let Some(name) = body["name"].as_str() {
        key["name"] = name.into();
    }
    if let Some(labels) = labels {
        key["labels"] = labels;
    }
    let key = key.clone();
    ok(200, &json!({"ssh_key": key}))
}

pub(super) async fn ssh_key_delete(
    State(s): State<Shared>,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    let mut inner = s.lock();
    inner
        .ssh_keys
        .remove(&id)
        .ok_or_else(|| ApiError::not_found("ssh key"))?;
    Ok(StatusCode::NO_CONTENT)
}
