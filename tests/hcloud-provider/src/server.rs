//! `hcloud_server`: `name`, `server_type`, `image`, `location`, `ssh_keys`, `user_data`,
//! `labels`, `firewall_ids` and a `public_net` block (`ipv4_enabled`, `ipv6_enabled`);
//! computed `id`, `ipv4_address`, `ipv6_address`, `status`.
//!
//! As in the real provider: a new `server_type` is applied in place (power off,
//! `change_type` with `upgrade_disk`, power on); `image`, `location`, `user_data`,
//! `ssh_keys` and `public_net` force a new server; `firewall_ids` changes apply or
//! remove firewalls.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tf_provider::schema::{AttributeType, Block, Description, NestedBlock, Schema};
use tf_provider::value::{StructEmpty, Value};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::api::{Api, ApiError};
use crate::provider::{
    COMPUTED, Client, OPTIONAL, REQUIRED, api_id, attr, labels_from, labels_json, strings,
};

pub struct Server(pub Client);

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublicNet {
    pub ipv4_enabled: Value<bool>,
    pub ipv6_enabled: Value<bool>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub id: Value<String>,
    pub name: Value<String>,
    pub server_type: Value<String>,
    pub image: Value<String>,
    pub location: Value<String>,
    pub ssh_keys: Value<Vec<Value<String>>>,
    pub user_data: Value<String>,
    pub labels: Value<BTreeMap<String, String>>,
    pub firewall_ids: Value<Vec<Value<i64>>>,
    pub public_net: Value<Vec<PublicNet>>,
    pub ipv4_address: Value<String>,
    pub ipv6_address: Value<String>,
    pub status: Value<String>,
}

type Empty = Value<StructEmpty>;

/// The server as the API shows it, over the prior state for what the API never shows
/// (user data, keys) or shows differently (an image given by id).
fn from_api(server: &serde_json::Value, prior: &State) -> State {
    let string =
        |v: &serde_json::Value| -> Value<String> { v.as_str().map(ToString::to_string).into() };
    let mut firewall_ids: Vec<i64> = server["public_net"]["firewalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["id"].as_i64())
        .collect();
    firewall_ids.sort_unstable();
    // Like the real provider: the server's IPv6 address is the first of its /64.
    let ipv6 = server["public_net"]["ipv6"]["ip"]
        .as_str()
        .map(|net| format!("{}1", net.split('/').next().unwrap_or(net)));
    State {
        id: Value::Value(server["id"].to_string()),
        name: string(&server["name"]),
        server_type: string(&server["server_type"]["name"]),
        image: prior.image.clone().or(string(&server["image"]["name"])),
        location: string(&server["location"]["name"])
            .or(string(&server["datacenter"]["location"]["name"])),
        ssh_keys: prior.ssh_keys.clone(),
        user_data: prior.user_data.clone(),
        labels: labels_from(&server["labels"]),
        firewall_ids: Value::Value(firewall_ids.into_iter().map(Value::Value).collect()),
        public_net: prior.public_net.clone(),
        ipv4_address: string(&server["public_net"]["ipv4"]["ip"]),
        ipv6_address: ipv6.into(),
        status: string(&server["status"]),
    }
}

fn known_ids(ids: &Value<Vec<Value<i64>>>) -> Vec<i64> {
    let mut ids: Vec<i64> = ids
        .as_ref_option()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_ref_option().copied())
        .collect();
    ids.sort_unstable();
    ids
}

async fn get_server(api: &Api, id: u64) -> Result<serde_json::Value, ApiError> {
    Ok(api.get(&format!("/servers/{id}")).await?["server"].clone())
}

async fn action(api: &Api, id: u64, name: &str, body: &serde_json::Value) -> Result<(), ApiError> {
    let answer = api
        .post(&format!("/servers/{id}/actions/{name}"), body)
        .await?;
    api.wait(&answer["action"]).await
}

/// The real provider's resize: power off, change the type (growing the disk), power on.
async fn change_type(api: &Api, id: u64, server_type: &str) -> Result<(), ApiError> {
    let running = get_server(api, id).await?["status"] != "off";
    if running {
        action(api, id, "poweroff", &json!({})).await?;
    }
    action(
        api,
        id,
        "change_type",
        &json!({"server_type": server_type, "upgrade_disk": true}),
    )
    .await?;
    if running {
        action(api, id, "poweron", &json!({})).await?;
    }
    Ok(())
}

