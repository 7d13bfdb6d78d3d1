//! The nodes list with usage bars and "Add node" (a registration token and the one-line
//! command that uses it), and the node page: inventory, CPU/memory/disk charts drawn as
//! server-rendered SVG from the metrics history (no chart library), cordon, uncordon and
//! drain, and (from `shell_pages`) shells on the node and their recordings.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shardlyn_proto::inventory::{DiskInfo, SystemInfo};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Done, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use crate::instances::ops::nodes::DrainReport;
use crate::migrations::bulk::Planned;
use crate::nodes::metrics::{NodeMetricsHistory, NodeMetricsPoint};
use crate::nodes::register::{CreateToken, RegistrationToken};
use crate::nodes::store::Node;
use crate::orgs::store::OrgWithRole;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/nodes/add", post(add))
        .route("/nodes/{id}", get(node))
        .route("/nodes/{id}/cordon", post(cordon))
        .route("/nodes/{id}/uncordon", post(uncordon))
        .route("/nodes/{id}/drain", post(drain))
        .route("/nodes/{id}/rebuild", post(rebuild))
        .route("/nodes/{id}/allocation", post(allocation))
        .route("/nodes/{id}/addresses", post(addresses))
        .merge(super::shell_pages::router())
        .merge(super::node_cloud_pages::router())
}

/// A node of the list with its latest usage (none before its first sample).
#[derive(Debug, Serialize)]
struct NodeRow {
    #[serde(flatten)]
    node: Node,
    usage: Option<Usage>,
}

/// CPU, memory and disk use in percent.
#[derive(Debug, PartialEq, Serialize)]
struct Usage {
    cpu: f64,
    memory: f64,
    disk: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct NodesPage {
    flash: Flash,
    nodes: Vec<NodeRow>,
    organizations: Vec<OrgWithRole>,
    /// A registration token just minted, shown once.
    registration: Option<RegistrationToken>,
}

/// Reads `path` from the API as `user`, as the API's response type `T`.
async fn read_as<T: DeserializeOwned>(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    path: &str,
) -> WebResult<T> {
    web.fetch(browser, Method::GET, path, Some(&user.access), None::<&()>)
        .await
}

/// Percent of `used` in `total` (0 when the total is unknown).
#[expect(clippy::cast_precision_loss, reason = "a rounded display value")]
fn percent(used: i64, total: i64) -> f64 {
    if total > 0 {
        (used as f64 / total as f64 * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    }
}

/// CPU, memory and disk use of a metrics point, in percent.
fn usage(point: &NodeMetricsPoint) -> Usage {
    Usage {
        cpu: point.cpu_percent.clamp(0.0, 100.0).round(),
        memory: percent(point.memory_used_bytes, point.memory_total_bytes).round(),
        disk: percent(point.disk_used_bytes, point.disk_total_bytes).round(),
    }
}

/// The nodes page with each node's latest usage.
async fn show_list(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    mut page: NodesPage,
) -> WebResult<Response> {
    let nodes: Vec<Node> = read_as(web, browser, user, "/v1/nodes").await?;
    for node in nodes {
        let mut row = NodeRow { node, usage: None };
        let id = row.node.id.as_str();
        let path = format!("/v1/nodes/{id}/metrics/history?range=1h");
        // A node without samples yet (or a failed read) has no bars.
        if super::api::is_plain_id(id)
            && let Ok(history) = read_as::<NodeMetricsHistory>(web, browser, user, &path).await
        {
            row.usage = history.points.last().map(usage);
        }
        page.nodes.push(row);
    }
    page.organizations = kit::organizations(web, browser, user).await?;
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Nodes", "nodes"),
        "nodes.html.tera",
        &page,
    )
    .await
}

/// `GET /nodes`.
///
/// # Errors
/// The API's error.
pub async fn list(web: &WebState, browser: &Browser, done: &Done) -> WebResult<Response> {
    let user = page_user!(web, browser, "/nodes");
    let page = NodesPage {
        flash: Flash::from_done(done),
        ..NodesPage::default()
    };
    show_list(web, browser, &user, page).await
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    organization_id: String,
}

/// `POST /nodes/add`: `POST /v1/nodes/register-token`; shows the token and command.
pub async fn add(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<AddForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/nodes");
    let name = form.name.trim();
    let org = form.organization_id.trim();
    let body = CreateToken {
        name: (!name.is_empty()).then(|| name.to_owned()),
        organization_id: (!org.is_empty()).then(|| org.to_owned()),
    };
    let answer = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/nodes/register-token",
        Some(&body),
    )
    .await;
    let page = match shown(answer)? {
        Ok(registration) => NodesPage {
            registration: Some(registration),
            ..NodesPage::default()
        },
        Err(error) => NodesPage {
            flash: Flash::error(error),
            ..NodesPage::default()
        },
    };
    show_list(&web, &browser, &user, page).await
}

