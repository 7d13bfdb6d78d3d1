//! What the account, organization, node, workload and admin pages share: reading and
//! writing through the `/v1` API as the signed-in user, the outcome of a form shown on
//! the page it came from (a notice after a redirect, or the API's error), and rendering
//! a page with its layout.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::error::{WebError, WebResult};
use super::session::{Browser, WebUser};
use super::view::{csrf_of, html, redirect, user_layout};
use crate::orgs::store::OrgWithRole;

/// The signed-in user of a page, or the redirect to sign in (returned from the handler).
macro_rules! page_user {
    ($web:expr, $browser:expr, $here:expr) => {
        match super::view::require_user(&$web, &$browser, $here).await? {
            Ok(user) => user,
            Err(redirect) => return Ok(redirect),
        }
    };
}
pub(crate) use page_user;

/// Reads `path` from the API as `user`, as the API's response type `T`.
///
/// # Errors
/// The API's error.
pub async fn read<T: DeserializeOwned>(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    path: &str,
) -> WebResult<T> {
    web.fetch(browser, Method::GET, path, Some(&user.access), None::<&()>)
        .await
}

/// Sends `method path` with the typed `body` to the API as `user`; the answer as the
/// API's response type `T`.
///
/// # Errors
/// The API's error.
pub async fn write<T: DeserializeOwned, B: Serialize>(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> WebResult<T> {
    web.fetch(browser, method, path, Some(&user.access), body)
        .await
}

/// Sends `method path` with `body` to the API as `user`, for an action whose answer the
/// page does not show (it redirects or shows a fixed notice).
///
/// # Errors
/// The API's error.
pub async fn act<B: Serialize>(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    method: Method,
    path: &str,
    body: Option<&B>,
) -> WebResult<()> {
    web.fetch::<IgnoredAny, B>(browser, method, path, Some(&user.access), body)
        .await
        .map(|_| ())
}

/// A form's failure shown on its page: a client error is kept to be shown; anything
/// else is an error page.
///
/// # Errors
/// A server-side failure.
pub fn shown<T>(result: WebResult<T>) -> WebResult<Result<T, WebError>> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) if e.status.is_client_error() => Ok(Err(e)),
        Err(e) => Err(e),
    }
}

/// A path segment from the address: an id the API could have issued, else a 404.
///
/// # Errors
/// 404 for anything else.
pub fn plain(id: &str) -> WebResult<&str> {
    if super::api::is_plain_id(id) {
        Ok(id)
    } else {
        Err(WebError::not_found())
    }
}

/// Width and height of a chart's drawing (its `viewBox`; CSS scales it).
pub const CHART_W: f64 = 600.0;
pub const CHART_H: f64 = 160.0;

/// Where `value` sits on a chart's vertical scale of 0 to `top` (clamped to it).
#[must_use]
pub fn chart_y(value: f64, top: f64) -> f64 {
    CHART_H - value.clamp(0.0, top) / top * CHART_H
}

