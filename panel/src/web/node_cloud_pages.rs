//! The Power and Firewall boxes of a provisioned node's page, and their forms: the
//! server's power status with start, stop and reboot (`/v1/nodes/{id}/power/*`), and
//! the game ports open on the node's cloud firewall, added and removed by hand
//! (`/v1/nodes/{id}/firewall/rules`). A node the panel did not provision shows neither.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, plain};
use super::node_pages::{NoFields, Outcome, show_node};
use super::session::{Browser, WebUser};
use crate::nodes::firewall::{FirewallRule, FirewallRules, NewRule};
use crate::nodes::power::{PowerAction, PowerStatus};

/// The routes of these forms.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/nodes/{id}/power/{action}", post(power))
        .route("/nodes/{id}/firewall", post(add_rule))
        .route("/nodes/{id}/firewall/remove", post(remove_rule))
}

/// What the node page shows of a provisioned node's cloud server.
#[derive(Debug, Default, Serialize)]
pub struct CloudShown {
    pub power: Option<PowerStatus>,
    /// Why the power status could not be read.
    pub power_error: Option<String>,
    pub firewall: Option<FirewallRules>,
    /// Why the rules could not be read.
    pub firewall_error: Option<String>,
}

/// The boxes of node `id`, `None` for a node the panel did not provision (409) or that
/// the user may not read.
pub async fn cloud(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    id: &str,
) -> Option<CloudShown> {
    let rules = kit::read::<FirewallRules>(
        web,
        browser,
        user,
        &format!("/v1/nodes/{id}/firewall/rules"),
    )
    .await;
    let mut shown = CloudShown::default();
    match rules {
        Ok(rules) => shown.firewall = Some(rules),
        Err(e)
            if matches!(
                e.status,
                StatusCode::CONFLICT | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
            ) =>
        {
            return None;
        }
        Err(e) => shown.firewall_error = Some(e.message),
    }
    match kit::read::<PowerStatus>(web, browser, user, &format!("/v1/nodes/{id}/power/status"))
        .await
    {
        Ok(status) => shown.power = Some(status),
        Err(e) => shown.power_error = Some(e.message),
    }
    Some(shown)
}

/// The node page after a form: its notice, or the API's refusal shown on it (a provider
/// that failed included); a missing node is the error page.
async fn after(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    id: &str,
    answer: WebResult<()>,
    done: &str,
) -> WebResult<Response> {
    match answer {
        Ok(()) => kit::done(&format!("/nodes/{id}"), done),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(e),
        Err(e)
            if e.status.is_client_error()
                || matches!(
                    e.status,
                    StatusCode::BAD_GATEWAY | StatusCode::NOT_IMPLEMENTED
                ) =>
        {
            show_node(web, browser, user, id, "", Flash::error(e), Outcome::None).await
        }
        Err(e) => Err(e),
    }
}

/// `POST /nodes/{id}/power/{start|stop|reboot}`.
pub async fn power(
    State(web): State<WebState>,
    Path((id, action)): Path<(String, String)>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    if !matches!(action.as_str(), "start" | "stop" | "reboot") {
        return Err(WebError::not_found());
    }
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    let answer = web
        .fetch::<PowerAction, ()>(
            &browser,
            Method::POST,
            &format!("/v1/nodes/{id}/power/{action}"),
            Some(&user.access),
            None,
        )
        .await
        .map(|_| ());
    after(
        &web,
        &browser,
        &user,
        &id,
        answer,
        &format!("power-{action}"),
    )
    .await
}

/// The add-a-rule form, as typed.
#[derive(Debug, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    port_start: String,
    #[serde(default)]
    port_end: String,
    /// Networks separated by commas or spaces; empty: anywhere.
    #[serde(default)]
    source: String,
    #[serde(default)]
    description: String,
}

/// A port field: a number, else the API's own 422 about `field`.
fn port_of(text: &str, field: &str) -> Result<Option<i64>, WebError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| {
        WebError::from(crate::error::AppError::unprocessable(
            field,
            format!("{field} must be between 1 and 65535"),
        ))
    })
}

/// `POST /nodes/{id}/firewall`: adds a rule.
pub async fn add_rule(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<RuleForm>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    let body = port_of(&form.port_start, "port_start").and_then(|start| {
        Ok(NewRule {
            protocol: form.protocol.clone(),
            port_start: start.ok_or_else(|| {
                WebError::from(crate::error::AppError::unprocessable(
                    "port_start",
                    "port_start must be between 1 and 65535",
                ))
            })?,
            port_end: port_of(&form.port_end, "port_end")?,
            source: Some(
                form.source
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )
            .filter(|s| !s.is_empty()),
            description: Some(form.description.clone()),
        })
    });
    let answer = match body {
        Ok(body) => web
            .fetch::<FirewallRule, _>(
                &browser,
                Method::POST,
                &format!("/v1/nodes/{id}/firewall/rules"),
                Some(&user.access),
                Some(&body),
            )
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    after(&web, &browser, &user, &id, answer, "firewall-added").await
}

/// The remove form: the rule's id.
#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    id: String,
}

#[derive(Debug, Serialize)]
struct RemoveBody<'a> {
    id: &'a str,
}

/// `POST /nodes/{id}/firewall/remove`: removes a rule.
pub async fn remove_rule(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<RemoveForm>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::DELETE,
        &format!("/v1/nodes/{id}/firewall/rules"),
        Some(&RemoveBody { id: &form.id }),
    )
    .await;
    after(&web, &browser, &user, &id, answer, "firewall-removed").await
}