/// One chart: a polyline in a `kit::CHART_W` x `kit::CHART_H` box, 0-100 %.
#[derive(Debug, Serialize)]
struct Chart {
    id: &'static str,
    title: &'static str,
    points: String,
    latest: Option<f64>,
    peak: Option<f64>,
}

/// Draws `values` (`(unix ms, percent)`) over `[from, to]`.
fn chart(
    id: &'static str,
    title: &'static str,
    values: &[(i64, f64)],
    from: i64,
    to: i64,
) -> Chart {
    let points = kit::polyline(values, (from, to), 100.0);
    let round = |v: f64| (v * 10.0).round() / 10.0;
    Chart {
        id,
        title,
        points,
        latest: values.last().map(|(_, v)| round(*v)),
        peak: values.iter().map(|(_, v)| *v).reduce(f64::max).map(round),
    }
}

/// The CPU, memory and disk charts of a metrics history over the last `span` ms.
fn charts(points: &[NodeMetricsPoint], span: i64, now: i64) -> Vec<Chart> {
    let mut cpu = Vec::new();
    let mut memory = Vec::new();
    let mut disk = Vec::new();
    for p in points {
        let at = p.at.millis();
        cpu.push((at, p.cpu_percent));
        memory.push((at, percent(p.memory_used_bytes, p.memory_total_bytes)));
        disk.push((at, percent(p.disk_used_bytes, p.disk_total_bytes)));
    }
    let from = now - span;
    vec![
        chart("cpu", "CPU", &cpu, from, now),
        chart("memory", "Memory", &memory, from, now),
        chart("disk", "Disk", &disk, from, now),
    ]
}

/// A byte count for people: `1.5 GiB`.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[expect(clippy::cast_precision_loss, reason = "a rounded display value")]
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A disk with its used and total sizes for display.
#[derive(Debug, Serialize)]
struct DiskShown {
    #[serde(flatten)]
    disk: DiskInfo,
    used: String,
    total: String,
}

impl From<DiskInfo> for DiskShown {
    fn from(disk: DiskInfo) -> Self {
        Self {
            used: bytes(disk.total_bytes.saturating_sub(disk.available_bytes)),
            total: bytes(disk.total_bytes),
            disk,
        }
    }
}

/// The system inventory with its memory size for display.
#[derive(Debug, Serialize)]
struct SystemShown {
    #[serde(flatten)]
    system: SystemInfo,
    memory_total: String,
}

impl From<SystemInfo> for SystemShown {
    fn from(system: SystemInfo) -> Self {
        Self {
            memory_total: bytes(system.memory_total_bytes),
            system,
        }
    }
}

/// The history ranges the page offers, with their span in ms.
const RANGES: &[(&str, i64)] = &[("1h", 3_600_000), ("24h", 86_400_000), ("7d", 604_800_000)];

