//! The alert rule editor (`/alerts/rules`, web layer): an organization's rules with
//! their condition, target, severity and channels, a "New rule" form with every field,
//! and a rule's page: its form filled in (Save, Delete) and the metric's recent values
//! next to the threshold (one target's last hour as a chart, the latest value of every
//! target of the type, or the rule's recent alerts for a condition metric).
//!
//! Everything goes through `/v1/alerts/rules` as the user; the API's refusal is shown
//! next to the field it names, the typed values kept.

use std::collections::HashMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use shardlyn_proto::instance::Limits;

use super::WebState;
use super::api::is_plain_id;
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use super::view::redirect;
use crate::alerts::handlers::AlertView;
use crate::alerts::rules::{EVENT_METRICS, RuleBody, RuleView};
use crate::instances::ops::logs::InstanceMetricsHistory;
use crate::instances::view::InstanceView;
use crate::integrations::IntegrationList;
use crate::nodes::metrics::NodeMetricsHistory;
use crate::nodes::store::Node;
use crate::orgs::store::OrgWithRole;
use crate::pagination::Page;

/// Rules, servers and alerts read at once (the API's largest page).
const LISTED: usize = 100;
/// Targets whose history a rule on every target reads, and how many it shows.
const TARGETS_READ: usize = 50;
const TARGETS_SHOWN: usize = 10;
/// Alerts a condition rule's page shows.
const ALERTS_SHOWN: usize = 20;
/// The form's checkbox name for an integration: `integration:{id}`.
const INTEGRATION: &str = "integration:";
/// The history read: the last hour, in ms.
const HOUR_MS: i64 = 3_600_000;
const MIB: f64 = 1024.0 * 1024.0;

/// The metrics the form offers, with their labels.
const METRICS: &[(&str, &str)] = &[
    ("cpu_usage", "CPU use (%)"),
    ("memory_usage", "Memory use (%)"),
    ("disk_usage", "Disk use (%)"),
    ("network_rx", "Network received (bytes/s, nodes)"),
    ("network_tx", "Network sent (bytes/s, nodes)"),
    ("node_offline", "Node offline"),
    ("instance_down", "Server down"),
    ("backup_failed", "Backup failed"),
    ("install_failed", "Install failed"),
];
/// The operators, with their signs.
const OPERATORS: &[(&str, &str)] = &[
    ("gt", ">"),
    ("gte", "≥"),
    ("lt", "<"),
    ("lte", "≤"),
    ("eq", "="),
];
const SEVERITIES: &[&str] = &["info", "warn", "critical"];
const TARGET_TYPES: &[(&str, &str)] = &[("node", "Node"), ("instance", "Server")];

/// The routes of these pages (before `alert_pages`' `/alerts/{id}/...`, though the
/// static `rules` segment wins either way).
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/alerts/rules", get(rules).post(create))
        .route("/alerts/rules/{id}", get(rule).post(save))
        .route("/alerts/rules/{id}/delete", post(delete))
}

/// `?organization_id=&done=` of the pages.
#[derive(Debug, Default, Deserialize)]
pub struct RulesQuery {
    #[serde(default)]
    organization_id: String,
    done: Option<String>,
}

/// The rule form as typed (kept when the API refuses it).
#[derive(Debug, Clone, Serialize, PartialEq)]
struct RuleForm {
    organization_id: String,
    name: String,
    target_type: String,
    /// Empty: every target of the type.
    target_id: String,
    metric: String,
    operator: String,
    threshold: String,
    duration_seconds: String,
    resolve_after_seconds: String,
    severity: String,
    notify_in_app: bool,
    notify_email: bool,
    /// Addresses separated by commas, spaces or lines.
    email_recipients: String,
    cooldown_seconds: String,
    integration_ids: Vec<String>,
    enabled: bool,
}

impl Default for RuleForm {
    /// A new rule: the API's defaults.
    fn default() -> Self {
        Self {
            organization_id: String::new(),
            name: String::new(),
            target_type: "node".into(),
            target_id: String::new(),
            metric: "cpu_usage".into(),
            operator: "gt".into(),
            threshold: "90".into(),
            duration_seconds: "60".into(),
            resolve_after_seconds: "60".into(),
            severity: "warn".into(),
            notify_in_app: true,
            notify_email: false,
            email_recipients: String::new(),
            cooldown_seconds: "0".into(),
            integration_ids: Vec::new(),
            enabled: true,
        }
    }
}

