//! Notifications of alert transitions (`firing`, `resolved`): email to the rule's
//! `email_recipients`, or else to the organization's members holding `alerts.read`
//! (the `alert` mail template), and the rule's integrations through their delivery queue
//! (`integrations::deliver::enqueue`, keyed `<alert id>:<transition>`). Each (alert, transition, channel) is claimed by one row
//! of `alert_notifications` before it is sent, so a transition is notified once per
//! channel whichever replica evaluated it. Nothing goes out for a silenced alert or one
//! whose target is in a maintenance window, nor
//! for a server's alert while its node's `node_offline` alert fires (the outage is one
//! message). In-app notification is the alert itself and the unread count.

use super::store::{self, Rule};
use crate::authz::{Permission, perm};
use crate::error::AppResult;
use crate::integrations::deliver::{self, Notification};
use crate::mailer::Template;
use crate::orgs::permissions::load_membership;
use crate::state::AppState;

/// Whether `id` names an integration of `org_id` (a rule may notify only its
/// organization's own).
///
/// # Errors
/// Database failures.
pub async fn integration_in_org(state: &AppState, org_id: &str, id: &str) -> AppResult<bool> {
    if id.contains('\0') {
        return Ok(false);
    }
    Ok(crate::integrations::store::find(&state.db.pool, id)
        .await?
        .is_some_and(|i| i.org_id == org_id))
}

/// Notifies `transition` of alert `alert_id` on the rule's channels; failures are logged.
pub async fn transition(state: &AppState, rule: &Rule, alert_id: &str, transition: &str) {
    if let Err(e) = send(state, rule, alert_id, transition).await {
        tracing::warn!(alert.id = %alert_id, alert.transition = transition, error = %e, "notifying an alert");
    }
}

async fn send(state: &AppState, rule: &Rule, alert_id: &str, transition: &str) -> AppResult<()> {
    let pool = &state.db.pool;
    let now = state.clock.now_ms();
    let Some(alert) = store::find_alert(pool, alert_id).await? else {
        return Ok(());
    };
    if alert.silenced_until.is_some_and(|until| until > now) || alert.no_data {
        return Ok(());
    }
    let node_id = alert.node_id.as_deref().unwrap_or(&alert.target_id);
    if store::in_maintenance(
        pool,
        &alert.org_id,
        (&alert.target_type, &alert.target_id, node_id),
        now,
    )
    .await?
    {
        tracing::info!(alert.id = %alert.id, "alert not notified: its target is in maintenance");
        return Ok(());
    }
    if alert.target_type == "instance"
        && let Some(node_id) = &alert.node_id
        && store::node_offline_open(pool, node_id).await?
    {
        tracing::info!(alert.id = %alert.id, node.id = %node_id, "alert not notified: its node is offline");
        return Ok(());
    }
    let recipients = if !rule.notify_email {
        Vec::new()
    } else if rule.email_recipients.is_empty() {
        let mut to = Vec::new();
        for (user_id, email) in store::member_emails(pool, &rule.org_id).await? {
            let reads = load_membership(state, &rule.org_id, &user_id)
                .await?
                .is_some_and(|m| m.can(perm::AlertsRead::KEY));
            if reads {
                to.push(email);
            }
        }
        to
    } else {
        rule.email_recipients.clone()
    };
    let title = if transition == "resolved" {
        format!("Resolved: {}", rule.name)
    } else {
        rule.name.clone()
    };
    let template_title = title.clone();
    let template = Template::Alert {
        title,
        severity: rule.severity.clone(),
        details: alert.message.clone(),
        link: None,
    };
    for to in recipients {
        let channel = format!("email:{to}");
        if store::claim_notification(pool, &alert.id, transition, &channel, now).await? {
            state.mailer.send_template(&to, &template);
        }
    }
    let notification = Notification {
        key: format!("{}:{transition}", alert.id),
        title: template_title,
        text: alert.message.clone(),
        severity: if transition == "resolved" {
            "resolved".into()
        } else {
            rule.severity.clone()
        },
        link: None,
        fields: vec![
            ("Rule".into(), rule.name.clone()),
            ("Metric".into(), alert.metric.clone()),
            (
                match alert.target_type.as_str() {
                    "node" => "Node".into(),
                    _ => "Server".into(),
                },
                alert.target_id.clone(),
            ),
        ],
    };
    for integration in &rule.integration_ids {
        let channel = format!("integration:{integration}");
        if store::claim_notification(pool, &alert.id, transition, &channel, now).await? {
            // The queue keeps it (once per key) and retries it; an integration deleted
            // since the rule named it is skipped.
            if let Err(e) = deliver::enqueue(state, integration, &notification).await {
                tracing::warn!(alert.id = %alert.id, integration.id = %integration, error = %e, "queueing an alert notification");
            }
        }
    }
    Ok(())
}