#[derive(Debug, Default, Deserialize)]
pub struct NodeQuery {
    range: Option<String>,
    done: Option<String>,
}

/// What the node page shows after an action.
pub(super) enum Outcome {
    None,
    Drained(DrainReport),
    Rebuilt(Planned),
}

#[derive(Debug, Serialize)]
struct NodePage {
    flash: Flash,
    node: Node,
    system: Option<SystemShown>,
    disks: Vec<DiskShown>,
    /// Why the inventory is missing (the node is offline...).
    inventory_error: Option<String>,
    range: &'static str,
    ranges: Vec<&'static str>,
    charts: Vec<Chart>,
    drained: Option<DrainReport>,
    /// The servers of an offline node being rebuilt elsewhere from their backups.
    rebuilt: Option<Planned>,
    /// SSH and terminal sessions the user may open, and the recordings.
    shells: super::shell_pages::Shells,
    /// Power and firewall of a provisioned node (`None`: not provisioned).
    cloud: Option<super::node_cloud_pages::CloudShown>,
}

pub(super) async fn show_node(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    id: &str,
    range: &str,
    flash: Flash,
    outcome: Outcome,
) -> WebResult<Response> {
    let node: Node = read_as(web, browser, user, &format!("/v1/nodes/{id}")).await?;
    let (range, span) = RANGES
        .iter()
        .copied()
        .find(|(r, _)| *r == range)
        .unwrap_or(RANGES[0]);
    let history: NodeMetricsHistory = read_as(
        web,
        browser,
        user,
        &format!("/v1/nodes/{id}/metrics/history?range={range}"),
    )
    .await?;
    let system = read_as::<SystemInfo>(
        web,
        browser,
        user,
        &format!("/v1/nodes/{id}/inventory/system"),
    )
    .await;
    let disks = read_as::<Vec<DiskInfo>>(
        web,
        browser,
        user,
        &format!("/v1/nodes/{id}/inventory/disks"),
    )
    .await;
    let (system, disks, inventory_error) = match (system, disks) {
        (Ok(system), Ok(disks)) => (
            Some(SystemShown::from(system)),
            disks.into_iter().map(DiskShown::from).collect(),
            None,
        ),
        (Err(e), _) | (_, Err(e)) => (None, Vec::new(), Some(e.message)),
    };
    let (drained, rebuilt) = match outcome {
        Outcome::None => (None, None),
        Outcome::Drained(report) => (Some(report), None),
        Outcome::Rebuilt(planned) => (None, Some(planned)),
    };
    let shells = super::shell_pages::shells(web, browser, user, &node).await;
    let cloud = super::node_cloud_pages::cloud(web, browser, user, &node.id).await;
    let title = if node.name.is_empty() {
        "Node".to_owned()
    } else {
        node.name.clone()
    };
    let page = NodePage {
        flash,
        node,
        system,
        disks,
        inventory_error,
        range,
        ranges: RANGES.iter().map(|(r, _)| *r).collect(),
        charts: charts(&history.points, span, crate::db::now_ms()),
        drained,
        rebuilt,
        shells,
        cloud,
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        (&title, "nodes"),
        "node.html.tera",
        &page,
    )
    .await
}

/// `GET /nodes/{id}?range=1h|24h|7d`.
pub async fn node(
    State(web): State<WebState>,
    browser: Browser,
    Path(id): Path<String>,
    query: Result<Query<NodeQuery>, QueryRejection>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let flash = Flash::from_done(&Done { done: q.done });
    let range = q.range.unwrap_or_default();
    show_node(&web, &browser, &user, &id, &range, flash, Outcome::None).await
}