impl RuleForm {
    /// The form's fields as sent (a checkbox left unticked is absent).
    fn from_fields(fields: &HashMap<String, String>) -> Self {
        let text = |k: &str| {
            fields
                .get(k)
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let mut integration_ids: Vec<String> = fields
            .keys()
            .filter_map(|k| k.strip_prefix(INTEGRATION))
            .filter(|id| is_plain_id(id))
            .map(str::to_owned)
            .collect();
        integration_ids.sort_unstable();
        Self {
            organization_id: text("organization_id"),
            name: text("name"),
            target_type: text("target_type"),
            target_id: text("target_id"),
            metric: text("metric"),
            operator: text("operator"),
            threshold: text("threshold"),
            duration_seconds: text("duration_seconds"),
            resolve_after_seconds: text("resolve_after_seconds"),
            severity: text("severity"),
            notify_in_app: fields.contains_key("notify_in_app"),
            notify_email: fields.contains_key("notify_email"),
            email_recipients: text("email_recipients"),
            cooldown_seconds: text("cooldown_seconds"),
            integration_ids,
            enabled: fields.contains_key("enabled"),
        }
    }

    /// A rule's settings in the form.
    fn of(rule: &RuleView) -> Self {
        Self {
            organization_id: rule.organization_id.clone(),
            name: rule.name.clone(),
            target_type: rule.target_type.clone(),
            target_id: rule.target_id.clone().unwrap_or_default(),
            metric: rule.metric.clone(),
            operator: rule.operator.clone(),
            threshold: rule.threshold.to_string(),
            duration_seconds: rule.duration_seconds.to_string(),
            resolve_after_seconds: rule.resolve_after_seconds.to_string(),
            severity: rule.severity.clone(),
            notify_in_app: rule.notify_in_app,
            notify_email: rule.notify_email,
            email_recipients: rule.email_recipients.join(", "),
            cooldown_seconds: rule.cooldown_seconds.to_string(),
            integration_ids: rule.integration_ids.clone(),
            enabled: rule.enabled,
        }
    }

    /// The organization the form names, if it is a plain id.
    fn org(&self) -> String {
        kit::org_param(&self.organization_id)
    }

    /// The API's body; a number that does not read as one is refused here, naming its
    /// field as the API does (everything else is the API's to check).
    fn body(&self) -> WebResult<RuleBody> {
        let org = self.org();
        let seconds = |field: &str, text: &str| -> WebResult<Option<i64>> {
            if text.is_empty() {
                return Ok(None);
            }
            text.parse()
                .map(Some)
                .map_err(|_| invalid(field, &format!("{field} must be a whole number of seconds")))
        };
        let threshold = if self.threshold.is_empty() {
            None
        } else {
            Some(
                self.threshold
                    .parse::<f64>()
                    .map_err(|_| invalid("threshold", "threshold must be a number"))?,
            )
        };
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(RuleBody {
            organization_id: some(&org),
            name: self.name.clone(),
            target_type: self.target_type.clone(),
            target_id: some(&self.target_id),
            metric: self.metric.clone(),
            operator: some(&self.operator),
            threshold,
            duration_seconds: seconds("duration_seconds", &self.duration_seconds)?,
            resolve_after_seconds: seconds("resolve_after_seconds", &self.resolve_after_seconds)?,
            severity: some(&self.severity),
            notify_in_app: Some(self.notify_in_app),
            notify_email: Some(self.notify_email),
            email_recipients: Some(
                self.email_recipients
                    .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            integration_ids: Some(self.integration_ids.clone()),
            cooldown_seconds: seconds("cooldown_seconds", &self.cooldown_seconds)?,
            enabled: Some(self.enabled),
        })
    }
}

/// A 400 about `field`, as the API words its own.
fn invalid(field: &str, message: &str) -> WebError {
    WebError {
        field: Some(field.to_owned()),
        ..WebError::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }
}

/// One option of a select or checkbox list.
#[derive(Debug, Clone, Serialize)]
struct Choice {
    value: String,
    label: String,
}

impl Choice {
    fn new(value: &str, label: &str) -> Self {
        Self {
            value: value.to_owned(),
            label: label.to_owned(),
        }
    }
}

/// What the form's selects offer: fixed lists and the organization's targets and
/// integrations.
#[derive(Debug, Default, Serialize)]
struct Choices {
    metrics: Vec<Choice>,
    operators: Vec<Choice>,
    severities: Vec<&'static str>,
    target_types: Vec<Choice>,
    nodes: Vec<Choice>,
    servers: Vec<Choice>,
    integrations: Vec<Choice>,
}

/// The organization's targets (with the servers' limits) and integrations.
struct Org {
    nodes: Vec<Node>,
    servers: Vec<InstanceView>,
    integrations: Vec<Choice>,
}

impl Org {
    /// Reads them as `user` (what the user may not read is left out).
    async fn read(web: &WebState, browser: &Browser, user: &WebUser, org: &str) -> Self {
        let scope = kit::query(&[("organization_id", org)]);
        let nodes: Vec<Node> = kit::read(web, browser, user, &format!("/v1/nodes?{scope}"))
            .await
            .unwrap_or_default();
        let servers = kit::read::<Page<InstanceView>>(
            web,
            browser,
            user,
            &format!("/v1/instances?per_page={LISTED}&{scope}"),
        )
        .await
        .map(|p| p.data)
        .unwrap_or_default();
        let integrations =
            kit::read::<IntegrationList>(web, browser, user, &format!("/v1/integrations?{scope}"))
                .await
                .map(|l| l.data)
                .unwrap_or_default()
                .into_iter()
                .map(|i| Choice {
                    value: i.id,
                    label: format!("{} ({})", i.name, i.kind),
                })
                .collect();
        Self {
            nodes,
            servers,
            integrations,
        }
    }

    fn choices(&self) -> Choices {
        let pairs = |list: &[(&str, &str)]| -> Vec<Choice> {
            list.iter().map(|(v, l)| Choice::new(v, l)).collect()
        };
        Choices {
            metrics: pairs(METRICS),
            operators: pairs(OPERATORS),
            severities: SEVERITIES.to_vec(),
            target_types: pairs(TARGET_TYPES),
            nodes: self
                .nodes
                .iter()
                .map(|n| Choice::new(&n.id, &n.name))
                .collect(),
            servers: self
                .servers
                .iter()
                .map(|s| Choice::new(&s.id, &s.name))
                .collect(),
            integrations: self.integrations.clone(),
        }
    }

    /// How a rule's target reads: a name, or "every node/server".
    fn target(&self, rule: &RuleView) -> String {
        let every = if rule.target_type == "node" {
            "every node"
        } else {
            "every server"
        };
        let Some(id) = &rule.target_id else {
            return every.to_owned();
        };
        let name = if rule.target_type == "node" {
            self.nodes.iter().find(|n| &n.id == id).map(|n| &n.name)
        } else {
            self.servers.iter().find(|s| &s.id == id).map(|s| &s.name)
        };
        let kind = if rule.target_type == "node" {
            "node"
        } else {
            "server"
        };
        match name {
            Some(name) if !name.is_empty() => format!("{kind} {name}"),
            _ => format!("{kind} {id}"),
        }
    }

    /// A rule's notification channels.
    fn channels(&self, rule: &RuleView) -> Vec<String> {
        let mut out = Vec::new();
        if rule.notify_in_app {
            out.push("in-app".to_owned());
        }
        if rule.notify_email {
            if rule.email_recipients.is_empty() {
                out.push("email (members)".to_owned());
            } else {
                out.push(format!("email ({})", rule.email_recipients.join(", ")));
            }
        }
        for id in &rule.integration_ids {
            let label = self
                .integrations
                .iter()
                .find(|i| &i.value == id)
                .map_or_else(|| id.clone(), |i| i.label.clone());
            out.push(label);
        }
        out
    }

    fn row(&self, rule: RuleView) -> RuleRow {
        RuleRow {
            condition: condition(&rule),
            target: self.target(&rule),
            channels: self.channels(&rule),
            rule,
        }
    }
}

/// Whether a metric is a condition (no threshold).
fn is_event(metric: &str) -> bool {
    EVENT_METRICS.contains(&metric)
}

/// Whether a metric is in percent (else bytes/s).
fn is_percent(metric: &str) -> bool {
    matches!(metric, "cpu_usage" | "memory_usage" | "disk_usage")
}

/// An operator's sign.
fn sign(operator: &str) -> &'static str {
    OPERATORS
        .iter()
        .find(|(o, _)| *o == operator)
        .map_or("?", |(_, s)| s)
}

/// A threshold with its unit: `90%`, `1048576 B/s`.
fn with_unit(metric: &str, v: f64) -> String {
    if is_percent(metric) {
        format!("{v}%")
    } else {
        format!("{v} B/s")
    }
}

/// A measured value for people: `93.5%`, `1.5 MiB/s`.
fn shown_value(metric: &str, v: f64) -> String {
    if is_percent(metric) {
        format!("{v:.1}%")
    } else {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a rounded display value"
        )]
        let n = v.max(0.0).round() as u64;
        format!("{}/s", super::node_pages::bytes(n))
    }
}

