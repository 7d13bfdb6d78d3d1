//! The page templates of `templates/web/`, embedded at compile time and parsed once, and
//! the one helper that renders a page: the layout's variables ([`Layout`]) plus the
//! page's own `Serialize` struct. Autoescape is on for every template, so anything
//! interpolated is escaped.

use std::sync::LazyLock;

use serde::Serialize;

/// Every template, by the name `{% extends %}` and [`render`] use.
pub const FILES: &[(&str, &str)] = &[
    (
        "base.html.tera",
        include_str!("../../../templates/web/base.html.tera"),
    ),
    (
        "error.html.tera",
        include_str!("../../../templates/web/error.html.tera"),
    ),
    (
        "login.html.tera",
        include_str!("../../../templates/web/login.html.tera"),
    ),
    (
        "mfa.html.tera",
        include_str!("../../../templates/web/mfa.html.tera"),
    ),
    (
        "setup.html.tera",
        include_str!("../../../templates/web/setup.html.tera"),
    ),
    (
        "forgot.html.tera",
        include_str!("../../../templates/web/forgot.html.tera"),
    ),
    (
        "reset.html.tera",
        include_str!("../../../templates/web/reset.html.tera"),
    ),
    (
        "verify_email.html.tera",
        include_str!("../../../templates/web/verify_email.html.tera"),
    ),
    (
        "node.html.tera",
        include_str!("../../../templates/web/node.html.tera"),
    ),
    (
        "workloads.html.tera",
        include_str!("../../../templates/web/workloads.html.tera"),
    ),
    (
        "orgs.html.tera",
        include_str!("../../../templates/web/orgs.html.tera"),
    ),
    (
        "org.html.tera",
        include_str!("../../../templates/web/org.html.tera"),
    ),
    (
        "org_member.html.tera",
        include_str!("../../../templates/web/org_member.html.tera"),
    ),
    (
        "invite.html.tera",
        include_str!("../../../templates/web/invite.html.tera"),
    ),
    (
        "account.html.tera",
        include_str!("../../../templates/web/account.html.tera"),
    ),
    (
        "admin_users.html.tera",
        include_str!("../../../templates/web/admin_users.html.tera"),
    ),
    (
        "admin_orgs.html.tera",
        include_str!("../../../templates/web/admin_orgs.html.tera"),
    ),
    (
        "admin_audit.html.tera",
        include_str!("../../../templates/web/admin_audit.html.tera"),
    ),
    (
        "admin_replicas.html.tera",
        include_str!("../../../templates/web/admin_replicas.html.tera"),
    ),
    (
        "admin_system_backup.html.tera",
        include_str!("../../../templates/web/admin_system_backup.html.tera"),
    ),
    (
        "admin_ssh.html.tera",
        include_str!("../../../templates/web/admin_ssh.html.tera"),
    ),
    (
        "dashboard.html.tera",
        include_str!("../../../templates/web/dashboard.html.tera"),
    ),
    (
        "nodes.html.tera",
        include_str!("../../../templates/web/nodes.html.tera"),
    ),
    (
        "instances.html.tera",
        include_str!("../../../templates/web/instances.html.tera"),
    ),
    (
        "instance.html.tera",
        include_str!("../../../templates/web/instance.html.tera"),
    ),
    (
        "instance_new.html.tera",
        include_str!("../../../templates/web/instance_new.html.tera"),
    ),
    (
        "macros.html.tera",
        include_str!("../../../templates/web/macros.html.tera"),
    ),
    (
        "alerts.html.tera",
        include_str!("../../../templates/web/alerts.html.tera"),
    ),
    (
        "alert_rules.html.tera",
        include_str!("../../../templates/web/alert_rules.html.tera"),
    ),
    (
        "alert_rule.html.tera",
        include_str!("../../../templates/web/alert_rule.html.tera"),
    ),
    (
        "alert_maintenance.html.tera",
        include_str!("../../../templates/web/alert_maintenance.html.tera"),
    ),
    (
        "integrations.html.tera",
        include_str!("../../../templates/web/integrations.html.tera"),
    ),
    (
        "credentials.html.tera",
        include_str!("../../../templates/web/credentials.html.tera"),
    ),
    (
        "provision.html.tera",
        include_str!("../../../templates/web/provision.html.tera"),
    ),
    (
        "provision_new.html.tera",
        include_str!("../../../templates/web/provision_new.html.tera"),
    ),
    (
        "provision_request.html.tera",
        include_str!("../../../templates/web/provision_request.html.tera"),
    ),
    (
        "dns_index.html.tera",
        include_str!("../../../templates/web/dns_index.html.tera"),
    ),
    (
        "dns_zone.html.tera",
        include_str!("../../../templates/web/dns_zone.html.tera"),
    ),
    (
        "deploy_gallery.html.tera",
        include_str!("../../../templates/web/deploy_gallery.html.tera"),
    ),
    (
        "deploy_deployment.html.tera",
        include_str!("../../../templates/web/deploy_deployment.html.tera"),
    ),
    (
        "dns_auto.html.tera",
        include_str!("../../../templates/web/dns_auto.html.tera"),
    ),
    (
        "billing.html.tera",
        include_str!("../../../templates/web/billing.html.tera"),
    ),
    (
        "billing_leave.html.tera",
        include_str!("../../../templates/web/billing_leave.html.tera"),
    ),
    (
        "billing_return.html.tera",
        include_str!("../../../templates/web/billing_return.html.tera"),
    ),
    (
        "admin_plans.html.tera",
        include_str!("../../../templates/web/admin_plans.html.tera"),
    ),
    (
        "admin_subscriptions.html.tera",
        include_str!("../../../templates/web/admin_subscriptions.html.tera"),
    ),
    (
        "admin_platform_nodes.html.tera",
        include_str!("../../../templates/web/admin_platform_nodes.html.tera"),
    ),
    (
        "instance_access.html.tera",
        include_str!("../../../templates/web/instance_access.html.tera"),
    ),
    (
        "admin_pterodactyl.html.tera",
        include_str!("../../../templates/web/admin_pterodactyl.html.tera"),
    ),
    (
        "admin_pterodactyl_import.html.tera",
        include_str!("../../../templates/web/admin_pterodactyl_import.html.tera"),
    ),
];