#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// Posts `action` for node `id`; the node page shows the outcome.
async fn act(web: &WebState, browser: &Browser, id: &str, action: &str) -> WebResult<Response> {
    let id = plain(id)?;
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    let path = format!("/v1/nodes/{id}/{action}");
    if action == "drain" {
        let answer = web
            .fetch::<DrainReport, ()>(browser, Method::POST, &path, Some(&user.access), None)
            .await;
        return match shown(answer)? {
            Ok(report) => {
                let flash = Flash {
                    notice: Some("The node is cordoned and drained.".into()),
                    error: None,
                };
                show_node(web, browser, &user, id, "", flash, Outcome::Drained(report)).await
            }
            Err(error) => refused(web, browser, &user, id, error).await,
        };
    }
    let answer = kit::act(web, browser, &user, Method::POST, &path, None::<&()>).await;
    match shown(answer)? {
        Ok(_) => kit::done(&format!("/nodes/{id}"), &format!("{action}ed")),
        Err(error) => refused(web, browser, &user, id, error).await,
    }
}

/// The node page with the API's refusal of an action (a 404 is the error page).
async fn refused(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    id: &str,
    error: super::error::WebError,
) -> WebResult<Response> {
    if error.status == StatusCode::NOT_FOUND {
        return Err(error);
    }
    show_node(
        web,
        browser,
        user,
        id,
        "",
        Flash::error(error),
        Outcome::None,
    )
    .await
}

/// `POST /nodes/{id}/cordon`.
pub async fn cordon(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    act(&web, &browser, &id, "cordon").await
}

/// `POST /nodes/{id}/uncordon`.
pub async fn uncordon(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    act(&web, &browser, &id, "uncordon").await
}

/// `POST /nodes/{id}/rebuild`: the node is offline; each of its servers is rebuilt on
/// its best-fit node from its latest S3 backup (`POST /v1/nodes/{id}/migrate` with
/// `from_backup`), and the page lists the moves and the servers left.
pub async fn rebuild(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    let path = format!("/v1/nodes/{id}/migrate");
    let body = serde_json::json!({"from_backup": true});
    let answer = web
        .fetch::<Planned, _>(
            &browser,
            Method::POST,
            &path,
            Some(&user.access),
            Some(&body),
        )
        .await;
    match shown(answer)? {
        Ok(planned) => {
            let flash = Flash {
                notice: Some("The node's servers are being rebuilt from their backups.".into()),
                error: None,
            };
            show_node(
                &web,
                &browser,
                &user,
                id,
                "",
                flash,
                Outcome::Rebuilt(planned),
            )
            .await
        }
        Err(error) => refused(&web, &browser, &user, id, error).await,
    }
}

/// `POST /nodes/{id}/drain`.
pub async fn drain(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    act(&web, &browser, &id, "drain").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Timestamp;

    fn point(at: i64, cpu: f64, memory: i64, memory_total: i64) -> NodeMetricsPoint {
        NodeMetricsPoint {
            at: Timestamp(at),
            cpu_percent: cpu,
            memory_used_bytes: memory,
            memory_total_bytes: memory_total,
            disk_used_bytes: 1,
            disk_total_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
        }
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(8 * 1024 * 1024 * 1024), "8.0 GiB");
        let d = DiskShown::from(DiskInfo {
            name: "sda1".into(),
            mount_point: "/".into(),
            file_system: "ext4".into(),
            total_bytes: 2048,
            available_bytes: 1024,
            removable: false,
        });
        assert_eq!((d.used.as_str(), d.total.as_str()), ("1.0 KiB", "2.0 KiB"));
    }

    #[test]
    fn usage_is_percent_of_totals() {
        let u = usage(&point(0, 12.4, 512, 1024));
        assert_eq!(
            u,
            Usage {
                cpu: 12.0,
                memory: 50.0,
                disk: 0.0
            }
        );
    }

    #[test]
    fn charts_place_points_in_time_and_percent() {
        let now = 1_000_000_000_000;
        let history = [
            point(now - 3_600_000, 100.0, 0, 10),
            point(now, 50.0, 5, 10),
        ];
        let c = charts(&history, 3_600_000, now);
        assert_eq!(c[0].points, "0.0,0.0 600.0,80.0");
        assert_eq!((c[0].latest, c[0].peak), (Some(50.0), Some(100.0)));
        assert_eq!(c[1].points, "0.0,160.0 600.0,80.0");
        assert!(charts(&[], 1, now)[2].points.is_empty());
    }
}

