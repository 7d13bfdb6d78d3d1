//! The provider itself: its configuration (`token`, `endpoint`, or `HCLOUD_TOKEN` and
//! `HCLOUD_ENDPOINT` as the real provider reads them) and its resources, which share
//! the configured API client.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, Schema,
};
use tf_provider::value::Value;
use tf_provider::{Diagnostics, DynamicResource, Provider};

use crate::api::Api;

/// The configured API client, shared by the provider and its resources (Terraform
/// configures the provider after asking for the resources' schemas).
#[derive(Clone, Default)]
pub struct Client(Arc<RwLock<Option<Api>>>);

impl Client {
    /// The configured client, or an error diagnostic.
    pub fn get(&self, diags: &mut Diagnostics) -> Option<Api> {
        let api = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if api.is_none() {
            diags.root_error_short("the hcloud provider is not configured");
        }
        api
    }
}

/// The `hcloud` provider.
#[derive(Default)]
pub struct HcloudProvider {
    client: Client,
}

/// The provider block.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub token: Value<String>,
    pub endpoint: Value<String>,
}

const DEFAULT_ENDPOINT: &str = "https://api.hetzner.cloud/v1";

#[async_trait]
impl Provider for HcloudProvider {
    type Config<'a> = Value<Config>;
    type MetaState<'a> = Value<tf_provider::value::StructEmpty>;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(Schema {
            version: 1,
            block: Block {
                description: Description::plain(
                    "Test double of the hetznercloud/hcloud provider (Shardlyn's tests).",
                ),
                attributes: HashMap::from([
                    (
                        "token".into(),
                        Attribute {
                            sensitive: true,
                            ..attr(
                                AttributeType::String,
                                OPTIONAL,
                                "API token (default: HCLOUD_TOKEN)",
                            )
                        },
                    ),
                    (
                        "endpoint".into(),
                        attr(
                            AttributeType::String,
                            OPTIONAL,
                            "API endpoint (default: HCLOUD_ENDPOINT)",
                        ),
                    ),
                ]),
                ..Block::default()
            },
        })
    }

    async fn configure<'a>(
        &self,
        diags: &mut Diagnostics,
        _terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        let config = config.unwrap_or_default();
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let token = config
            .token
            .as_option()
            .or_else(|| from_env("HCLOUD_TOKEN"));
        let endpoint = config
            .endpoint
            .as_option()
            .or_else(|| from_env("HCLOUD_ENDPOINT"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let Some(token) = token else {
            diags.root_error(
                "Missing Hetzner Cloud token",
                "set the provider's `token` or the HCLOUD_TOKEN environment variable",
            );
            return None;
        };
        match Api::new(&endpoint, &token) {
            Ok(api) => {
                *self
                    .client
                    .0
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(api);
                Some(())
            }
            Err(e) => {
                e.report(diags, "configuring the provider");
                None
            }
        }
    }

    fn get_resources(
        &self,
        _diags: &mut Diagnostics,
    ) -> Option<HashMap<String, Box<dyn DynamicResource>>> {
        let c = &self.client;
        Some(HashMap::from([
            (
                "ssh_key".to_string(),
                Box::new(crate::ssh_key::SshKey(c.clone())) as Box<dyn DynamicResource>,
            ),
            (
                "firewall".to_string(),
                Box::new(crate::firewall::Firewall(c.clone())) as Box<dyn DynamicResource>,
            ),
            (
                "server".to_string(),
                Box::new(crate::server::Server(c.clone())) as Box<dyn DynamicResource>,
            ),
        ]))
    }
}

pub const REQUIRED: AttributeConstraint = AttributeConstraint::Required;
pub const OPTIONAL: AttributeConstraint = AttributeConstraint::Optional;
pub const COMPUTED: AttributeConstraint = AttributeConstraint::Computed;

/// One attribute of a schema.
pub fn attr(
    attr_type: AttributeType,
    constraint: AttributeConstraint,
    description: &str,
) -> Attribute {
    Attribute {
        attr_type,
        description: Description::plain(description),
        constraint,
        sensitive: false,
        deprecated: false,
    }
}

/// A list of strings / a set of strings / a map of strings.
pub fn strings(kind: fn(Box<AttributeType>) -> AttributeType) -> AttributeType {
    kind(Box::new(AttributeType::String))
}

/// A resource id: Terraform ids are strings, the API's are numbers.
pub fn api_id(diags: &mut Diagnostics, id: &Value<String>) -> Option<u64> {
    let parsed = id.as_ref_option().and_then(|s| s.parse().ok());
    if parsed.is_none() {
        diags.root_error_short(format!("invalid resource id {id:?}"));
    }
    parsed
}

/// `labels` as the API takes them.
pub fn labels_json(
    labels: &Value<std::collections::BTreeMap<String, String>>,
) -> serde_json::Value {
    serde_json::to_value(labels.as_ref_option().cloned().unwrap_or_default())
        .unwrap_or_else(|_| serde_json::json!({}))
}

/// `labels` as the API answers them, for the state.
pub fn labels_from(value: &serde_json::Value) -> Value<std::collections::BTreeMap<String, String>> {
    Value::Value(
        value
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    )
}