/// The parsed templates: immutable, built on first use (no connection, no state).
static TERA: LazyLock<Result<tera::Tera, String>> = LazyLock::new(|| {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![".html.tera"]);
    tera.add_raw_templates(FILES.iter().copied())
        .map_err(|e| format!("{e:?}"))?;
    Ok(tera)
});

/// The signed-in user as the layout shows them.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
}

/// What `base.html.tera` needs on every page.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    /// The page's `<title>`.
    pub title: String,
    /// The navigation entry to highlight: `dashboard`, `nodes`, `instances` or empty.
    pub active: &'static str,
    /// The CSRF token for forms and `<meta name="csrf-token">`.
    pub csrf_token: String,
    pub user: Option<LayoutUser>,
    /// The bell's count of alerts the user has not seen (`None`: not known, no count).
    pub alerts_unread: Option<i64>,
    /// Appended to asset URLs (`?v=`) so browsers may cache them for good.
    pub asset_version: &'static str,
    /// The user's organizations that are past due or suspended (the billing banner).
    pub billing_banners: Vec<super::billing_pages::BillingBanner>,
}

/// Renders `template` with the layout's variables and the page's own.
///
/// # Errors
/// A template that does not parse or render (a bug: the unit tests render them all).
pub fn render(template: &str, layout: &Layout, page: &impl Serialize) -> Result<String, String> {
    let tera = TERA.as_ref().map_err(Clone::clone)?;
    let mut context = tera::Context::from_serialize(page).map_err(|e| format!("{e:?}"))?;
    context.extend(tera::Context::from_serialize(layout).map_err(|e| format!("{e:?}"))?);
    tera.render(template, &context)
        .map_err(|e| format!("rendering {template}: {e:?}"))
}

#[derive(Serialize)]
struct ErrorPage<'a> {
    status: u16,
    heading: &'a str,
    code: &'a str,
    message: &'a str,
}