/// "metric operator threshold for N s".
fn condition(rule: &RuleView) -> String {
    if is_event(&rule.metric) {
        format!("{} for {} s", rule.metric, rule.duration_seconds)
    } else {
        format!(
            "{} {} {} for {} s",
            rule.metric,
            sign(&rule.operator),
            with_unit(&rule.metric, rule.threshold),
            rule.duration_seconds
        )
    }
}

/// Whether `value` is beyond the rule's threshold (as the evaluation weighs it).
fn beyond(operator: &str, threshold: f64, value: f64) -> bool {
    match operator {
        "gt" => value > threshold,
        "gte" => value >= threshold,
        "lt" => value < threshold,
        "lte" => value <= threshold,
        _ => (value - threshold).abs() < f64::EPSILON,
    }
}

/// One rule as listed.
#[derive(Debug, Serialize)]
struct RuleRow {
    #[serde(flatten)]
    rule: RuleView,
    /// `cpu_usage > 90% for 60 s`.
    condition: String,
    target: String,
    channels: Vec<String>,
}

/// The list page.
#[derive(Debug, Default, Serialize)]
struct RulesPage {
    flash: Flash,
    /// The field the error is about (empty: none or the form as a whole).
    error_field: String,
    /// The organization shown (empty: the personal one).
    organization_id: String,
    organizations: Vec<OrgWithRole>,
    rules: Vec<RuleRow>,
    total: i64,
    choices: Choices,
    form: RuleForm,
    /// Where the form goes, and its button.
    action: String,
    submit: &'static str,
}