/// The allocation form: empty fields put the panel's defaults back.
#[derive(Debug, Deserialize)]
pub struct AllocationForm {
    #[serde(default)]
    allocation_ip: String,
    #[serde(default)]
    port_start: String,
    #[serde(default)]
    port_end: String,
}

/// The body `PUT /v1/nodes/{id}` takes for the allocation settings.
#[derive(Debug, Serialize)]
struct AllocationBody {
    allocation_ip: Option<String>,
    port_range: Option<crate::nodes::store::PortRange>,
}

/// `POST /nodes/{id}/allocation`: the node's allocation address and port range.
pub async fn allocation(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<AllocationForm>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    let ip = Some(form.allocation_ip.trim().to_owned()).filter(|ip| !ip.is_empty());
    let port = |text: &str| text.trim().parse::<u16>().ok();
    let range = match (form.port_start.trim(), form.port_end.trim()) {
        ("", "") => Ok(None),
        (start, end) => match (port(start), port(end)) {
            (Some(start), Some(end)) => Ok(Some(crate::nodes::store::PortRange { start, end })),
            _ => Err(()),
        },
    };
    let answer = match range {
        Ok(port_range) => {
            let body = AllocationBody {
                allocation_ip: ip,
                port_range,
            };
            kit::act(
                &web,
                &browser,
                &user,
                Method::PUT,
                &format!("/v1/nodes/{id}"),
                Some(&body),
            )
            .await
        }
        Err(()) => Err(WebError::from(crate::error::AppError::invalid_field(
            "port_range",
            "both ports of the range are numbers between 1024 and 65535",
        ))),
    };
    match shown(answer)? {
        Ok(()) => kit::done(&format!("/nodes/{id}"), "allocation"),
        Err(error) if error.status == StatusCode::NOT_FOUND => Err(error),
        Err(error) => {
            show_node(
                &web,
                &browser,
                &user,
                &id,
                "",
                Flash::error(error),
                Outcome::None,
            )
            .await
        }
    }
}

/// The public addresses form: an empty field clears that address.
#[derive(Debug, Deserialize)]
pub struct AddressesForm {
    #[serde(default)]
    public_ipv4: String,
    #[serde(default)]
    public_ipv6: String,
}

/// The body `PUT /v1/nodes/{id}` takes for the public addresses.
#[derive(Debug, Serialize)]
struct AddressesBody {
    public_ipv4: Option<String>,
    public_ipv6: Option<String>,
}

/// `POST /nodes/{id}/addresses`: the node's public IPv4 and IPv6 addresses, what its
/// servers' DNS records point at; the API's refusal is shown on the node page.
pub async fn addresses(
    State(web): State<WebState>,
    Path(id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<AddressesForm>,
) -> WebResult<Response> {
    let id = plain(&id)?.to_owned();
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    let field = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let body = AddressesBody {
        public_ipv4: field(&form.public_ipv4),
        public_ipv6: field(&form.public_ipv6),
    };
    let answer = kit::act(
        &web,
        &browser,
        &user,
        Method::PUT,
        &format!("/v1/nodes/{id}"),
        Some(&body),
    )
    .await;
    match shown(answer)? {
        // Shown here rather than through `?done=` (its notices are kit's fixed list);
        // saving again is harmless.
        Ok(()) => {
            let flash = Flash {
                notice: Some("The public addresses were saved: DNS records follow them.".into()),
                error: None,
            };
            show_node(&web, &browser, &user, &id, "", flash, Outcome::None).await
        }
        Err(error) => refused(&web, &browser, &user, &id, error).await,
    }
}