/// The error page; plain text if even that fails to render.
#[must_use]
pub fn render_error(status: u16, heading: &str, code: &str, message: &str) -> String {
    let layout = Layout {
        title: heading.to_owned(),
        active: "",
        csrf_token: String::new(),
        user: None,
        alerts_unread: None,
        asset_version: super::assets::version(),
        billing_banners: Vec::new(),
    };
    let page = ErrorPage {
        status,
        heading,
        code,
        message,
    };
    render("error.html.tera", &layout, &page).unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering the error page");
        format!("{status} {code}")
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn layout(user: bool) -> Layout {
        Layout {
            title: "T <b>".into(),
            active: "dashboard",
            csrf_token: "c".repeat(64),
            user: user.then(|| LayoutUser {
                id: "u1".into(),
                email: "ada@example.com".into(),
                name: "Ada <script>".into(),
                is_admin: true,
            }),
            alerts_unread: user.then_some(3),
            asset_version: "v1",
            billing_banners: Vec::new(),
        }
    }

    fn instance() -> Value {
        json!({
            "id": "i1", "name": "<script>alert(1)</script>", "state": "running",
            "desired_state": "running", "node_id": "n1", "description": "d",
            "image": "busybox", "allocations": [{"ip": "0.0.0.0", "port": 25565, "primary": true}],
            "limits": {"memory_mb": 128, "cpu_percent": 50, "disk_mb": 256},
            "created_at": "2026-01-01T00:00:00Z",
        })
    }

    fn sample(name: &str) -> Value {
        let node = json!({"id": "n1", "name": "node <1>", "hostname": "h", "status": "online",
            "cordoned": false, "agent_version": "0.1.0", "last_seen_at": "2026-01-01T00:00:00Z"});
        match name {
            "error.html.tera" => {
                json!({"status": 404, "heading": "Page not found", "code": "NOT_FOUND", "message": "m"})
            }
            "login.html.tera" => json!({"email": "a@b.c", "error": {"code": "X", "message": "m"},
                "notice": "n", "github": true, "next": "/"}),
            "mfa.html.tera" => {
                json!({"challenge_token": "shardlyn_mfa_x", "error": null, "next": "/"})
            }
            "setup.html.tera" => json!({"email": "", "name": "", "error": null}),
            "forgot.html.tera" => json!({"email": "", "notice": "sent", "error": null}),
            "reset.html.tera" => json!({"token": "t", "error": {"code": "X", "message": "m"}}),
            "verify_email.html.tera" => json!({"token": "t", "email": "a@b.c", "verified": false,
                "notice": "n", "error": {"code": "X", "message": "m"}}),
            "dashboard.html.tera" => json!({
                "nodes_online": 1, "nodes_offline": 2, "nodes_total": 3,
                "instances_total": 1, "states": [{"state": "running", "count": 1}],
                "audit": [{"at": "2026-01-01T00:00:00Z", "actor_email": "a@b.c",
                    "action": "auth.login", "result": "success", "target": null}],
                "show_audit": true,
            }),
            "nodes.html.tera" => json!({"nodes": [node]}),
            "instances.html.tera" => {
                let mut elsewhere = instance();
                elsewhere["node_id"] = json!("n2");
                json!({"instances": [instance(), elsewhere], "nodes": {"n1": "node 1"}})
            }
            "instance.html.tera" => json!({"instance": instance(), "node_name": "node 1",
                "primary": "0.0.0.0:25565"}),
            "admin_system_backup.html.tera" => json!({"schedule": "<script>alert(1)</script>",
                "next_run_at": null, "keep": 7,
                "destination": {"kind": "directory", "path": "<script>alert(1)</script>",
                    "bucket": null, "endpoint": null, "region": null, "prefix": null,
                    "access_key_id": null, "secret_access_key_set": false},
                "encryption": {"kind": "passphrase", "recipients": []}, "runs": []}),
            _ => json!({}),
        }
    }

    #[test]
    fn every_template_renders_with_sample_data() {
        for (name, _) in FILES {
            if matches!(*name, "base.html.tera" | "macros.html.tera") {
                continue;
            }
            for user in [false, true] {
                let html = render(name, &layout(user), &sample(name))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(html.contains("<html"), "{name} extends the layout");
                assert!(!html.contains("<script>alert"), "{name} escapes its data");
                assert!(!html.contains("Ada <script>"), "{name} escapes the layout");
                assert!(
                    !html.contains(" style="),
                    "{name}: inline styles break the CSP"
                );
                assert!(
                    !html.contains("<script>"),
                    "{name}: inline scripts break the CSP"
                );
                for handler in [
                    " onclick=",
                    " onload=",
                    " onsubmit=",
                    " oninput=",
                    " onerror=",
                ] {
                    assert!(
                        !html.contains(handler),
                        "{name}: inline handlers break the CSP"
                    );
                }
            }
        }
    }

    /// A form only a script sends (no `method`, no `action`) is submitted to the page
    /// itself when its button is clicked before the script ran (a module waits for its
    /// imports first): the page loads again for nothing. Such a form's submit buttons are
    /// disabled in the page, and the script that handles the form enables them.
    #[test]
    fn forms_only_a_script_sends_start_with_their_buttons_disabled() {
        let scripts: Vec<&str> = super::super::assets::FILES
            .iter()
            .filter(|(name, _, _)| name.ends_with(".js"))
            .map(|(name, _, bytes)| {
                std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
            })
            .collect();
        let mut checked = 0;
        for (name, source) in FILES {
            for (at, _) in source.match_indices("<form") {
                let form = &source[at..];
                let form = &form[..form.find("</form>").unwrap_or(form.len())];
                let tag = &form[..form.find('>').expect("a form tag ends")];
                if tag.contains("method=") || tag.contains("action=") {
                    continue;
                }
                for (at, _) in form.match_indices("<button") {
                    let button = &form[at..];
                    let button = &button[..button.find('>').expect("a button tag ends")];
                    if button.contains("type=") && !button.contains("type=\"submit\"") {
                        continue;
                    }
                    assert!(
                        button.contains(" disabled"),
                        "{name}: {button}> is not disabled until its script runs"
                    );
                    let id = button
                        .split("id=\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .unwrap_or_else(|| panic!("{name}: {button}> has no id"));
                    let enabled = format!("getElementById('{id}')");
                    assert!(
                        scripts.iter().any(|s| s.contains(&enabled)),
                        "{name}: no script takes #{id} to enable it"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 9, "{checked} buttons checked");
    }

    #[test]
    fn the_error_page_carries_the_code() {
        let html = render_error(403, "Not allowed", "CSRF_FAILED", "reload <now>");
        assert!(html.contains("CSRF_FAILED"));
        assert!(html.contains("reload &lt;now&gt;"));
    }
}
