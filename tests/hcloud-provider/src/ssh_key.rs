//! `hcloud_ssh_key`: `name`, `public_key` (replaces), `labels`; computed `id`,
//! `fingerprint`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tf_provider::schema::{AttributeType, Block, Description, Schema};
use tf_provider::value::{StructEmpty, Value};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::provider::{
    COMPUTED, Client, OPTIONAL, REQUIRED, api_id, attr, labels_from, labels_json, strings,
};

pub struct SshKey(pub Client);

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub id: Value<String>,
    pub name: Value<String>,
    pub public_key: Value<String>,
    pub labels: Value<BTreeMap<String, String>>,
    pub fingerprint: Value<String>,
}

type Empty = Value<StructEmpty>;

impl State {
    fn from_api(key: &serde_json::Value, prior: &State) -> State {
        State {
            id: Value::Value(key["id"].to_string()),
            name: key["name"].as_str().map(ToString::to_string).into(),
            // The API may normalise the key's comment; the state keeps what was configured.
            public_key: prior
                .public_key
                .clone()
                .or(key["public_key"].as_str().map(ToString::to_string).into()),
            labels: labels_from(&key["labels"]),
            fingerprint: key["fingerprint"].as_str().map(ToString::to_string).into(),
        }
    }
}

#[async_trait]
impl Resource for SshKey {
    type State<'a> = Value<State>;
    type PrivateState<'a> = Empty;
    type ProviderMetaState<'a> = Empty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 0,
            block: Block {
                version: 0,
                description: Description::plain("An SSH key of the Hetzner Cloud project."),
                attributes: HashMap::from([
                    (
                        "id".into(),
                        attr(AttributeType::String, COMPUTED, "The key's id"),
                    ),
                    ("name".into(), attr(AttributeType::String, REQUIRED, "Name")),
                    (
                        "public_key".into(),
                        attr(AttributeType::String, REQUIRED, "OpenSSH public key"),
                    ),
                    (
                        "labels".into(),
                        attr(strings(AttributeType::Map), OPTIONAL, "Labels"),
                    ),
                    (
                        "fingerprint".into(),
                        attr(AttributeType::String, COMPUTED, "MD5 fingerprint"),
                    ),
                ]),
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
        match api.get(&format!("/ssh_keys/{id}")).await {
            Ok(body) => Some((
                Value::Value(State::from_api(&body["ssh_key"], &prior)),
                Value::Null,
            )),
            Err(e) if e.is_not_found() => Some((Value::Null, Value::Null)),
            Err(e) => {
                e.report(diags, "reading an SSH key");
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
        planned.fingerprint = Value::Unknown;
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
        if planned.public_key != prior.public_key {
            replace.push(AttributePath::new("public_key"));
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
        let body = json!({
            "name": planned.name.as_ref_option(),
            "public_key": planned.public_key.as_ref_option(),
            "labels": labels_json(&planned.labels),
        });
        match api.post("/ssh_keys", &body).await {
            Ok(body) => Some((
                Value::Value(State::from_api(&body["ssh_key"], &planned)),
                Value::Null,
            )),
            Err(e) => {
                e.report(diags, "creating an SSH key");
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
        let body =
            json!({"name": planned.name.as_ref_option(), "labels": labels_json(&planned.labels)});
        match api.put(&format!("/ssh_keys/{id}"), &body).await {
            Ok(body) => Some((
                Value::Value(State::from_api(&body["ssh_key"], &planned)),
                Value::Null,
            )),
            Err(e) => {
                e.report(diags, "updating an SSH key");
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
        match api.delete(&format!("/ssh_keys/{id}")).await {
            Ok(_) => Some(()),
            Err(e) if e.is_not_found() => Some(()),
            Err(e) => {
                e.report(diags, "deleting an SSH key");
                None
            }
        }
    }
}