async fn set_firewalls(api: &Api, id: u64, from: &[i64], to: &[i64]) -> Result<(), ApiError> {
    let target = json!([{"type": "server", "server": {"id": id}}]);
    for fw in from.iter().filter(|f| !to.contains(f)) {
        let answer = api
            .post(
                &format!("/firewalls/{fw}/actions/remove_from_resources"),
                &json!({"remove_from": target}),
            )
            .await?;
        api.wait_all(&answer["actions"]).await?;
    }
    for fw in to.iter().filter(|f| !from.contains(f)) {
        let answer = api
            .post(
                &format!("/firewalls/{fw}/actions/apply_to_resources"),
                &json!({"apply_to": target}),
            )
            .await?;
        api.wait_all(&answer["actions"]).await?;
    }
    Ok(())
}

async fn create_server(api: &Api, planned: &State) -> Result<serde_json::Value, ApiError> {
    let public_net = planned
        .public_net
        .as_ref_option()
        .and_then(|p| p.first())
        .cloned()
        .unwrap_or_default();
    let ssh_keys: Vec<serde_json::Value> = planned
        .ssh_keys
        .as_ref_option()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_ref_option())
        .map(|k| k.parse::<u64>().map_or_else(|_| json!(k), |id| json!(id)))
        .collect();
    let firewalls: Vec<serde_json::Value> = known_ids(&planned.firewall_ids)
        .into_iter()
        .map(|id| json!({"firewall": id}))
        .collect();
    let body = json!({
        "name": planned.name.as_ref_option(),
        "server_type": planned.server_type.as_ref_option(),
        "image": planned.image.as_ref_option(),
        "location": planned.location.as_ref_option(),
        "ssh_keys": ssh_keys,
        "user_data": planned.user_data.as_ref_option(),
        "labels": labels_json(&planned.labels),
        "firewalls": firewalls,
        "public_net": {
            "enable_ipv4": public_net.ipv4_enabled.as_option().unwrap_or(true),
            "enable_ipv6": public_net.ipv6_enabled.as_option().unwrap_or(true),
        },
        "start_after_create": true,
    });
    let created = api.post("/servers", &body).await?;
    api.wait(&created["action"]).await?;
    api.wait_all(&created["next_actions"]).await?;
    let id = created["server"]["id"].as_u64().unwrap_or_default();
    get_server(api, id).await
}

async fn update_server(
    api: &Api,
    id: u64,
    prior: &State,
    planned: &State,
) -> Result<serde_json::Value, ApiError> {
    if planned.name != prior.name || planned.labels != prior.labels {
        let body =
            json!({"name": planned.name.as_ref_option(), "labels": labels_json(&planned.labels)});
        api.put(&format!("/servers/{id}"), &body).await?;
    }
    if planned.server_type != prior.server_type
        && let Some(server_type) = planned.server_type.as_ref_option()
    {
        change_type(api, id, server_type).await?;
    }
    let (from, to) = (
        known_ids(&prior.firewall_ids),
        known_ids(&planned.firewall_ids),
    );
    if from != to {
        set_firewalls(api, id, &from, &to).await?;
    }
    get_server(api, id).await
}

fn schema_block() -> Block {
    let public_net = Block {
        version: 0,
        description: Description::plain("Public network"),
        attributes: HashMap::from([
            (
                "ipv4_enabled".into(),
                attr(AttributeType::Bool, OPTIONAL, "Public IPv4"),
            ),
            (
                "ipv6_enabled".into(),
                attr(AttributeType::Bool, OPTIONAL, "Public IPv6"),
            ),
        ]),
        ..Block::default()
    };
    let string = |c, d: &str| attr(AttributeType::String, c, d);
    Block {
        version: 0,
        description: Description::plain("A Hetzner Cloud server."),
        attributes: HashMap::from([
            ("id".into(), string(COMPUTED, "The server's id")),
            ("name".into(), string(REQUIRED, "Name")),
            (
                "server_type".into(),
                string(REQUIRED, "Server type (changed in place)"),
            ),
            ("image".into(), string(REQUIRED, "Image name or id")),
            ("location".into(), string(OPTIONAL, "Location")),
            (
                "ssh_keys".into(),
                attr(
                    strings(AttributeType::List),
                    OPTIONAL,
                    "SSH key ids or names",
                ),
            ),
            ("user_data".into(), string(OPTIONAL, "cloud-init user data")),
            (
                "labels".into(),
                attr(strings(AttributeType::Map), OPTIONAL, "Labels"),
            ),
            (
                "firewall_ids".into(),
                attr(
                    AttributeType::Set(Box::new(AttributeType::Number)),
                    OPTIONAL,
                    "Firewalls",
                ),
            ),
            (
                "ipv4_address".into(),
                string(COMPUTED, "Public IPv4 address"),
            ),
            (
                "ipv6_address".into(),
                string(COMPUTED, "Public IPv6 address"),
            ),
            ("status".into(), string(COMPUTED, "running, off...")),
        ]),
        blocks: HashMap::from([("public_net".into(), NestedBlock::Set(public_net))]),
        ..Block::default()
    }
}