/// The field of a form's error.
fn error_field(flash: &Flash) -> String {
    flash
        .error
        .as_ref()
        .and_then(|e| e.field.clone())
        .unwrap_or_default()
}

/// Renders the list of `org` with `flash` and the new-rule `form`.
async fn show_list(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    org: &str,
    flash: Flash,
    form: RuleForm,
) -> WebResult<Response> {
    let list: Page<RuleView> = kit::read(
        web,
        browser,
        user,
        &format!(
            "/v1/alerts/rules?{}",
            kit::query(&[("organization_id", org), ("per_page", &LISTED.to_string())])
        ),
    )
    .await?;
    let organizations = kit::organizations(web, browser, user)
        .await
        .unwrap_or_default();
    let targets = Org::read(web, browser, user, org).await;
    let page = RulesPage {
        error_field: error_field(&flash),
        flash,
        organization_id: org.to_owned(),
        organizations,
        total: list.pagination.total,
        rules: list.data.into_iter().map(|r| targets.row(r)).collect(),
        choices: targets.choices(),
        form: RuleForm {
            organization_id: org.to_owned(),
            ..form
        },
        action: "/alerts/rules".into(),
        submit: "Create rule",
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Alert rules", "alerts"),
        "alert_rules.html.tera",
        &page,
    )
    .await
}

/// `GET /alerts/rules?organization_id=`.
pub async fn rules(
    State(web): State<WebState>,
    browser: Browser,
    query: Result<Query<RulesQuery>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/alerts/rules");
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let org = if is_plain_id(&q.organization_id) {
        q.organization_id
    } else {
        String::new()
    };
    let flash = Flash::from_done(&kit::Done { done: q.done });
    show_list(&web, &browser, &user, &org, flash, RuleForm::default()).await
}

