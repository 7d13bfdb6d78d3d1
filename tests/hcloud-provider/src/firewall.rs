//! `hcloud_firewall`: `name`, `labels` and a set of `rule` blocks (`direction`,
//! `protocol`, `port`, `source_ips`, `destination_ips`, `description`); computed `id`.
//! Servers are attached from the server side (`hcloud_server.firewall_ids`), as the
//! module does. Reading refreshes existence, name and labels; rules are kept as applied.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tf_provider::schema::{AttributeType, Block, Description, NestedBlock, Schema};
use tf_provider::value::{StructEmpty, Value};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::provider::{
    COMPUTED, Client, OPTIONAL, REQUIRED, api_id, attr, labels_from, labels_json, strings,
};

pub struct Firewall(pub Client);

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rule {
    pub direction: Value<String>,
    pub protocol: Value<String>,
    pub port: Value<String>,
    pub source_ips: Value<Vec<String>>,
    pub destination_ips: Value<Vec<String>>,
    pub description: Value<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub id: Value<String>,
    pub name: Value<String>,
    pub labels: Value<BTreeMap<String, String>>,
    pub rule: Value<Vec<Rule>>,
}

type Empty = Value<StructEmpty>;

fn rules_json(rules: &Value<Vec<Rule>>) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = rules
        .as_ref_option()
        .into_iter()
        .flatten()
        .map(|r| {
            json!({
                "direction": r.direction.as_ref_option(),
                "protocol": r.protocol.as_ref_option(),
                "port": r.port.as_ref_option(),
                "source_ips": r.source_ips.as_ref_option().cloned().unwrap_or_default(),
                "destination_ips": r.destination_ips.as_ref_option().cloned().unwrap_or_default(),
                "description": r.description.as_ref_option(),
            })
        })
        .collect();
    serde_json::Value::Array(rules)
}

fn from_api(fw: &serde_json::Value, prior: &State) -> State {
    State {
        id: Value::Value(fw["id"].to_string()),
        name: fw["name"].as_str().map(ToString::to_string).into(),
        labels: labels_from(&fw["labels"]),
        rule: prior.rule.clone(),
    }
}

#[async_trait]
impl Resource for Firewall {
    type State<'a> = Value<State>;
    type PrivateState<'a> = Empty;
    type ProviderMetaState<'a> = Empty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        let rule = Block {
            version: 0,
            description: Description::plain("A firewall rule"),
            attributes: HashMap::from([
                (
                    "direction".into(),
                    attr(AttributeType::String, REQUIRED, "in or out"),
                ),
                (
                    "protocol".into(),
                    attr(AttributeType::String, REQUIRED, "tcp, udp, icmp, esp, gre"),
                ),
                (
                    "port".into(),
                    attr(AttributeType::String, OPTIONAL, "Port or range (tcp, udp)"),
                ),
                (
                    "source_ips".into(),
                    attr(strings(AttributeType::Set), OPTIONAL, "Sources (in)"),
                ),
                (
                    "destination_ips".into(),
                    attr(strings(AttributeType::Set), OPTIONAL, "Destinations (out)"),
                ),
                (
                    "description".into(),
                    attr(AttributeType::String, OPTIONAL, "Description"),
                ),
            ]),
            ..Block::default()
        };
        Some(Schema {
            version: 0,
            block: Block {
                version: 0,
                description: Description::plain("A firewall of the Hetzner Cloud project."),
                attributes: HashMap::from([
                    (
                        "id".into(),
                        attr(AttributeType::String, COMPUTED, "The firewall's id"),
                    ),
                    ("name".into(), attr(AttributeType::String, REQUIRED, "Name")),
                    (
                        "labels".into(),
                        attr(strings(AttributeType::Map), OPTIONAL, "Labels"),
                    ),
                ]),
                blocks: HashMap::from([("rule".into(), NestedBlock::Set(rule))]),
                ..Block::default()
            },
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
        match api.get(&format!("/firewalls/{id}")).await {
            Ok(body) => Some((
                Value::Value(from_api(&body["firewall"], &prior)),
                Value::Null,
            )),
            Err(e) if e.is_not_found() => Some((Value::Null, Value::Null)),
            Err(e) => {
                e.report(diags, "reading a firewall");
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
        Some((Value::Value(planned), Value::Null))
    }

    async fn plan_update<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior: Self::State<'a>,
        proposed: Self::State<'a>,
        _config: Self::State<'a>,
        _private: Empty,
        _meta: Empty,
    ) -> Option<(Self::State<'a>, Empty, Vec<AttributePath>)> {
        Some((proposed, Value::Null, Vec::new()))
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
        let body = json!({
            "name": planned.name.as_ref_option(),
            "labels": labels_json(&planned.labels),
            "rules": rules_json(&planned.rule),
        });
        let created = match api.post("/firewalls", &body).await {
            Ok(created) => created,
            Err(e) => {
                e.report(diags, "creating a firewall");
                return None;
            }
        };
        if let Err(e) = api.wait_all(&created["actions"]).await {
            e.report(diags, "creating a firewall");
            return None;
        }
        Some((
            Value::Value(from_api(&created["firewall"], &planned)),
            Value::Null,
        ))
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
        let body =
            json!({"name": planned.name.as_ref_option(), "labels": labels_json(&planned.labels)});
        let updated = match api.put(&format!("/firewalls/{id}"), &body).await {
            Ok(updated) => updated,
            Err(e) => {
                e.report(diags, "updating a firewall");
                return None;
            }
        };
        if planned.rule != prior.rule {
            let set = api
                .post(
                    &format!("/firewalls/{id}/actions/set_rules"),
                    &json!({"rules": rules_json(&planned.rule)}),
                )
                .await;
            let waited = match set {
                Ok(answer) => api.wait_all(&answer["actions"]).await,
                Err(e) => Err(e),
            };
            if let Err(e) = waited {
                e.report(diags, "setting firewall rules");
                return None;
            }
        }
        Some((
            Value::Value(from_api(&updated["firewall"], &planned)),
            Value::Null,
        ))
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
        match api.delete(&format!("/firewalls/{id}")).await {
            Ok(_) => Some(()),
            Err(e) if e.is_not_found() => Some(()),
            Err(e) => {
                e.report(diags, "deleting a firewall");
                None
            }
        }
    }
}