/// The SVG polyline points of `values` (`(unix ms, value)`) drawn over `[from, to]`,
/// 0 to `top` high.
#[must_use]
pub fn polyline(values: &[(i64, f64)], (from, to): (i64, i64), top: f64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a chart's x position")]
    let x =
        |at: i64| ((at - from) as f64 / (to - from).max(1) as f64 * CHART_W).clamp(0.0, CHART_W);
    values
        .iter()
        .map(|(at, v)| format!("{:.1},{:.1}", x(*at), chart_y(*v, top)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An organization id from an address or a form: kept if the API could have issued it,
/// else empty (the personal organization).
#[must_use]
pub fn org_param(id: &str) -> String {
    if super::api::is_plain_id(id) {
        id.to_owned()
    } else {
        String::new()
    }
}

/// `?done=` after a form succeeded: which notice to show (a fixed text per key, so
/// nothing from the address is echoed).
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    pub done: Option<String>,
}

impl Done {
    /// The notice for this key, if it is one of ours.
    #[must_use]
    pub fn notice(&self) -> Option<String> {
        let text = match self.done.as_deref()? {
            "password" => "Your password was changed. Your other sessions were signed out.",
            "mfa-disabled" => "Two-factor authentication is off.",
            "token-revoked" => "The API token was revoked.",
            "certificate-revoked" => "The SSH certificate was revoked.",
            "ca-rotated" => "The CA has a new signing key.",
            "session-revoked" => "The session was signed out.",
            "org-created" => "The organization was created.",
            "invited" => "The invitation is on its way.",
            "joined" => "Welcome: you are now a member of this organization.",
            "invite-revoked" => "The invitation was revoked.",
            "role" => "The role was changed.",
            "removed" => "The member was removed.",
            "permission" => "The permission was updated.",
            "imported" => "The egg was imported.",
            "cordoned" => "The node is cordoned: no new instances are placed on it.",
            "uncordoned" => "The node accepts new instances again.",
            "allocation" => "New servers on this node get their ports from these settings.",
            "power-start" => "The server is starting.",
            "power-stop" => "The server is shutting down.",
            "power-reboot" => "The server is rebooting.",
            "firewall-added" => "The port is open on the node's cloud firewall.",
            "firewall-removed" => "The port is closed on the node's cloud firewall.",
            "suspended" => "The user is suspended.",
            "unsuspended" => "The user may sign in again.",
            "acked" => "The alert is acknowledged.",
            "silenced" => "The alert's notifications are held back for an hour.",
            "rule-created" => "The alert rule was created.",
            "rule-saved" => "The alert rule was saved.",
            "rule-deleted" => "The alert rule and its alerts were deleted.",
            "maintenance" => "The maintenance window is open: its targets raise no alerts.",
            "maintenance-ended" => "The maintenance window is over.",
            "integration-created" => "The integration was created.",
            "integration-enabled" => "The integration is enabled.",
            "integration-disabled" => "The integration is disabled: nothing is sent to it.",
            "integration-deleted" => "The integration was deleted.",
            "credential-created" => {
                "The credential was added: verify it to check the provider accepts it."
            }
            "credential-default" => "The credential is now the default for its provider.",
            "credential-deleted" => "The credential was deleted.",
            "provision-planning" => {
                "Terraform is planning: nothing is created until you review and apply the plan."
            }
            "provision-applying" => "Terraform is creating the server.",
            "provision-destroying" => "Terraform is destroying the server.",
            "provision-discarded" => "The request was discarded.",
            "provision-resizing" => "Terraform is resizing the server.",
            "plan-changed" => "The plan was changed; Stripe prorates the difference.",
            "billing-cancelled" => {
                "The plan is cancelled at the end of the period; until then nothing changes."
            }
            "plan-created" => "The plan was created.",
            "plan-saved" => "The plan was saved.",
            "plan-archived" => "The plan is archived: it takes no new subscribers.",
            "plan-deleted" => "The plan was deleted.",
            "subscription-changed" => "The subscription was changed.",
            "platform-node-saved" => "The node's platform settings were saved.",
            "costs-refreshed" => "The cloud prices were read again from the providers.",
            _ => return None,
        };
        Some(text.to_owned())
    }
}

/// What a page shows above its content: a notice, or the error of the last form.
#[derive(Debug, Default, Serialize)]
pub struct Flash {
    pub notice: Option<String>,
    pub error: Option<WebError>,
}

impl Flash {
    /// A notice from `?done=`.
    #[must_use]
    pub fn from_done(done: &Done) -> Self {
        Self {
            notice: done.notice(),
            error: None,
        }
    }

    /// The error of a form.
    #[must_use]
    pub fn error(error: WebError) -> Self {
        Self {
            notice: None,
            error: Some(error),
        }
    }

    /// The status of the page: the error's, else 200.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.error.as_ref().map_or(StatusCode::OK, |e| e.status)
    }
}

/// Renders `template` for `user` with `status`.
///
/// # Errors
/// A template that fails to render.
pub async fn page(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    status: StatusCode,
    (title, active): (&str, &'static str),
    template: &str,
    data: &impl Serialize,
) -> WebResult<Response> {
    let (token, cookies) = csrf_of(web, browser)?;
    html(
        status,
        template,
        &user_layout(web, browser, (title, active), &token, user).await,
        data,
        cookies,
    )
}

/// `303` to `path?done=key`.
///
/// # Errors
/// Never for our paths.
pub fn done(path: &str, key: &str) -> WebResult<Response> {
    redirect(&format!("{path}?done={key}"), [])
}

/// `303` to `path` of organization `org` (none: the personal one) with the notice `done`.
///
/// # Errors
/// Never for our paths.
pub fn done_in(path: &str, org: &str, done: &str) -> WebResult<Response> {
    redirect(
        &format!(
            "{path}?{}",
            query(&[("organization_id", org), ("done", done)])
        ),
        [],
    )
}

/// `key=value` pairs as a query string (empty values left out).
#[must_use]
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

/// The caller's organizations (id, name, role) for the pickers.
///
/// # Errors
/// The API's error.
pub async fn organizations(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
) -> WebResult<Vec<OrgWithRole>> {
    read(web, browser, user, "/v1/organizations").await
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn only_known_notices_are_shown() {
        let done = |k: &str| Done {
            done: Some(k.into()),
        };
        assert!(done("invited").notice().is_some());
        assert!(done("<script>").notice().is_none());
        assert!(Done::default().notice().is_none());
    }

    fn layout() -> super::super::templates::Layout {
        super::super::templates::Layout {
            title: "T".into(),
            active: "account",
            csrf_token: "c".repeat(64),
            user: Some(super::super::templates::LayoutUser {
                id: "u1".into(),
                email: "ada@example.com".into(),
                name: "Ada".into(),
                is_admin: true,
            }),
            alerts_unread: Some(12),
            asset_version: "v1",
            billing_banners: Vec::new(),
        }
    }

    const XSS: &str = "<script>alert(1)</script>";

    /// A provision request as `GET /v1/provision/{id}` answers it, in `status`.
    fn provision_request(status: &str) -> Value {
        let made = status == "provisioned";
        json!({"id": "p1", "organization_id": "o1", "name": XSS, "provider": "hetzner",
            "region": "fsn1", "instance_type": "cx23", "image": "debian-12",
            "credential_id": "c1", "status": status, "status_message": XSS,
            "plan": null, "planned_at": "2026-01-01T00:00:00Z", "price_hourly": "0.0056",
            "price_monthly": XSS, "server_id": if made { json!("42") } else { json!(null) },
            "ipv4": "203.0.113.7", "ipv6": XSS, "node_id": if made { json!("n1") } else { json!(null) },
            "runs": [{"id": "r1", "kind": "plan", "status": "failed", "message": XSS,
                "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:01:00Z"},
                {"id": "r2", "kind": "apply", "status": "running", "message": null,
                "started_at": "2026-01-01T00:00:00Z", "finished_at": null}],
            "created_by": "u1", "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z"})
    }

    /// Sample data for the templates of these pages (the shared render test renders
    /// them with no data; this one with data that reaches every branch).
    fn samples() -> Vec<(&'static str, Value)> {
        let flash = json!({"notice": XSS, "error": {"code": "VALIDATION_ERROR", "message": XSS}});
        let node = json!({"id": "n1", "name": XSS, "hostname": "h", "status": "online",
            "cordoned": true, "agent_version": "0.1.0", "last_seen_at": "2026-01-01T00:00:00Z",
            "usage": {"cpu": 12.0, "memory": 50.0, "disk": 90.0}});
        let org = json!({"id": "o1", "name": XSS, "slug": "s", "personal": false,
            "require_mfa": true, "role": "owner", "created_at": "2026-01-01T00:00:00Z"});
        let user = json!({"id": "u2", "email": "b@example.com", "name": XSS, "is_admin": false,
            "suspended": true, "mfa_enabled": true, "created_at": "2026-01-01T00:00:00Z"});
        let pager = json!({"page": 2, "pages": 3, "total": 120, "prev": "/admin/users?page=1",
            "next": "/admin/users?page=3"});
        let rule_row = json!({"id": "r1", "organization_id": "o1", "name": XSS,
            "target_type": "node", "target_id": "n1", "metric": "cpu_usage", "operator": "gt",
            "threshold": 90.0, "duration_seconds": 60, "resolve_after_seconds": 60,
            "severity": "warn", "notify_in_app": true, "notify_email": true,
            "email_recipients": [XSS], "integration_ids": ["i1"], "cooldown_seconds": 0,
            "enabled": true, "created_by": "u1", "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z", "condition": XSS, "target": XSS,
            "channels": ["in-app", XSS]});
        let rule_choices = json!({"metrics": [{"value": "cpu_usage", "label": XSS},
                {"value": "network_rx", "label": "rx"}],
            "operators": [{"value": "gt", "label": ">"}, {"value": "lt", "label": "<"}],
            "severities": ["info", "warn", "critical"],
            "target_types": [{"value": "node", "label": "Node"}, {"value": "instance", "label": "Server"}],
            "nodes": [{"value": "n1", "label": XSS}, {"value": "n2", "label": "b"}],
            "servers": [{"value": "i1", "label": XSS}],
            "integrations": [{"value": "i1", "label": XSS}, {"value": "i2", "label": "b (slack)"}]});
        let rule_form = json!({"organization_id": "o1", "name": XSS, "target_type": "node",
            "target_id": "n1", "metric": "cpu_usage", "operator": "gt", "threshold": XSS,
            "duration_seconds": "60", "resolve_after_seconds": "60", "severity": "warn",
            "notify_in_app": true, "notify_email": true, "email_recipients": XSS,
            "cooldown_seconds": "0", "integration_ids": ["i1"], "enabled": true});
        let billing_plan = json!({"id": "p1", "name": XSS, "description": XSS, "currency": "usd",
            "price_month": 900, "price_year": 9000, "limits": {"servers": 1}, "pools": ["own"],
            "is_default": false, "archived": false});
        let billing_offer = json!({"id": "p1", "name": XSS, "description": XSS, "price": XSS,
            "limits": [XSS, "3 servers"], "current": true, "offered": true, "is_default": false});
        vec![
            (
                "alerts.html.tera",
                json!({"flash": flash, "organization_id": "o1", "organizations": [org, org],
                "state": "firing", "total": 3,
                "states": [{"state": "", "href": "/alerts", "current": false},
                    {"state": "firing", "href": "/alerts?state=firing", "current": true}],
                "alerts": [{"id": "a1", "organization_id": "o1", "rule_id": "r1",
                    "rule_name": XSS, "target_type": "node", "target_id": XSS, "node_id": null,
                    "metric": "cpu_usage", "severity": "warn", "state": "firing", "value": 95.0,
                    "message": XSS, "no_data": true, "pending_since": "2026-01-01T00:00:00Z",
                    "fired_at": "2026-01-01T00:05:00Z", "resolved_at": null,
                    "acked_by": "u1", "acked_at": "2026-01-01T00:06:00Z",
                    "silenced_until": "2026-01-01T01:06:00Z", "created_at": "2026-01-01T00:00:00Z"},
                    {"id": "a2", "organization_id": "o1", "rule_id": "r2", "rule_name": "",
                    "target_type": "instance", "target_id": "i1", "node_id": "n1",
                    "metric": "instance_down", "severity": "critical", "state": "resolved",
                    "value": null, "message": "m", "no_data": false,
                    "pending_since": "2026-01-01T00:00:00Z", "fired_at": null,
                    "resolved_at": "2026-01-01T00:09:00Z", "acked_by": null, "acked_at": null,
                    "silenced_until": null, "created_at": "2026-01-01T00:00:00Z"}]}),
            ),
            (
                "integrations.html.tera",
                json!({"flash": flash, "organization_id": "o1", "organizations": [org, org],
                "chosen": "discord", "name": XSS,
                "types": [{"id": "discord", "name": "Discord", "description": XSS,
                    "fields": [{"input": "config.discord.webhook_url", "id": "f-discord-webhook_url",
                        "label": "Webhook URL", "input_type": "password", "required": true,
                        "secret": true, "help": XSS, "value": ""}]},
                    {"id": "ntfy", "name": "ntfy", "description": "d",
                    "fields": [{"input": "config.ntfy.topic", "id": "f-ntfy-topic",
                        "label": "Topic", "input_type": "text", "required": false,
                        "secret": false, "help": "h", "value": XSS}]}],
                "integrations": [{"id": "i1", "organization_id": "o1", "name": XSS,
                    "type": "webhook", "enabled": true, "config": {"url": "https://x.example/"},
                    "secrets": {}, "has_signing_secret": true, "healthy": false,
                    "last_error": XSS, "last_delivery_at": "2026-01-01T00:05:00Z",
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
                    {"id": "i2", "organization_id": "o1", "name": "d", "type": "discord",
                    "enabled": false, "config": {}, "secrets": {"webhook_url": XSS},
                    "has_signing_secret": false, "healthy": true, "last_error": null,
                    "last_delivery_at": null, "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z"}],
                "new_secret": {"id": "i1", "name": XSS, "secret": "whsec_x"},
                "test": {"id": "i2", "name": XSS, "delivered": false, "status": 500,
                    "body": XSS, "latency_ms": 12, "error": XSS}}),
            ),
            (
                "integrations.html.tera",
                json!({"test": {"id": "i2", "name": "", "delivered": true, "status": null,
                    "body": "", "latency_ms": 1, "error": null},
                    "integrations": [], "new_secret": {"id": "i1", "name": XSS, "secret": "whsec_x"}}),
            ),
            (
                "credentials.html.tera",
                json!({"flash": flash, "error_field": "name", "organization_id": "o1",
                "organizations": [org, org], "chosen": "hetzner", "name": XSS, "is_default": true,
                "credentials": [{"id": "c1", "organization_id": "o1", "name": XSS,
                    "provider": "aws", "provider_name": XSS, "config": {}, "hints": {},
                    "public": [{"label": XSS, "value": XSS}],
                    "secrets": [{"label": "Secret access key", "value": XSS}],
                    "is_default": true, "verified_at": "2026-01-01T00:00:00Z",
                    "verified_ok": false, "verified_message": XSS, "created_by": "u1",
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
                    {"id": "c2", "organization_id": "o1", "name": "b", "provider": "hetzner",
                    "provider_name": "Hetzner Cloud", "config": {}, "hints": {}, "public": [],
                    "secrets": [], "is_default": false, "verified_at": "2026-01-01T00:00:00Z",
                    "verified_ok": true, "verified_message": null, "created_by": null,
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
                    {"id": "c3", "organization_id": "o1", "name": "c", "provider": "steam",
                    "provider_name": "Steam Web API", "config": {}, "hints": {}, "public": [],
                    "secrets": [], "is_default": false, "verified_at": null,
                    "verified_ok": null, "verified_message": null, "created_by": null,
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}],
                "providers": [{"id": "hetzner", "name": XSS, "fields": [{"input": "config.hetzner.token",
                    "id": "f-hetzner-token", "label": XSS, "required": true, "secret": true,
                    "multiline": false, "value": "", "error": XSS}]},
                    {"id": "oci", "name": "OCI", "fields": [{"input": "config.oci.region",
                    "id": "f-oci-region", "label": "Region", "required": false, "secret": false,
                    "multiline": false, "value": XSS, "error": null},
                    {"input": "config.oci.private_key", "id": "f-oci-private_key", "label": "Key",
                    "required": true, "secret": true, "multiline": true, "value": "", "error": null},
                    {"input": "config.oci.notes", "id": "f-oci-notes", "label": "Notes",
                    "required": false, "secret": false, "multiline": true, "value": XSS, "error": XSS}]}],
                "verify": {"id": "c1", "name": XSS, "ok": false, "status": 401, "message": XSS}}),
            ),
            (
                "credentials.html.tera",
                json!({"flash": {"notice": null, "error": {"code": "VALIDATION_ERROR",
                    "message": XSS, "field": "provider"}}, "error_field": "provider",
                "credentials": [], "providers": [],
                "verify": {"id": "c1", "name": "", "ok": true, "status": null, "message": XSS}}),
            ),
            (
                "provision.html.tera",
                json!({"flash": flash, "organization_id": "o1", "organizations": [org, org],
                "requests": [provision_request("planned"), provision_request("provisioned"),
                    provision_request("failed")]}),
            ),
            (
                "provision_new.html.tera",
                json!({"flash": {"notice": null, "error": {"code": "VALIDATION_ERROR",
                    "message": XSS, "field": "name"}}, "error_field": "name",
                "organizations": [org, org],
                "providers": [{"id": "hetzner", "name": XSS, "default_image": "debian-12",
                    "available": true, "note": null},
                    {"id": "aws", "name": "AWS", "default_image": "debian-12",
                    "available": true, "note": XSS}],
                "chosen": {"id": "hetzner", "name": XSS, "default_image": "debian-12",
                    "available": true, "note": XSS},
                "regions": [{"id": "fsn1", "name": XSS}, {"id": "nbg1", "name": "Nuremberg"}],
                "currency": "EUR",
                "types": [{"name": "cx23", "vcpus": 2, "memory": "4 GB", "disk_gb": 40,
                    "architecture": "x86", "hourly": "0.0056", "monthly": "3.49",
                    "available": true, "unavailable": null},
                    {"name": "cax11", "vcpus": 2, "memory": "4 GB", "disk_gb": null,
                    "architecture": "arm64", "hourly": "0.0064", "monthly": "3.99",
                    "available": false, "unavailable": XSS}],
                "credentials": [{"id": "c1", "organization_id": "o1", "name": XSS,
                    "provider": "hetzner", "config": {}, "hints": {}, "is_default": true,
                    "verified_at": null, "verified_ok": null, "verified_message": null,
                    "created_by": null, "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z"}],
                "pricing_error": XSS,
                "form": {"organization_id": "o1", "provider": "hetzner", "region": "fsn1",
                    "credential_id": "", "instance_type": "cx23", "name": XSS, "image": XSS}}),
            ),
            (
                "provision_new.html.tera",
                json!({"flash": flash, "error_field": "instance_type", "credentials": [],
                "types": [], "chosen": null,
                "form": {"organization_id": "", "provider": "", "region": "",
                    "credential_id": "", "instance_type": "", "name": "", "image": ""}}),
            ),
            (
                "provision_request.html.tera",
                json!({"flash": flash, "error_field": "", "running": true, "currency": "EUR",
                "request": provision_request("planned"),
                "plan": {"terraform_version": "1.9.8",
                    "counts": [{"action": "create", "count": 3}],
                    "changes": [{"address": XSS, "kind": "hcloud_server", "action": "create"}]},
                "log": {"kind": "plan", "status": "running", "next": 2, "done": false,
                    "lines": [{"seq": 1, "level": "info", "text": XSS},
                        {"seq": 2, "level": "", "text": "raw"}]},
                "resize_types": []}),
            ),
            (
                "provision_request.html.tera",
                json!({"flash": {"notice": null, "error": {"code": "VALIDATION_ERROR",
                    "message": XSS, "field": "instance_type"}}, "error_field": "instance_type",
                "running": false, "currency": "EUR",
                "request": provision_request("provisioned"), "plan": null,
                "log": {"kind": null, "status": null, "next": 0, "done": true, "lines": []},
                "resize_types": [{"name": "cx33", "vcpus": 4, "memory": "8 GB", "disk_gb": 80,
                    "architecture": "x86", "hourly": "0.0088", "monthly": XSS,
                    "available": true, "unavailable": null}]}),
            ),
            (
                "provision_request.html.tera",
                json!({"flash": flash, "running": false, "request": provision_request("failed"),
                    "log": {"kind": "apply", "status": "failed", "next": 0, "done": true,
                        "lines": []}}),
            ),
            (
                "dns_index.html.tera",
                json!({"organization_id": "o1", "organizations": [org, org],
                "credentials": [{"id": "c1", "name": XSS, "provider": "powerdns",
                    "provider_name": "PowerDNS", "is_default": true}]}),
            ),
            (
                "dns_zone.html.tera",
                json!({"organization_id": "o1", "zone_id": "example.com.",
                "credential": {"id": "c1", "name": XSS, "provider": "powerdns",
                    "provider_name": "PowerDNS", "is_default": false},
                "nodes": [{"id": "n1", "name": XSS}]}),
            ),
            (
                "deploy_gallery.html.tera",
                json!({"flash": {"notice": XSS, "error": {"code": "VALIDATION_ERROR",
                    "message": XSS, "field": "variables.GREETING"}},
                "error_field": "variables_GREETING", "organization_id": "o1",
                "organizations": [org], "is_admin": true, "shows_testing": true,
                "form": {"template": "busybox-test", "name": XSS, "subdomain": XSS,
                    "var_GREETING": XSS},
                "categories": [{"name": XSS, "templates": [{"id": "busybox-test", "name": XSS,
                    "description": XSS, "category": XSS, "dns_srv_service": XSS,
                    "images": [{"label": XSS, "image": XSS}],
                    "variables": [{"name": XSS, "env_variable": "GREETING",
                        "default_value": XSS, "rules": XSS, "user_editable": true},
                        {"name": XSS, "env_variable": "LOCKED", "default_value": XSS,
                        "rules": XSS, "user_editable": false}]}]}],
                "recent": [{"id": "d1", "organization_id": "o1", "template": XSS, "name": XSS,
                    "status": "failed", "steps": [], "variables": {}, "node_id": null,
                    "subdomain": null, "workload_id": null, "instance_id": null,
                    "dns_record_id": null, "error": XSS, "created_by": "u1",
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}]}),
            ),
            (
                "deploy_gallery.html.tera",
                json!({"flash": {"notice": XSS, "error": null}, "error_field": "",
                "organization_id": "", "organizations": [], "form": {}, "categories": [],
                "recent": [], "is_admin": false, "shows_testing": false}),
            ),
            (
                "deploy_deployment.html.tera",
                json!({"refresh_secs": 2, "deployment": {"id": "d1", "organization_id": "o1",
                    "template": XSS, "name": XSS, "status": "running",
                    "steps": [{"name": "workload", "status": "succeeded", "message": XSS,
                        "started_at": "2026-01-01T00:00:00Z",
                        "finished_at": "2026-01-01T00:00:01Z"},
                        {"name": "limits", "status": "running", "message": null,
                        "started_at": "2026-01-01T00:00:01Z", "finished_at": null}],
                    "variables": {"GREETING": XSS}, "node_id": "n1", "subdomain": XSS,
                    "workload_id": "w1", "instance_id": null, "dns_record_id": null,
                    "error": null, "created_by": "u1", "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z"}}),
            ),
            (
                "deploy_deployment.html.tera",
                json!({"refresh_secs": null, "deployment": {"id": "d1", "organization_id": "o1",
                    "template": XSS, "name": XSS, "status": "succeeded",
                    "steps": [{"name": "dns", "status": "skipped", "message": XSS,
                        "started_at": null, "finished_at": null}],
                    "variables": {}, "node_id": null, "subdomain": null,
                    "workload_id": "w1", "instance_id": "i1", "dns_record_id": null,
                    "error": XSS, "created_by": "u1", "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z"}}),
            ),
            (
                "dns_auto.html.tera",
                json!({"organization_id": "o1", "organizations": [org],
                "credentials": [{"id": "c1", "name": XSS, "provider": "cloudflare",
                    "provider_name": "Cloudflare", "is_default": false}]}),
            ),
            (
                "alert_maintenance.html.tera",
                json!({"flash": flash, "organization_id": "o1", "organizations": [org, org],
                "windows": [{"id": "w1", "organization_id": "o1", "target_type": "node",
                    "target_id": "n1", "target_name": XSS, "starts_at": "2026-01-01T00:00:00Z",
                    "ends_at": "2026-01-01T01:00:00Z", "reason": XSS, "active": true,
                    "created_by": "u1", "created_at": "2026-01-01T00:00:00Z"},
                    {"id": "w2", "organization_id": "o1", "target_type": "instance",
                    "target_id": null, "target_name": "every server",
                    "starts_at": "2026-01-02T00:00:00Z", "ends_at": "2026-01-02T01:00:00Z",
                    "reason": "", "active": false, "created_by": null,
                    "created_at": "2026-01-01T00:00:00Z"}],
                "targets": [{"value": "node:", "label": "Every node"},
                    {"value": "node:n1", "label": XSS}],
                "durations": [[30, "30 minutes"], [60, "1 hour"]],
                "form": {"organization_id": "o1", "target": "node:n1", "duration_minutes": "60",
                    "reason": XSS}}),
            ),
            (
                "alert_rules.html.tera",
                json!({"flash": flash, "error_field": "threshold", "organization_id": "o1",
                "organizations": [org, org], "total": 120,
                "rules": [rule_row, {"id": "r2", "name": "b", "condition": "node_offline for 0 s",
                    "target": "every node", "severity": "critical", "channels": [], "enabled": false}],
                "choices": rule_choices, "form": rule_form,
                "action": "/alerts/rules", "submit": "Create rule"}),
            ),
            (
                "alert_rules.html.tera",
                json!({"flash": {"notice": XSS, "error": null}, "error_field": "",
                "rules": [], "choices": rule_choices,
                "form": {"name": XSS, "target_type": "instance", "target_id": "", "metric": "disk_usage",
                    "operator": "gt", "threshold": "1", "duration_seconds": "", "resolve_after_seconds": "",
                    "severity": "info", "notify_in_app": false, "notify_email": false,
                    "email_recipients": "", "cooldown_seconds": "", "integration_ids": [], "enabled": false}}),
            ),
            (
                "alert_rule.html.tera",
                json!({"flash": flash, "error_field": "email_recipients", "organization_id": "o1",
                "rule": rule_row, "choices": rule_choices, "form": rule_form,
                "action": "/alerts/rules/r1", "submit": "Save",
                "recent": {"kind": "single", "threshold": "> 90%", "latest": "93.0%", "peak": "95.5%",
                    "samples": 3, "beyond": 2, "chart": {"points": "0,160 600,10", "threshold_y": "16.0", "top": "100.0%"},
                    "targets": [], "alerts": [], "note": XSS}}),
            ),
            (
                "alert_rule.html.tera",
                json!({"flash": {"notice": null, "error": null}, "error_field": "",
                "rule": rule_row, "choices": rule_choices, "form": rule_form,
                "recent": {"kind": "every", "threshold": "> 90%", "latest": null, "peak": null,
                    "samples": 0, "beyond": 0, "chart": null, "alerts": [], "note": null,
                    "targets": [{"id": "n1", "name": XSS, "href": "/nodes/n1", "latest": "95.0%", "beyond": true},
                        {"id": "n2", "name": "", "href": "/nodes/n2", "latest": "5.0%", "beyond": false}]}}),
            ),
            (
                "alert_rule.html.tera",
                json!({"flash": flash, "error_field": "name",
                "rule": rule_row, "choices": rule_choices, "form": rule_form,
                "recent": {"kind": "events", "threshold": "", "latest": null, "peak": null,
                    "samples": 0, "beyond": 0, "chart": null, "targets": [], "note": null,
                    "alerts": [{"id": "a1", "organization_id": "o1", "rule_id": "r1",
                    "target_type": "node", "target_id": XSS, "node_id": null,
                    "metric": "node_offline", "severity": "warn", "state": "resolved", "value": 1.0,
                    "message": XSS, "no_data": false, "pending_since": "2026-01-01T00:00:00Z",
                    "fired_at": "2026-01-01T00:05:00Z", "resolved_at": "2026-01-01T00:09:00Z",
                    "acked_by": null, "acked_at": null, "silenced_until": null,
                    "created_at": "2026-01-01T00:00:00Z"}]}}),
            ),
            (
                "alert_rule.html.tera",
                json!({"flash": flash, "error_field": "",
                "rule": rule_row, "choices": rule_choices, "form": rule_form,
                "recent": {"kind": "events", "threshold": "", "latest": null, "peak": null,
                    "samples": 0, "beyond": 0, "chart": null, "targets": [], "note": XSS, "alerts": []}}),
            ),
            (
                "nodes.html.tera",
                json!({"flash": flash, "nodes": [node, {"id": "n2", "name": "b",
                "hostname": "h", "status": "offline", "cordoned": false, "agent_version": "",
                "last_seen_at": null}], "organizations": [org],
                "registration": {"token": "shardlyn_reg_x", "expires_at": "2026-01-01T00:00:00Z",
                    "command": "shardlyn-agent register --panel http://x --token t && shardlyn-agent run",
                    "install_command": "curl -fsSL http://x/install-agent.sh | sh -s -- --token t"}}),
            ),
            (
                "node.html.tera",
                json!({"flash": flash, "node": node,
                "system": {"os": "Debian", "os_version": "13", "kernel": "6", "arch": "x86_64",
                    "cpu_count": 2, "cpu_brand": XSS, "memory_total": "1.0 GiB",
                    "load_average": {"one": 0.5, "five": 0.25, "fifteen": 0.1}},
                "disks": [{"mount_point": "/", "name": "sda", "file_system": "ext4",
                    "used": "60 B", "total": "100 B"}],
                "inventory_error": XSS, "range": "1h", "ranges": ["1h", "24h", "7d"],
                "charts": [{"id": "cpu", "title": "CPU", "points": "0,160 600,80", "latest": 50.0, "peak": 100.0},
                           {"id": "disk", "title": "Disk", "points": "", "latest": null, "peak": null}],
                "drained": {"instances": 2, "stopped": [{"id": "i1"}], "failed": [{"id": "i2", "error": XSS}]},
                "rebuilt": {"migrations": [{"id": "m1", "instance_id": "i1", "target_node_id": XSS,
                    "state": "queued", "from_backup": {"backup_id": "b1", "taken_at": "2026-01-01T00:00:00Z"}}],
                    "unplaced": [{"instance_id": "i2", "reason": XSS}]},
                "cloud": {"power": {"status": "running", "provider": "hetzner", "server_id": XSS, "provision_request_id": XSS},
                    "power_error": XSS, "firewall_error": XSS,
                    "firewall": {"provider": "hetzner", "firewall_id": "7", "sync_error": XSS, "synced_at": null,
                        "data": [{"id": "f1", "protocol": "tcp", "port_start": 27015, "port_end": 27020,
                            "source": ["0.0.0.0/0", XSS], "description": XSS, "instance_id": "i1",
                            "created_at": "2026-01-01T00:00:00Z"}]}},
                "shells": {"ssh": true, "terminal": true, "total": 3, "recordings": [
                    {"id": "r1", "kind": "ssh", "login": XSS, "command": XSS, "user_email": XSS,
                    "started_at": "2026-01-01T00:00:00Z", "state": "ended", "end_reason": "exit",
                    "exit_status": 0, "size": "1.0 KiB", "truncated": true,
                    "href": "/nodes/n1/recordings/r1/cast"},
                    {"id": "r2", "kind": "terminal", "login": null, "command": null,
                    "user_email": "a@b.c", "started_at": "2026-01-01T00:00:00Z", "state": "live",
                    "end_reason": null, "exit_status": null, "size": "0 B", "truncated": false,
                    "href": "/nodes/n1/recordings/r2/cast"}]}}),
            ),
            (
                "admin_ssh.html.tera",
                json!({"flash": flash, "algorithms": ["ed25519", "ecdsa-p256", "rsa-3072", "rsa-4096"],
                "keys": [{"id": "k1", "algorithm": "ed25519", "fingerprint": XSS, "active": true, "trusted": true,
                    "created_at": "2026-01-01T00:00:00Z", "trusted_until": null},
                    {"id": "k2", "algorithm": "ecdsa-p256", "fingerprint": "SHA256:x", "active": false,
                    "trusted": true, "created_at": "2026-01-01T00:00:00Z", "trusted_until": "2026-01-02T00:00:00Z"}],
                "certificates": [{"id": "c1", "serial_number": "42", "key_id": XSS,
                    "valid_before": "2026-01-01T00:00:00Z", "state": "active"}]}),
            ),
            (
                "workloads.html.tera",
                json!({"flash": flash, "organizations": [org], "organization_id": "o1",
                "workloads": [{"id": "w1", "name": XSS, "author": "a", "source": "egg",
                    "images": [{"label": "Java", "image": "img"}], "variable_count": 2,
                    "created_at": "2026-01-01T00:00:00Z"}],
                "egg": XSS, "egg_error": XSS,
                "rows": [{"path": "variables[0]", "anchor": "egg-field-variables-0-", "summary": XSS, "error": XSS},
                         {"path": "name", "anchor": "egg-field-name", "summary": "n", "error": null}]}),
            ),
            (
                "orgs.html.tera",
                json!({"flash": flash, "organizations": [org], "name": XSS}),
            ),
            (
                "org.html.tera",
                json!({"flash": flash, "org": org, "me": "u1", "email": XSS,
                "roles": ["owner", "admin", "operator", "viewer"],
                "members": [{"user_id": "u1", "email": "a@b.c", "name": XSS, "role": "owner",
                    "joined_at": "2026-01-01T00:00:00Z"}],
                "invites": [{"id": "i1", "email": XSS, "role": "viewer",
                    "expires_at": "2026-01-01T00:00:00Z"}]}),
            ),
            (
                "org_member.html.tera",
                json!({"flash": flash, "org": org,
                "member": {"user_id": "u2", "email": "b@c.d", "name": XSS, "role": "viewer"},
                "keys": [{"key": "instances.sftp", "description": XSS, "effective": true,
                    "overridden": true, "set": "granted"},
                    {"key": "nodes.update", "description": "d", "effective": false,
                    "overridden": null, "set": "default"}]}),
            ),
            (
                "account.html.tera",
                json!({"flash": flash,
                "me": {"email": "a@b.c", "is_admin": true},
                "mfa": {"enabled": true, "recovery_codes_remaining": 9},
                "tokens": [{"id": "t1", "name": XSS, "prefix": "abcd1234", "expires_at": null,
                    "last_used_at": "2026-01-01T00:00:00Z"}],
                "sessions": [{"id": "s1", "ip": "127.0.0.1", "user_agent": XSS, "current": true,
                    "created_at": "2026-01-01T00:00:00Z", "last_seen_at": "2026-01-01T00:00:00Z"},
                    {"id": "s2", "ip": null, "user_agent": null, "current": false,
                    "created_at": "2026-01-01T00:00:00Z", "last_seen_at": "2026-01-01T00:00:00Z"}],
                "enroll": {"qr": "data:image/svg+xml;base64,PHN2Zy8+", "secret": "JBSWY3DP",
                    "otpauth_uri": "otpauth://totp/x"},
                "verify_again": false, "recovery_codes": ["abcd-efgh", XSS],
                "new_token": {"name": XSS, "token": "shardlyn_api_x"},
                "certificates": [{"id": "c1", "serial_number": "42", "principals": [XSS],
                    "valid_before": "2026-01-01T00:00:00Z", "state": "active", "revoked_reason": XSS}],
                "new_certificate": {"serial_number": "42", "valid_before": "2026-01-01T00:00:00Z",
                    "principals": [XSS], "certificate": XSS}}),
            ),
            (
                "admin_users.html.tera",
                json!({"flash": flash, "users": [user], "q": XSS,
                "pager": pager, "me": "u1"}),
            ),
            ("invite.html.tera", json!({"flash": flash, "token": "ab12"})),
            (
                "admin_orgs.html.tera",
                json!({"organizations": [org], "pager": pager}),
            ),
            (
                "admin_audit.html.tera",
                json!({"flash": flash,
                "filters": {"action": XSS, "actor": "", "since": "2026-01-01T00:00", "until": ""},
                "entries": [{"at": "2026-01-01T00:00:00Z", "actor_email": null, "action": XSS,
                    "method": "POST", "path": "/v1/x", "target": "t", "ip": "1.2.3.4",
                    "status": 200, "result": "success"}],
                "pager": pager, "live": true}),
            ),
            (
                "admin_replicas.html.tera",
                json!({"clustered": true, "replicas": [{"id": XSS, "url": XSS, "version": XSS,
                    "started_at": "2026-01-01T00:00:00Z", "this": true, "runs_jobs": true,
                    "agents": [{"node_id": XSS, "name": XSS}, {"node_id": "n2", "name": null}]}]}),
            ),
            (
                "admin_system_backup.html.tera",
                json!({"schedule": XSS, "next_run_at": "2026-01-02T03:00:00Z", "keep": 7,
                "destination": {"kind": "s3", "path": null, "bucket": XSS, "endpoint": XSS,
                    "region": XSS, "prefix": XSS, "access_key_id": XSS, "secret_access_key_set": true},
                "encryption": {"kind": "recipients", "recipients": [XSS, "age1x"]},
                "runs": [{"id": XSS, "trigger": "schedule", "status": "succeeded",
                    "started_at": "2026-01-01T03:00:00Z", "finished_at": "2026-01-01T03:00:02Z",
                    "bytes": 24457, "location": XSS, "error": null},
                    {"id": "r2", "trigger": "cli", "status": "failed",
                    "started_at": "2026-01-01T02:00:00Z", "finished_at": "2026-01-01T02:00:01Z",
                    "bytes": null, "location": null, "error": XSS}]}),
            ),
            (
                "billing.html.tera",
                json!({"flash": flash, "organization_id": "o1", "organizations": [org, org],
                "billing_enabled": true, "interval": "year", "price": XSS,
                "subscription": {"billing_enabled": true, "organization_id": "o1", "unlimited": true,
                    "plan": billing_plan, "status": "past_due", "interval": "year",
                    "current_period_end": "2026-02-01T00:00:00Z", "cancel_at_period_end": true,
                    "past_due_since": "2026-01-01T00:00:00Z", "grace_ends_at": "2026-01-08T00:00:00Z",
                    "suspended_at": null},
                "usage": [{"limit": "servers", "label": "Servers", "cap": 1, "usage": 2, "over": true,
                    "bar": 1, "over_text": XSS},
                    {"limit": "memory_mb", "label": "Memory (MB)", "cap": null, "usage": 512,
                    "over": false, "bar": 0, "over_text": null}],
                "plans": [billing_offer, {"id": "plan-free", "name": "Free", "description": "",
                    "price": "free", "limits": [], "current": false, "is_default": true}],
                "invoices": [{"id": "in_1", "number": XSS, "status": "paid", "currency": "usd",
                    "amount_due": 900, "amount_paid": 900, "created": "2026-01-01T00:00:00Z",
                    "hosted_invoice_url": "https://x/i", "invoice_pdf": "https://x/p",
                    "amount_due_text": "USD 9.00", "amount_paid_text": "USD 9.00"}],
                "invoices_error": XSS,
                "costs": {"organization_id": "o1", "month": "2026-01", "as_of": "2026-01-02T00:00:00Z",
                    "currency": null, "total": null,
                    "totals": [{"currency": "eur", "total": "1.0000"}, {"currency": "usd", "total": XSS}],
                    "by_node": [{"id": "c1", "node_id": "n1", "node_name": XSS, "provision_request_id": null,
                        "provider": "hetzner", "instance_type": "cx22", "location": "fsn1",
                        "currency": "eur", "hours": 3, "hourly": "0.0060", "monthly_cap": "3.7900",
                        "cost": "0.0180", "running": true, "deleted": false,
                        "started_at": "2026-01-01T00:00:00Z", "ended_at": null}],
                    "by_provider": [{"provider": XSS, "currency": "eur", "cost": "0.0180"}]},
                "forecast": {"organization_id": "o1", "month": "2026-01", "currency": "eur",
                    "cost_to_date": "0.0180", "forecast": XSS, "totals": [], "by_node": [],
                    "by_provider": []}}),
            ),
            (
                "billing.html.tera",
                json!({"flash": {"notice": XSS, "error": null}, "billing_enabled": true,
                "interval": "month", "usage": [], "plans": [], "invoices": [],
                "subscription": {"billing_enabled": true, "plan": billing_plan,
                    "status": "active", "interval": "month", "current_period_end": null,
                    "cancel_at_period_end": false, "past_due_since": null, "grace_ends_at": null,
                    "suspended_at": "2026-01-01T00:00:00Z", "unlimited": false}}),
            ),
            (
                "billing.html.tera",
                json!({"flash": {"notice": XSS, "error": null}, "billing_enabled": false,
                "costs_error": XSS}),
            ),
            (
                "billing_leave.html.tera",
                json!({"url": format!("https://checkout.example/{XSS}"), "to": "checkout"}),
            ),
            (
                "billing_return.html.tera",
                json!({"outcome": "success", "organization_id": "o1", "settled": false,
                "refresh": "/billing/success?tries=1", "refresh_secs": 3, "gave_up": false,
                "subscription": {"plan": billing_plan, "status": XSS}}),
            ),
            (
                "billing_return.html.tera",
                json!({"outcome": "success", "settled": true, "gave_up": false,
                "subscription": {"plan": {"id": "p", "name": XSS}, "status": "active"}}),
            ),
            (
                "admin_plans.html.tera",
                json!({"flash": flash, "error_field": "price_month", "billing_enabled": false,
                "editing": "p1",
                "plans": [{"id": "p1", "name": XSS, "description": XSS, "currency": "usd",
                    "price_month": 900, "price_year": 9000, "price_month_text": "USD 9.00",
                    "price_year_text": "USD 90.00", "limits": {"servers": 3, "memory_mb": null,
                        "cpu_percent": 200, "disk_mb": null, "nodes": 1,
                        "backups_per_server": null, "members": 5},
                    "pools": ["own", "platform"], "is_default": false, "archived": true,
                    "stripe_price_month": XSS, "stripe_price_year": null, "subscribers": 2}],
                "form": {"name": XSS, "description": "", "currency": "usd", "price_month": "x",
                    "price_year": "", "stripe_price_month": "", "stripe_price_year": "",
                    "pool_own": "on", "pool_platform": "", "is_default": "", "archived": "on"},
                "limit_inputs": [{"name": "servers", "label": "Servers", "value": "3", "error": XSS},
                    {"name": "members", "label": "Members", "value": "", "error": null}]}),
            ),
            (
                "admin_subscriptions.html.tera",
                json!({"flash": flash,
                "plans": [{"id": "p1", "name": XSS}],
                "subscriptions": [{"id": "s1", "organization_id": "o1", "organization_name": XSS,
                    "plan_id": "p1", "plan_name": XSS, "status": "past_due", "interval": "month",
                    "current_period_end": "2026-01-01T00:00:00Z", "cancel_at_period_end": true,
                    "past_due_since": "2026-01-01T00:00:00Z", "suspended_at": null,
                    "stripe_customer_id": "cus_1", "stripe_subscription_id": "sub_1",
                    "synced_at": "2026-01-01T00:00:00Z", "drift": XSS},
                    {"id": "s2", "organization_id": "o2", "organization_name": null, "plan_id": null,
                    "plan_name": null, "status": "active", "interval": "year",
                    "cancel_at_period_end": false, "suspended_at": "2026-01-01T00:00:00Z"}]}),
            ),
            (
                "admin_platform_nodes.html.tera",
                json!({"flash": flash,
                "nodes": [{"id": "n1", "name": XSS, "status": "online", "platform": true,
                    "public_name": XSS, "location": "Frankfurt", "public_ipv4": "203.0.113.1",
                    "organization_name": XSS, "capacity": {"memory_total_mb": 4096,
                    "memory_used_mb": 1024, "disk_total_mb": null, "disk_used_mb": 10,
                    "cpu_used_percent": 50, "instances": 4, "tenants": 2}},
                    {"id": "n2", "name": "b", "platform": false, "public_name": null,
                    "location": null, "organization_name": "o"}]}),
            ),
            (
                "instance_access.html.tera",
                json!({"flash": flash, "error_for": "add", "error_field": "email",
                "instance": {"id": "i1", "name": XSS, "organization_id": "o1"},
                "grants": [{"user_id": "u2", "email": XSS, "name": XSS,
                    "since": "2026-01-01T00:00:00Z",
                    "keys": [{"key": "instances.console", "description": XSS, "checked": true},
                        {"key": "instances.power", "description": "", "checked": false}],
                    "error": {"code": "VALIDATION_ERROR", "message": XSS}},
                    {"user_id": "u3", "email": "c@d.e", "name": "", "since": null,
                    "keys": [], "error": null}],
                "add": {"email": XSS, "keys": [{"key": "instances.read", "description": XSS,
                    "checked": true}]}}),
            ),
            (
                "instance_access.html.tera",
                json!({"flash": {"notice": XSS, "error": {"code": "VALIDATION_ERROR",
                    "message": XSS, "field": "permissions"}},
                "error_for": "add", "error_field": "permissions",
                "instance": {"id": "i1", "name": XSS, "organization_id": "o1"},
                "grants": [], "add": {"email": "", "keys": []}}),
            ),
            (
                "admin_pterodactyl.html.tera",
                json!({"flash": flash, "error_field": "port",
                "form": {"mode": "database", "url": XSS, "host": XSS, "port": "3306",
                    "database": XSS, "username": XSS, "root_admins": true,
                    "files_username": XSS, "switch_over": true},
                "check": {"mode": "database", "counts": {"locations": 1, "nodes": 2, "eggs": 3,
                    "users": 4, "servers": 5, "subusers": 6, "schedules": 7}, "warnings": [XSS]},
                "servers": [{"uuid": "s-1", "identifier": "s1", "name": XSS, "owner_email": XSS,
                    "node": XSS, "egg": XSS, "memory_mb": 1024, "disk_mb": 2048, "cpu": 0,
                    "ports": [25565, 25566], "importable": true, "reason": null,
                    "already_imported": true, "instance_id": "i1", "checked": true},
                    {"uuid": "s-2", "identifier": "s2", "name": "b", "owner_email": null,
                    "node": null, "egg": null, "memory_mb": 0, "disk_mb": 0, "cpu": 150,
                    "ports": [], "importable": false, "reason": XSS,
                    "already_imported": false, "instance_id": null, "checked": false}],
                "imports": [{"id": "imp1", "mode": "api", "source": XSS, "status": "running",
                    "dry_run": true, "phase": XSS, "counts": {"planned": 3, "imported": 1,
                        "exists": 0, "skipped": 1, "failed": 0},
                    "error": XSS, "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z", "finished_at": null, "items": []},
                    {"id": "imp2", "mode": "database", "source": "db", "status": "failed",
                    "dry_run": false, "phase": "", "counts": {"planned": 0, "imported": 0,
                        "exists": 0, "skipped": 0, "failed": 0}, "error": null,
                    "created_at": null}]}),
            ),
            (
                "admin_pterodactyl.html.tera",
                json!({"flash": {"notice": XSS, "error": {"code": "VALIDATION_ERROR",
                    "message": XSS, "field": "servers"}}, "error_field": "servers",
                "form": {"mode": "api", "url": "https://p", "host": "", "port": "",
                    "database": "", "username": "", "root_admins": false,
                    "files_username": "", "switch_over": false},
                "check": null, "servers": [], "imports": []}),
            ),
            (
                "admin_pterodactyl_import.html.tera",
                json!({"running": true, "refresh": "/admin/pterodactyl/imports/imp1",
                "refresh_secs": 2,
                "import": {"id": "imp1", "mode": "database", "source": XSS, "status": "running",
                    "dry_run": true, "phase": XSS, "counts": {"planned": 3, "imported": 1,
                        "exists": 1, "skipped": 1, "failed": 1},
                    "error": XSS, "created_at": "2026-01-01T00:00:00Z",
                    "updated_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:01:00Z",
                    "items": []},
                "groups": [{"kind": "server", "heading": "Servers → instances", "items": [
                    {"kind": "server", "source_uuid": "s-1", "name": XSS, "status": "imported",
                    "target_id": "i1", "message": XSS, "detail": {"note": XSS}},
                    {"kind": "server", "source_uuid": "s-2", "name": "b", "status": "skipped",
                    "target_id": null, "message": null, "detail": null}]},
                    {"kind": "user", "heading": "Users", "items": [
                    {"kind": "user", "source_uuid": "u-1", "name": "c", "status": "clash",
                    "target_id": null, "message": "", "detail": {}}]}]}),
            ),
            (
                "admin_pterodactyl_import.html.tera",
                json!({"running": false, "refresh": null, "refresh_secs": 2,
                "import": {"id": "imp1", "mode": "api", "source": XSS, "status": "succeeded",
                    "dry_run": true, "phase": "", "counts": {"planned": 0, "imported": 0,
                        "exists": 0, "skipped": 0, "failed": 0},
                    "error": null, "created_at": null, "finished_at": null},
                "groups": []}),
            ),
        ]
    }

    #[test]
    fn these_pages_render_with_sample_data_and_escape_it() {
        for (name, data) in samples() {
            let html = super::super::templates::render(name, &layout(), &data)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(html.contains("<html"), "{name} extends the layout");
            assert!(!html.contains("<script>alert"), "{name} escapes its data");
            assert!(html.contains("&lt;script&gt;"), "{name} shows its data");
            assert!(
                !html.contains(" style="),
                "{name}: inline styles break the CSP"
            );
            assert!(
                !html.contains("<script>"),
                "{name}: inline scripts break the CSP"
            );
            assert!(
                !html.contains(" onclick="),
                "{name}: inline handlers break the CSP"
            );
            // With no data at all (as the shared render test does) it still renders.
            super::super::templates::render(name, &layout(), &json!({}))
                .unwrap_or_else(|e| panic!("{name} without data: {e}"));
        }
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            query(&[("action", "a&b"), ("actor", ""), ("page", "2")]),
            "action=a%26b&page=2"
        );
    }
}