/// `POST /alerts/rules`: `POST /v1/alerts/rules`; back to the list, or the form again
/// with the API's refusal.
pub async fn create(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<HashMap<String, String>>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/alerts/rules");
    let form = RuleForm::from_fields(&form);
    let org = form.org();
    let answer = match form.body() {
        Ok(body) => {
            kit::act(
                &web,
                &browser,
                &user,
                Method::POST,
                &format!(
                    "/v1/alerts/rules?{}",
                    kit::query(&[("organization_id", &org)])
                ),
                Some(&body),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match shown(answer)? {
        Ok(()) => redirect(
            &format!(
                "/alerts/rules?{}",
                kit::query(&[("organization_id", &org), ("done", "rule-created")])
            ),
            [],
        ),
        Err(error) => show_list(&web, &browser, &user, &org, Flash::error(error), form).await,
    }
}

/// A measured target: its latest value.
#[derive(Debug, Serialize)]
struct TargetValue {
    id: String,
    name: String,
    href: String,
    latest: String,
    beyond: bool,
    #[serde(skip)]
    raw: f64,
}

/// The chart of one target's last hour.
#[derive(Debug, Serialize)]
struct ValueChart {
    /// The polyline's points in the `kit::CHART_W` x `kit::CHART_H` box.
    points: String,
    /// Where the threshold line sits.
    threshold_y: String,
    /// The top of the scale, for people.
    top: String,
}

/// What the rule page shows next to the threshold.
#[derive(Debug, Default, Serialize)]
struct Recent {
    /// `single` (one target's last hour), `every` (the latest value of each target),
    /// `events` (the rule's recent alerts).
    kind: &'static str,
    /// `> 90%`.
    threshold: String,
    latest: Option<String>,
    peak: Option<String>,
    samples: usize,
    /// Samples beyond the threshold.
    beyond: usize,
    chart: Option<ValueChart>,
    targets: Vec<TargetValue>,
    alerts: Vec<AlertView>,
    /// Why there are no values (no samples, no limit, unreadable).
    note: Option<String>,
}

/// A node's values of `metric` over its history, `(unix ms, value)`.
fn node_series(history: &NodeMetricsHistory, metric: &str) -> Vec<(i64, f64)> {
    #[expect(clippy::cast_precision_loss, reason = "percentages and rates")]
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 * 100.0 / b as f64);
    let points = &history.points;
    match metric {
        "network_rx" | "network_tx" => points
            .windows(2)
            .filter_map(|w| {
                let (before, now) = (&w[0], &w[1]);
                let (b, n) = if metric == "network_rx" {
                    (before.net_rx_bytes, now.net_rx_bytes)
                } else {
                    (before.net_tx_bytes, now.net_tx_bytes)
                };
                let ms = now.at.millis() - before.at.millis();
                #[expect(clippy::cast_precision_loss, reason = "byte rates")]
                let rate = (ms > 0 && n >= b).then(|| (n - b) as f64 * 1000.0 / ms as f64);
                rate.map(|r| (now.at.millis(), r))
            })
            .collect(),
        _ => points
            .iter()
            .filter_map(|p| {
                let v = match metric {
                    "cpu_usage" => Some(p.cpu_percent.clamp(0.0, 100.0)),
                    "memory_usage" => ratio(p.memory_used_bytes, p.memory_total_bytes),
                    "disk_usage" => ratio(p.disk_used_bytes, p.disk_total_bytes),
                    _ => None,
                };
                v.map(|v| (p.at.millis(), v))
            })
            .collect(),
    }
}

/// A server's values of `metric` in percent of its limits (none without a limit).
#[expect(clippy::cast_precision_loss, reason = "percentages")]
fn server_series(
    history: &InstanceMetricsHistory,
    limits: &Limits,
    metric: &str,
) -> Vec<(i64, f64)> {
    let limit = match metric {
        "cpu_usage" => limits.cpu_percent as f64,
        "memory_usage" => limits.memory_mb as f64 * MIB,
        "disk_usage" => limits.disk_mb as f64 * MIB,
        _ => 0.0,
    };
    if limit <= 0.0 {
        return Vec::new();
    }
    history
        .points
        .iter()
        .map(|p| {
            let used = match metric {
                "cpu_usage" => p.cpu_percent,
                "memory_usage" => p.memory_bytes as f64,
                _ => p.disk_bytes as f64,
            };
            (p.at.millis(), used * 100.0 / limit)
        })
        .collect()
}

/// Latest, peak, samples beyond the threshold and the chart of one target's series
/// over the hour before `now`.
fn single(rule: &RuleView, series: &[(i64, f64)], now: i64) -> Recent {
    let mut recent = Recent {
        kind: "single",
        threshold: format!(
            "{} {}",
            sign(&rule.operator),
            with_unit(&rule.metric, rule.threshold)
        ),
        samples: series.len(),
        ..Recent::default()
    };
    let Some(&(_, latest)) = series.last() else {
        recent.note = Some("no samples in the last hour".into());
        return recent;
    };
    let peak = series.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
    recent.latest = Some(shown_value(&rule.metric, latest));
    recent.peak = Some(shown_value(&rule.metric, peak));
    recent.beyond = series
        .iter()
        .filter(|(_, v)| beyond(&rule.operator, rule.threshold, *v))
        .count();
    let top = if is_percent(&rule.metric) {
        100.0
    } else {
        (peak.max(rule.threshold) * 1.1).max(1.0)
    };
    recent.chart = Some(ValueChart {
        points: kit::polyline(series, (now - HOUR_MS, now), top),
        threshold_y: format!("{:.1}", kit::chart_y(rule.threshold, top)),
        top: shown_value(&rule.metric, top),
    });
    recent
}

/// The metric's recent values for `rule` (see [`Recent`]).
async fn recent(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    rule: &RuleView,
    org: &Org,
) -> Recent {
    let now = crate::db::now_ms();
    if is_event(&rule.metric) {
        let alerts = kit::read::<Page<AlertView>>(
            web,
            browser,
            user,
            &format!(
                "/v1/alerts?{}",
                kit::query(&[
                    ("organization_id", &rule.organization_id),
                    ("per_page", &LISTED.to_string()),
                ])
            ),
        )
        .await;
        return match alerts {
            Ok(page) => Recent {
                kind: "events",
                alerts: page
                    .data
                    .into_iter()
                    .filter(|a| a.rule_id == rule.id)
                    .take(ALERTS_SHOWN)
                    .collect(),
                ..Recent::default()
            },
            Err(e) => Recent {
                kind: "events",
                note: Some(e.message),
                ..Recent::default()
            },
        };
    }
    let node = rule.target_type == "node";
    if let Some(id) = rule.target_id.as_deref().filter(|id| is_plain_id(id)) {
        let series = series_of(web, browser, user, rule, org, id).await;
        return match series {
            Ok(series) => single(rule, &series, now),
            Err(e) => Recent {
                kind: "single",
                note: Some(e.message),
                ..Recent::default()
            },
        };
    }
    let ids: Vec<(String, String)> = if node {
        org.nodes
            .iter()
            .map(|n| (n.id.clone(), n.name.clone()))
            .collect()
    } else {
        org.servers
            .iter()
            .map(|s| (s.id.clone(), s.name.clone()))
            .collect()
    };
    let mut targets = Vec::new();
    for (id, name) in ids.into_iter().take(TARGETS_READ) {
        let Ok(series) = series_of(web, browser, user, rule, org, &id).await else {
            continue;
        };
        if let Some(&(_, v)) = series.last() {
            targets.push(TargetValue {
                href: if node {
                    format!("/nodes/{id}")
                } else {
                    format!("/instances/{id}")
                },
                latest: shown_value(&rule.metric, v),
                beyond: beyond(&rule.operator, rule.threshold, v),
                raw: v,
                id,
                name,
            });
        }
    }
    targets.sort_by(|a, b| b.raw.total_cmp(&a.raw));
    targets.truncate(TARGETS_SHOWN);
    Recent {
        kind: "every",
        threshold: format!(
            "{} {}",
            sign(&rule.operator),
            with_unit(&rule.metric, rule.threshold)
        ),
        note: targets
            .is_empty()
            .then(|| "no samples in the last hour".to_owned()),
        targets,
        ..Recent::default()
    }
}

/// One target's series of the rule's metric over the last hour.
async fn series_of(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    rule: &RuleView,
    org: &Org,
    id: &str,
) -> WebResult<Vec<(i64, f64)>> {
    if !is_plain_id(id) {
        return Err(WebError::not_found());
    }
    if rule.target_type == "node" {
        let history: NodeMetricsHistory = kit::read(
            web,
            browser,
            user,
            &format!("/v1/nodes/{id}/metrics/history?range=1h"),
        )
        .await?;
        return Ok(node_series(&history, &rule.metric));
    }
    let limits = match org.servers.iter().find(|s| s.id == id) {
        Some(s) => s.limits.clone(),
        None => {
            kit::read::<InstanceView>(web, browser, user, &format!("/v1/instances/{id}"))
                .await?
                .limits
        }
    };
    let history: InstanceMetricsHistory = kit::read(
        web,
        browser,
        user,
        &format!("/v1/instances/{id}/metrics/history?range=1h"),
    )
    .await?;
    Ok(server_series(&history, &limits, &rule.metric))
}

/// A rule's page.
#[derive(Debug, Serialize)]
struct RulePage {
    flash: Flash,
    error_field: String,
    organization_id: String,
    rule: RuleRow,
    recent: Recent,
    choices: Choices,
    form: RuleForm,
    action: String,
    submit: &'static str,
}

/// Renders rule `id` with `flash`; `form` as typed (else the rule's settings).
async fn show_rule(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    id: &str,
    flash: Flash,
    form: Option<RuleForm>,
) -> WebResult<Response> {
    let rule: RuleView = kit::read(web, browser, user, &format!("/v1/alerts/rules/{id}")).await?;
    let org = Org::read(web, browser, user, &rule.organization_id).await;
    let recent = recent(web, browser, user, &rule, &org).await;
    let title = rule.name.clone();
    let page = RulePage {
        error_field: error_field(&flash),
        flash,
        organization_id: rule.organization_id.clone(),
        form: form.unwrap_or_else(|| RuleForm::of(&rule)),
        recent,
        choices: org.choices(),
        action: format!("/alerts/rules/{id}"),
        submit: "Save",
        rule: org.row(rule),
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        (&title, "alerts"),
        "alert_rule.html.tera",
        &page,
    )
    .await
}

/// `GET /alerts/rules/{id}`.
pub async fn rule(
    State(web): State<WebState>,
    browser: Browser,
    Path(id): Path<String>,
    query: Result<Query<RulesQuery>, QueryRejection>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/alerts/rules/{id}"));
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let flash = Flash::from_done(&kit::Done { done: q.done });
    show_rule(&web, &browser, &user, &id, flash, None).await
}

/// `POST /alerts/rules/{id}`: `PUT /v1/alerts/rules/{id}`.
pub async fn save(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<HashMap<String, String>>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/alerts/rules/{id}"));
    let form = RuleForm::from_fields(&form);
    let answer = match form.body() {
        Ok(body) => {
            kit::act(
                &web,
                &browser,
                &user,
                Method::PUT,
                &format!("/v1/alerts/rules/{id}"),
                Some(&body),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match shown(answer)? {
        Ok(()) => kit::done(&format!("/alerts/rules/{id}"), "rule-saved"),
        Err(error) if error.status == StatusCode::NOT_FOUND && error.field.is_none() => {
            // A rule that is gone (or not the user's) is a 404; a missing target is
            // the form's error.
            if error.message.contains("rule") {
                Err(error)
            } else {
                show_rule(&web, &browser, &user, &id, Flash::error(error), Some(form)).await
            }
        }
        Err(error) => show_rule(&web, &browser, &user, &id, Flash::error(error), Some(form)).await,
    }
}

/// The delete form's field: the list to go back to.
#[derive(Debug, Default, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    organization_id: String,
}

/// `POST /alerts/rules/{id}/delete`: `DELETE /v1/alerts/rules/{id}`.
pub async fn delete(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<DeleteForm>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/alerts/rules/{id}"));
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::DELETE,
        &format!("/v1/alerts/rules/{id}"),
        None::<&()>,
    )
    .await;
    let org = if is_plain_id(&form.organization_id) {
        form.organization_id
    } else {
        String::new()
    };
    match shown(answer)? {
        Ok(()) => redirect(
            &format!(
                "/alerts/rules?{}",
                kit::query(&[("organization_id", &org), ("done", "rule-deleted")])
            ),
            [],
        ),
        Err(error) if error.status == StatusCode::NOT_FOUND => Err(error),
        Err(error) => show_rule(&web, &browser, &user, &id, Flash::error(error), None).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::metrics::NodeMetricsPoint;
    use crate::types::Timestamp;

    fn rule(metric: &str, operator: &str, threshold: f64) -> RuleView {
        RuleView {
            id: "r1".into(),
            organization_id: "o1".into(),
            name: "n".into(),
            target_type: "node".into(),
            target_id: Some("n1".into()),
            metric: metric.into(),
            operator: operator.into(),
            threshold,
            duration_seconds: 30,
            resolve_after_seconds: 60,
            severity: "warn".into(),
            notify_in_app: true,
            notify_email: false,
            email_recipients: vec![],
            integration_ids: vec![],
            cooldown_seconds: 0,
            enabled: true,
            created_by: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn point(at: i64, cpu: f64, rx: i64) -> NodeMetricsPoint {
        NodeMetricsPoint {
            at: Timestamp(at),
            cpu_percent: cpu,
            memory_used_bytes: 25,
            memory_total_bytes: 100,
            disk_used_bytes: 0,
            disk_total_bytes: 0,
            net_rx_bytes: rx,
            net_tx_bytes: 0,
        }
    }

    #[test]
    fn a_form_reads_back_into_the_api_body() {
        let mut fields: HashMap<String, String> = [
            ("name", " Hot "),
            ("target_type", "node"),
            ("target_id", ""),
            ("metric", "cpu_usage"),
            ("operator", "gte"),
            ("threshold", "85.5"),
            ("duration_seconds", "30"),
            ("email_recipients", "a@b.c, d@e.f\ng@h.i"),
            ("integration:i2", "on"),
            ("integration:i1", "on"),
            ("integration:../x", "on"),
            ("enabled", "on"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let form = RuleForm::from_fields(&fields);
        assert_eq!(form.integration_ids, ["i1", "i2"]);
        assert!(form.enabled && !form.notify_in_app);
        let body = form.body().expect("a body");
        assert_eq!(body.name, "Hot");
        assert_eq!(body.target_id, None);
        assert_eq!(body.threshold, Some(85.5));
        assert_eq!(body.resolve_after_seconds, None);
        assert_eq!(
            body.email_recipients.as_deref(),
            Some(&["a@b.c".to_owned(), "d@e.f".to_owned(), "g@h.i".to_owned()][..])
        );
        fields.insert("threshold".into(), "lots".into());
        let e = RuleForm::from_fields(&fields).body().expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("threshold"));
        // A rule's settings read back into the same form.
        let r = rule("cpu_usage", "gt", 90.0);
        assert_eq!(RuleForm::of(&r).threshold, "90");
        assert_eq!(condition(&r), "cpu_usage > 90% for 30 s");
    }

    #[test]
    fn recent_values_count_the_samples_beyond_the_threshold() {
        let now = 10 * HOUR_MS;
        let history = NodeMetricsHistory {
            range: "1h".into(),
            bucket_secs: 10,
            points: vec![
                point(now - 30_000, 50.0, 0),
                point(now - 20_000, 95.0, 10_000),
                point(now - 10_000, 70.0, 30_000),
            ],
        };
        let r = rule("cpu_usage", "gt", 60.0);
        let recent = single(&r, &node_series(&history, "cpu_usage"), now);
        assert_eq!((recent.samples, recent.beyond), (3, 2));
        assert_eq!(recent.latest.as_deref(), Some("70.0%"));
        assert_eq!(recent.peak.as_deref(), Some("95.0%"));
        let chart = recent.chart.expect("a chart");
        assert_eq!(chart.threshold_y, "64.0");
        assert!(chart.points.ends_with("598.3,48.0"), "{}", chart.points);
        // Network rates come from the counters of consecutive samples.
        let rates = node_series(&history, "network_rx");
        assert_eq!(rates, [(now - 20_000, 1000.0), (now - 10_000, 2000.0)]);
        assert_eq!(shown_value("network_rx", 2048.0), "2.0 KiB/s");
        let memory = node_series(&history, "memory_usage");
        assert_eq!(memory.last().map(|(_, v)| *v), Some(25.0));
        assert!(node_series(&history, "disk_usage").is_empty());
        let empty = single(&r, &[], now);
        assert!(empty.note.is_some() && empty.chart.is_none());
    }
}