#[async_trait]
impl Resource for Server {
    type State<'a> = Value<State>;
    type PrivateState<'a> = Empty;
    type ProviderMetaState<'a> = Empty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 0,
            block: schema_block(),
        })
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        _private: Empty,
        _meta: Empty,
    ) -> Option<(Self::State<'a>, Empty)> {
        let prior = state.unwrap_or_default();
        let api = self.0.get(diags)?;
        let id = api_id(diags, &prior.id)?;
        match get_server(&api, id).await {
            Ok(server) => Some((Value::Value(from_api(&server, &prior)), Value::Null)),
            Err(e) if e.is_not_found() => Some((Value::Null, Value::Null)),
            Err(e) => {
                e.report(diags, "reading a server");
                None
            }
        }
    }

    async fn plan_create<'a>(
        &self,
        _diags: &mut Diagnostics,
        proposed: Self::State<'a>,
        _config: Self::State<'a>,
        _meta: Empty,
    ) -> Option<(Self::State<'a>, Empty)> {
        let mut planned = proposed.unwrap_or_default();
        planned.id = Value::Unknown;
        planned.ipv4_address = Value::Unknown;
        planned.ipv6_address = Value::Unknown;
        planned.status = Value::Unknown;
        Some((Value::Value(planned), Value::Null))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        prior: Self::State<'a>,
        proposed: Self::State<'a>,
        _config: Self::State<'a>,
        _private: Empty,
        _meta: Empty,
    ) -> Option<(Self::State<'a>, Empty, Vec<AttributePath>)> {
        let prior = prior.unwrap_or_default();
        let planned = proposed.unwrap_or_default();
        let mut replace = Vec::new();
        if planned.image != prior.image {
            replace.push(AttributePath::new("image"));
        }
        if planned.location != prior.location {
            replace.push(AttributePath::new("location"));
        }
        if planned.user_data != prior.user_data {
            replace.push(AttributePath::new("user_data"));
        }
        if planned.ssh_keys != prior.ssh_keys {
            replace.push(AttributePath::new("ssh_keys"));
        }
        if planned.public_net != prior.public_net {
            replace.push(AttributePath::new("public_net"));
        }
        Some((Value::Value(planned), Value::Null, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior: Self::State<'a>,
        _private: Empty,
        _meta: Empty,
    ) -> Option<Empty> {
        Some(Value::Null)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned: Self::State<'a>,
        _config: Self::State<'a>,
        _private: Empty,
        _meta: Empty,
    ) -> Option<(Self::State<'a>, Empty)> {
        let planned = planned.unwrap_or_default();
        let api = self.0.get(diags)?;
        match create_server(&api, &planned).await {
            Ok(server) => Some((Value::Value(from_api(&server, &planned)), Value::Null)),
            Err(e) => {
                e.report(diags, "creating a server");
                None
            }
        }
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Self::State<'a>,
        planned: Self::State<'a>,
        _config: Self::State<'a>,
        _private: Empty,
        _meta: Empty,
    ) -> Option<(Self::State<'a>, Empty)> {
        let prior = prior.unwrap_or_default();
        let planned = planned.unwrap_or_default();
        let api = self.0.get(diags)?;
        let id = api_id(diags, &prior.id)?;
        match update_server(&api, id, &prior, &planned).await {
            Ok(server) => Some((Value::Value(from_api(&server, &planned)), Value::Null)),
            Err(e) => {
                e.report(diags, "updating a server");
                None
            }
        }
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior: Self::State<'a>,
        _private: Empty,
        _meta: Empty,
    ) -> Option<()> {
        let prior = prior.unwrap_or_default();
        let api = self.0.get(diags)?;
        let id = api_id(diags, &prior.id)?;
        let deleted = match api.delete(&format!("/servers/{id}")).await {
            Ok(answer) => api.wait(&answer["action"]).await,
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        };
        match deleted {
            Ok(()) => Some(()),
            Err(e) => {
                e.report(diags, "deleting a server");
                None
            }
        }
    }
}
